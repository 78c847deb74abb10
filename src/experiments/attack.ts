/**
 * `bfl-node experiment attack`: attack detection in the simulator (docs/experiments.md; the paper's
 * case (i)): k = ⌊F·K⌉ clients attack; when an attacker is detected (its update labelled low)
 * it turns honest and a random honest client turns malicious, so detection has to keep
 * working. Scored per update, by the attack the update was made with:
 *   detection rate = attacker updates labelled low / attacker updates,
 *   false positive rate = honest updates labelled low / honest updates,
 * and the accuracy of the global model against the same run without attackers (same seed).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AggregatorName } from '../core/aggregation/index.ts';
import type { AggregationConfig } from '../config/network.ts';
import type { RoundReport } from '../sim/harness.ts';
import { runSimulation } from './simulate.ts';
import { type Attack, parseAttack, resolveAttack } from './attacks.ts';
import { type ExperimentBase, attacksOf, pickClients, simBase } from './setup.ts';
import { formatPartition } from '../learn/partition.ts';
import { lineChart, writePlot } from './plot.ts';

export interface AttackExperimentOptions extends ExperimentBase {
  malicious: number; // fraction of clients
  attack: string;
  aggregator: AggregatorName;
  rotate: boolean;
  aggregation?: Partial<AggregationConfig>;
  out?: string;
  /**
   * Reuse the no-attack run stored in this file if it was made with the same settings (same
   * everything but the attack, the attackers and the rotation), else run it and store it there.
   * A run is deterministic for its settings in the simulator, so the six attacks of one table
   * need one no-attack run, not six (scripts/reproduce-experiments.sh). The key does not know the
   * code: the caller deletes stale files (a new commit).
   */
  baselineFile?: string;
  onRound?: (which: 'attack' | 'baseline', r: RoundReport) => void;
}

// The paper's client settings (E = 5, B = 10, N = 100, η = 0.01). At η = 0.05 the model
// settles sooner, but honest updates become noise-dominated within a few aggregations (pairwise
// cosine 0.03-0.13) and a sign flip of noise can neither be told apart nor do harm
// (docs/experiments.md).
export const defaultAttackExperiment: Omit<AttackExperimentOptions, 'attack' | 'onRound'> = {
  clients: 10,
  miners: 2,
  malicious: 0.3,
  aggregator: 'bfl-mec',
  partition: { kind: 'iid' },
  aggregations: 20,
  seed: 1,
  rotate: true,
  N: 100,
  E: 5,
  B: 10,
  lr: 0.01,
};

export interface AttackRoundRow {
  round: number;
  seconds: number;
  accuracy: number;
  attackerUpdates: number;
  detected: number;
  honestUpdates: number;
  falsePositives: number;
}

export interface AttackSummary {
  attack: string;
  aggregator: string;
  partition: string;
  dataset: string;
  transport: 'sim' | 'libp2p';
  /** Aggregation settings given beyond the aggregator (e.g. maxNormRatio: null). */
  settings: Partial<AggregationConfig>;
  clients: number;
  attackers: number;
  detectionRate: number | null;
  /** The same over the last 10 aggregations: does detection hold late in training? */
  detectionRateLast10: number | null;
  falsePositiveRate: number;
  falsePositiveRateLast10: number;
  accuracy: number; // mean of the last 3 rounds
  accuracyNoAttack: number;
  accuracyDrop: number; // points
  rotations: number;
  rounds: AttackRoundRow[];
  baseline: { round: number; accuracy: number }[];
  /** The no-attack run came from `baselineFile` (its wall-clock seconds are those it took then). */
  baselineReused?: boolean;
  /** Both runs (with and without the attack): wall-clock and simulated seconds. */
  wallSeconds: number;
  virtualSeconds: number;
  files?: { csv: string; json: string; plots: string[] };
}

const last3 = (xs: number[]) => xs.slice(-3).reduce((a, b) => a + b, 0) / Math.min(3, xs.length);

function rows(rounds: RoundReport[]): AttackRoundRow[] {
  return rounds.map((r) => {
    const att = r.updates.filter((u) => u.attack !== 'none');
    const hon = r.updates.filter((u) => u.attack === 'none');
    return { round: r.round, seconds: r.seconds, accuracy: r.accuracy, attackerUpdates: att.length, detected: att.filter((u) => !u.high).length, honestUpdates: hon.length, falsePositives: hon.filter((u) => !u.high).length };
  });
}

type Baseline = { rounds: { round: number; accuracy: number }[]; wallSeconds: number; virtualSeconds: number; reused?: boolean };

/** The no-attack run: from `o.baselineFile` when it holds one with the same settings (see there). */
async function baselineOf(o: AttackExperimentOptions, run: () => Promise<Baseline>): Promise<Baseline> {
  if (!o.baselineFile) return run();
  if (o.transport === 'libp2p') throw new RangeError('a stored no-attack run needs the simulator (libp2p runs depend on timing)');
  // every option but the attack's own; functions (onRound) drop out of JSON
  const { attack: _a, malicious: _m, rotate: _r, out: _o, baselineFile: _f, ...settings } = o;
  const key = JSON.stringify(settings);
  const stored = await readFile(o.baselineFile, 'utf8').then((t) => JSON.parse(t) as Baseline & { key: string }, () => undefined);
  if (stored?.key === key) return { ...stored, reused: true };
  const r = await run();
  const b: Baseline = { rounds: r.rounds.map((x) => ({ round: x.round, accuracy: x.accuracy })), wallSeconds: r.wallSeconds, virtualSeconds: r.virtualSeconds };
  await writeFile(o.baselineFile, JSON.stringify({ key, ...b }) + '\n');
  return b;
}

export async function runAttackExperiment(o: AttackExperimentOptions): Promise<AttackSummary> {
  const { chosen: attackers, rng } = pickClients(o.seed, o.clients, o.malicious);
  const k = attackers.size; // before rotations change the set
  const attack: Attack = resolveAttack(parseAttack(o.attack), o.clients, k);
  let rotations = 0;
  const common = simBase(o, { aggregator: o.aggregator, ...o.aggregation });
  const run = await runSimulation({
    ...common,
    behaviourOf: attacksOf((c) => (attackers.has(c) ? attack : { kind: 'none' })),
    onRound: (r) => {
      o.onRound?.('attack', r);
      if (!o.rotate) return;
      // case (i): each detected attacker turns honest, a random honest client turns malicious
      for (const u of r.updates) {
        const c = Number(u.clientId.split('-')[1]) - 1;
        if (u.attack === 'none' || u.high || !attackers.has(c)) continue;
        const honest = Array.from({ length: o.clients }, (_, i) => i).filter((i) => !attackers.has(i));
        if (honest.length === 0) continue;
        attackers.delete(c);
        attackers.add(honest[rng.int(honest.length)]);
        rotations++;
      }
    },
  });
  const base = await baselineOf(o, () => runSimulation({ ...common, onRound: (r) => o.onRound?.('baseline', r) }));
  const table = rows(run.rounds);
  const att = table.reduce((s, r) => s + r.attackerUpdates, 0);
  const det = table.reduce((s, r) => s + r.detected, 0);
  const hon = table.reduce((s, r) => s + r.honestUpdates, 0);
  const fp = table.reduce((s, r) => s + r.falsePositives, 0);
  const late = table.slice(-10);
  const lateAtt = late.reduce((s, r) => s + r.attackerUpdates, 0);
  const lateHon = late.reduce((s, r) => s + r.honestUpdates, 0);
  const accuracy = last3(run.rounds.map((r) => r.accuracy));
  const accuracyNoAttack = last3(base.rounds.map((r) => r.accuracy));
  const summary: AttackSummary = {
    attack: o.attack,
    aggregator: o.aggregator,
    partition: formatPartition(o.partition),
    dataset: o.dataset ?? 'mnist',
    transport: o.transport ?? 'sim',
    settings: o.aggregation ?? {},
    clients: o.clients,
    attackers: k,
    detectionRate: att ? det / att : null,
    detectionRateLast10: lateAtt ? late.reduce((s, r) => s + r.detected, 0) / lateAtt : null,
    falsePositiveRate: hon ? fp / hon : 0,
    falsePositiveRateLast10: lateHon ? late.reduce((s, r) => s + r.falsePositives, 0) / lateHon : 0,
    accuracy,
    accuracyNoAttack,
    accuracyDrop: Number(((accuracyNoAttack - accuracy) * 100).toFixed(2)),
    rotations,
    rounds: table,
    baseline: base.rounds.map((r) => ({ round: r.round, accuracy: r.accuracy })),
    ...(base.reused ? { baselineReused: true } : {}),
    wallSeconds: Number((run.wallSeconds + base.wallSeconds).toFixed(2)),
    virtualSeconds: Number((run.virtualSeconds + base.virtualSeconds).toFixed(2)),
  };
  if (o.out) {
    await mkdir(o.out, { recursive: true });
    const a = o.aggregation ?? {};
    const dbscan = (a.metric ? `-${a.metric}` : '') + (a.eps !== undefined ? `-eps${a.eps}` : '') + (a.maxNormRatio !== undefined ? `-len${a.maxNormRatio ?? 'off'}` : '');
    const data = o.dataset && o.dataset !== 'mnist' ? `-${o.dataset.replace(/[^A-Za-z0-9.]+/g, '_')}` : '';
    const stem = `attack-${o.attack.replace(':', '')}-${o.aggregator}${dbscan}-${formatPartition(o.partition)}${data}-n${o.clients}-seed${o.seed}`;
    const csv = join(o.out, `${stem}.csv`);
    const json = join(o.out, `${stem}.json`);
    const header = 'round,seconds,accuracy,accuracy_no_attack,attacker_updates,detected,honest_updates,false_positives';
    const lines = table.map((r, i) => [r.round, r.seconds.toFixed(3), r.accuracy, summary.baseline[i]?.accuracy ?? '', r.attackerUpdates, r.detected, r.honestUpdates, r.falsePositives].join(','));
    await writeFile(csv, [header, ...lines].join('\n') + '\n');
    const plotFiles = [
      ...(await writePlot(join(o.out, `${stem}-accuracy`), lineChart({ title: `accuracy: ${o.attack} by ${k} of ${o.clients} (${o.aggregator})`, xLabel: 'aggregation', yLabel: 'test accuracy', yRange: [0, 1], series: [{ name: 'under attack', points: table.map((r) => [r.round, r.accuracy]) }, { name: 'no attack', points: summary.baseline.map((r) => [r.round, r.accuracy]) }] }))),
      ...(await writePlot(join(o.out, `${stem}-detection`), lineChart({ title: `detection per aggregation (${o.attack})`, xLabel: 'aggregation', yLabel: 'rate', yRange: [0, 1], series: [{ name: 'detection rate', points: table.filter((r) => r.attackerUpdates > 0).map((r) => [r.round, r.detected / r.attackerUpdates]) }, { name: 'false positive rate', points: table.map((r) => [r.round, r.honestUpdates ? r.falsePositives / r.honestUpdates : 0]) }] }))),
    ];
    summary.files = { csv, json, plots: plotFiles };
    await writeFile(json, JSON.stringify(summary, null, 2) + '\n');
  }
  return summary;
}
