/**
 * The paper's experiments beyond attack detection (docs/experiments.md), all in the simulator with
 * the real Miner and Client: robustness (attacks × aggregators), rewards with fixed curious
 * clients (case ii), aggregation strategies over time, and the (ϕ, N) threshold grid.
 */
import { readFile } from 'node:fs/promises';
import { BflError, ErrorCode } from '../core/errors.ts';
import type { AggregatorName } from '../core/aggregation/index.ts';
import { type AggregationConfig, defaultLearningConfig } from '../config/network.ts';
import type { RoundReport, SimOptions, SimResult } from '../sim/harness.ts';
import { runSimulation } from './simulate.ts';
import { type Attack, attackLabels, attackRound, parseAttack, resolveAttack } from './attacks.ts';
import { LABELLING_AGGREGATORS, type LabelRates, labelRates } from './detection.ts';
import { type ExperimentBase, attacksOf, pickClients, simBase } from './setup.ts';
import { coalitionValues } from './shapley.ts';
import { loadDataset } from '../learn/data.ts';
import { type Series, barChart, lineChart, smallMultiples, zoomedRange } from './plot.ts';
import { Report, convergedAt, shapleyValues, spearman, tail } from './report.ts';

export interface CommonOptions extends ExperimentBase {
  /** Aggregation settings beyond the aggregator (e.g. BFL-MEC's metric, eps, length check). */
  aggregation?: Partial<AggregationConfig>;
  out: string;
  onRound?: (label: string, r: RoundReport) => void;
}

function simOf(o: CommonOptions, aggregator: AggregatorName = 'bfl-mec'): Omit<SimOptions, 'onRound'> {
  return simBase(o, { ...o.aggregation, aggregator });
}

const pick = (o: CommonOptions, fraction: number) => pickClients(o.seed, o.clients, fraction).chosen;

// ---- robustness: attacks × aggregators ----

/**
 * `simulate` is the simulator (a seam for tests of the report); detection and false positives
 * per aggregator and attack come from the labels of the aggregators that label clients
 * (experiments/detection.ts), null for the others.
 */
export async function runRobustness(o: CommonOptions & { attacks: string[]; aggregators: AggregatorName[]; malicious: number; simulate?: (s: SimOptions) => Promise<Pick<SimResult, 'rounds'>> }) {
  const attackers = pick(o, o.malicious);
  const report = new Report(o.out);
  const simulate = o.simulate ?? runSimulation;
  const acc: Record<string, Record<string, number>> = {};
  const labels: Record<string, Record<string, LabelRates> | null> = {};
  for (const agg of o.aggregators) {
    acc[agg] = {};
    labels[agg] = LABELLING_AGGREGATORS.has(agg) ? {} : null;
    for (const attack of ['none', ...o.attacks]) {
      const a = resolveAttack(parseAttack(attack), o.clients, attackers.size);
      const r = await simulate({ ...simOf(o, agg), behaviourOf: attacksOf((c) => (attackers.has(c) && attack !== 'none' ? a : { kind: 'none' })), onRound: (x) => o.onRound?.(`${agg} / ${attack}`, x) });
      acc[agg][attack] = tail(r.rounds.map((x) => x.accuracy));
      if (labels[agg]) labels[agg][attack] = labelRates(r.rounds);
    }
  }
  const rate = (x: number | null) => (x === null ? null : x.toFixed(4));
  await report.csv(
    'robustness-detection',
    ['aggregator', 'attack', 'detection_rate', 'false_positive_rate', 'attacker_updates', 'honest_updates'],
    o.aggregators.flatMap((g) => {
      const l = labels[g];
      return l ? ['none', ...o.attacks].map((a) => [g, a, rate(l[a].detectionRate), rate(l[a].falsePositiveRate), l[a].attackerUpdates, l[a].honestUpdates]) : [];
    }),
  );
  // the ByzFL worst case: over no attack and every attack
  const worst = Object.fromEntries(o.aggregators.map((g) => [g, Math.min(acc[g].none, ...o.attacks.map((a) => acc[g][a]))]));
  await report.csv('robustness', ['aggregator', 'none', ...o.attacks, 'worst'], o.aggregators.map((g) => [g, acc[g].none.toFixed(4), ...o.attacks.map((a) => acc[g][a].toFixed(4)), worst[g].toFixed(4)]));
  const bars = { xLabel: 'attack', yLabel: 'test accuracy', categories: ['none', ...o.attacks], groups: o.aggregators, values: o.aggregators.map((g) => ['none', ...o.attacks].map((a) => acc[g][a])) };
  // zoomed to the range of the values (on 0-1 the aggregators' bars differ by a pixel or two); the 0-1 chart beside it
  const zoom = zoomedRange([{ name: 'all', points: bars.values.flat().map((v): [number, number] => [0, v]) }], { lowQuantile: 0, step: 0.05, floor: 0, ceil: 1 });
  await report.plot('robustness', barChart({ ...bars, title: `accuracy under attack (${attackers.size} of ${o.clients} clients), from ${zoom[0]}`, yRange: zoom }));
  await report.plot('robustness-full', barChart({ ...bars, title: `accuracy under attack (${attackers.size} of ${o.clients} clients)`, yRange: [0, 1] }));
  const summary = { clients: o.clients, attackers: attackers.size, accuracy: acc, worstCase: worst, detection: labels };
  await report.json('robustness', summary);
  return { ...summary, files: report.files };
}

// ---- rewards with fixed curious clients (case ii) ----

/** The Shapley references `experiment rewards --shapley` computes (docs/decisions.md, "Rewards and Shapley values"). */
export type ShapleyReference = 'round' | 'retrain';

/**
 * Rewards: fixed curious clients (case ii), or honest clients of different data quality and the
 * Spearman correlation of quality and cumulative reward: with `quality` a share of random labels
 * each, with `sizes` the share of each batch of N samples each client trains on (and claims), in
 * turn over the clients (e.g. 0, 0.2, 0.5 or 1, 0.5, 0.2). With `shapley` (at most 12 clients)
 * the clients' exact Shapley values, rank-correlated with the cumulative rewards:
 * 'round', every aggregation's own game (the 2^n coalitions of its updates, each the previous
 * model plus the sample-weighted mean of the coalition's updates, as FedAvg inside H weighs them;
 * test accuracy), summed per client; 'retrain', the game of whole training runs (each coalition
 * trains alone for as many aggregations; shapley.ts), the literature's ground truth.
 */
export async function runRewards(
  o: CommonOptions & {
    curious: number;
    attack: string;
    quality?: number[];
    sizes?: number[];
    shapley?: ShapleyReference[];
    /** The retrained game's coalition values written by an earlier run of the same settings
     * (retrained-coalitions.json): they do not depend on the aggregator, and take 2^n training runs. */
    retrainedFrom?: string;
    onRetrain?: (done: number, total: number) => void;
  },
) {
  if (o.retrainedFrom && !o.shapley?.includes('retrain')) throw new RangeError('retrainedFrom needs the retrain reference');
  if (o.quality && o.sizes) throw new RangeError('quality (random labels) and sizes (sample counts) are two separate experiments: give one');
  const graded = o.quality ?? o.sizes;
  const curious = graded ? new Set<number>() : pick(o, o.curious);
  const a = resolveAttack(parseAttack(o.attack), o.clients, curious.size);
  const qualityOf = (c: number) => (o.quality ? o.quality[c % o.quality.length] : 0);
  const sizeOf = (c: number) => (o.sizes ? o.sizes[c % o.sizes.length] : 1);
  const kindOf = (c: number) => (curious.has(c) ? 'curious' : o.quality ? `${qualityOf(c)} random labels` : o.sizes ? `${sizeOf(c)} of the samples` : 'honest');
  const report = new Report(o.out);
  const cumulative = new Map<string, number>();
  const shapley = new Map<string, number>();
  const rows: (string | number)[][] = [];
  const series = new Map<string, [number, number][]>();
  const references = o.shapley ?? [];
  const learning = { ...defaultLearningConfig, ...simOf(o).learning, partitionSeed: o.seed };
  // everything the retrained game depends on (not the aggregator: it is plain FedAvg per coalition)
  const retrainKey = (rounds: number) => {
    const { rate: _rate, threads: _threads, ...settings } = learning;
    return JSON.stringify({ ...settings, clients: o.clients, rounds, quality: o.quality ?? null, sizes: o.sizes ?? null });
  };
  let cached: { accuracy: Float64Array; loss: Float64Array } | undefined;
  if (o.retrainedFrom) {
    let file: { key?: string; accuracy?: number[]; loss?: number[] };
    try {
      file = JSON.parse(await readFile(o.retrainedFrom, 'utf8'));
    } catch (e) {
      throw new BflError(ErrorCode.NOT_FOUND, `cannot read the retrained coalition values ${o.retrainedFrom} (${(e as Error).message}): give the retrained-coalitions.json of an earlier run`);
    }
    if (file.key !== retrainKey(o.aggregations) || file.accuracy?.length !== 1 << o.clients || file.loss?.length !== 1 << o.clients) {
      throw new BflError(ErrorCode.BAD_CONFIG, `${o.retrainedFrom} holds the retrained game of other settings (${file.key}); this run's are ${retrainKey(o.aggregations)}: run without --retrained-from or with the same settings`);
    }
    cached = { accuracy: Float64Array.from(file.accuracy), loss: Float64Array.from(file.loss) };
  }
  if (references.length && o.clients > 12) throw new RangeError('exact Shapley values need at most 12 clients (2^n coalitions per aggregation)');
  const r = await runSimulation({
    ...simOf(o),
    behaviourOf: (c, round, honest) => {
      if (sizeOf(c) < 1) return { ...attackRound({ kind: 'none' }, honest), sampleShare: sizeOf(c) };
      return attackRound(curious.has(c) ? a : qualityOf(c) > 0 ? { kind: 'noisy-labels', p: qualityOf(c) } : { kind: 'none' }, honest);
    },
    onRound: (x) => {
      o.onRound?.('rewards', x);
      for (let c = 0; c < o.clients; c++) {
        const id = `client-${c + 1}`;
        const v = (cumulative.get(id) ?? 0) + Number(x.rewards[id] ?? 0) / 1e6;
        cumulative.set(id, v);
        rows.push([x.round, id, curious.has(c) ? 'curious' : o.quality ? `labels-${qualityOf(c)}` : o.sizes ? `samples-${sizeOf(c)}` : 'honest', v.toFixed(6)]);
        if (!series.has(id)) series.set(id, []);
        series.get(id)!.push([x.round, v]);
      }
    },
    inspect: references.includes('round')
      ? async (x, ctx) => {
          const ups = x.updates.filter((u) => ctx.deltas.has(u.digest));
          const n = ups.length;
          if (n === 0 || n > 12) return;
          const value = new Float64Array(1 << n);
          const dim = ctx.previous.length;
          for (let mask = 0; mask < 1 << n; mask++) {
            const members = ups.filter((_, i) => mask & (1 << i));
            const model = Float32Array.from(ctx.previous);
            if (members.length) {
              // FedAvg of the coalition: the aggregation's own weights inside H (sample counts)
              const all = members.reduce((t, u) => t + (ctx.samples.get(u.digest) ?? 1), 0);
              const sum = new Float64Array(dim);
              for (const u of members) {
                const d = ctx.deltas.get(u.digest)!;
                const w = (ctx.samples.get(u.digest) ?? 1) / all;
                for (let k = 0; k < dim; k++) sum[k] += w * d[k];
              }
              for (let k = 0; k < dim; k++) model[k] = ctx.previous[k] + sum[k];
            }
            value[mask] = await ctx.accuracyOf(model);
          }
          shapleyValues(n, value).forEach((phi, i) => shapley.set(ups[i].clientId, (shapley.get(ups[i].clientId) ?? 0) + phi));
        }
      : undefined,
  });
  let retrained: Map<string, number> | undefined;
  if (references.includes('retrain')) {
    const values =
      cached ??
      (await coalitionValues({
        data: loadDataset(learning.dataset),
        clients: o.clients,
        learning,
        rounds: r.rounds.length,
        clientData: (c) => (qualityOf(c) > 0 ? { labels: (y, classes) => attackLabels({ kind: 'noisy-labels', p: qualityOf(c) }, y, classes) } : sizeOf(c) < 1 ? { share: sizeOf(c) } : {}),
        onProgress: o.onRetrain,
      }));
    if (cached && r.rounds.length !== o.aggregations) throw new BflError(ErrorCode.BAD_CONFIG, `the run made ${r.rounds.length} aggregations, not ${o.aggregations}: the coalition values of ${o.retrainedFrom} do not apply; run without --retrained-from`);
    await report.json('retrained-coalitions', { key: retrainKey(r.rounds.length), accuracy: [...values.accuracy], loss: [...values.loss] });
    retrained = new Map(shapleyValues(o.clients, values.accuracy).map((phi, c) => [`client-${c + 1}`, phi]));
  }
  const total = [...cumulative.values()].reduce((s, v) => s + v, 0);
  const curiousTotal = [...cumulative].filter(([id]) => curious.has(Number(id.split('-')[1]) - 1)).reduce((s, [, v]) => s + v, 0);
  await report.csv('rewards', ['round', 'client', 'kind', 'cumulative_tokens'], rows);
  // small multiples, one panel per kind of client (honest / curious, or per share of random
  // labels): clients of one kind earn nearly the same and their lines coincide in one chart
  const kindOfId = (id: string) => kindOf(Number(id.split('-')[1]) - 1);
  const kinds = [...new Set([...series.keys()].map(kindOfId))];
  await report.plot(
    'rewards',
    smallMultiples({
      title: o.quality ? `cumulative rewards by share of random labels (${o.quality.join(', ')})` : o.sizes ? `cumulative rewards by share of the samples (${o.sizes.join(', ')})` : `cumulative rewards, ${curious.size} curious clients (${o.attack})`,
      xLabel: 'aggregation',
      yLabel: 'tokens',
      cols: Math.min(3, kinds.length),
      panels: kinds.map((k) => ({ title: k, series: [...series].filter(([id]) => kindOfId(id) === k).map(([id, pts]) => ({ name: id, points: pts })) })),
    }),
  );
  const ids = Array.from({ length: o.clients }, (_, c) => `client-${c + 1}`);
  const honestN = o.clients - curious.size;
  const summary = {
    clients: o.clients,
    curious: [...curious].map((c) => `client-${c + 1}`),
    attack: graded ? 'none' : o.attack,
    totalTokens: total,
    curiousShare: total ? curiousTotal / total : 0,
    meanHonest: honestN ? (total - curiousTotal) / honestN : 0,
    meanCurious: curious.size ? curiousTotal / curious.size : 0,
    accuracy: tail(r.rounds.map((x) => x.accuracy)),
    ...(graded
      ? {
          quality: Object.fromEntries(ids.map((id, c) => [id, { ...(o.quality ? { randomLabels: qualityOf(c) } : { sampleShare: sizeOf(c) }), tokens: cumulative.get(id) ?? 0 }])),
          // quality = 1 − share of random labels, or the share of the samples
          qualityRewardSpearman: spearman(ids.map((_, c) => (o.quality ? 1 - qualityOf(c) : sizeOf(c))), ids.map((id) => cumulative.get(id) ?? 0)),
        }
      : {}),
    ...(references.includes('round')
      ? {
          shapley: Object.fromEntries(ids.map((id) => [id, shapley.get(id) ?? 0])),
          shapleyRewardSpearman: spearman(ids.map((id) => shapley.get(id) ?? 0), ids.map((id) => cumulative.get(id) ?? 0)),
          ...(graded ? { shapleyQualitySpearman: spearman(ids.map((id) => shapley.get(id) ?? 0), ids.map((_, c) => (o.quality ? 1 - qualityOf(c) : sizeOf(c)))) } : {}),
        }
      : {}),
    ...(retrained
      ? {
          retrainedShapley: Object.fromEntries(ids.map((id) => [id, retrained!.get(id) ?? 0])),
          retrainedShapleyRewardSpearman: spearman(ids.map((id) => retrained!.get(id) ?? 0), ids.map((id) => cumulative.get(id) ?? 0)),
          ...(graded ? { retrainedShapleyQualitySpearman: spearman(ids.map((id) => retrained!.get(id) ?? 0), ids.map((_, c) => (o.quality ? 1 - qualityOf(c) : sizeOf(c)))) } : {}),
          // how well the per-aggregation game estimates the retrained one (the benchmark's measure)
          ...(references.includes('round') ? { shapleyReferencesSpearman: spearman(ids.map((id) => shapley.get(id) ?? 0), ids.map((id) => retrained!.get(id) ?? 0)) } : {}),
        }
      : {}),
  };
  await report.json('rewards', summary);
  return { ...summary, files: report.files };
}

// ---- strategies over time ----

export async function runStrategies(o: CommonOptions & { aggregators: AggregatorName[]; attack: string; malicious: number }) {
  const attackers = pick(o, o.malicious);
  const a = resolveAttack(parseAttack(o.attack), o.clients, attackers.size);
  const report = new Report(o.out);
  const series = [];
  const rows: (string | number)[][] = [];
  for (const agg of o.aggregators) {
    const r = await runSimulation({ ...simOf(o, agg), behaviourOf: attacksOf((c) => (attackers.has(c) && o.attack !== 'none' ? a : { kind: 'none' })), onRound: (x) => o.onRound?.(agg, x) });
    series.push({ name: agg, points: r.rounds.map((x) => [x.seconds, x.accuracy] as [number, number]) });
    for (const x of r.rounds) rows.push([agg, x.round, x.seconds.toFixed(3), x.accuracy]);
  }
  await report.csv('strategies', ['aggregator', 'round', 'seconds', 'accuracy'], rows);
  const strategiesTitle = `accuracy over time${o.attack !== 'none' ? ` (${attackers.size} × ${o.attack})` : ''}`;
  // zoomed to where the curves differ (the first aggregations, near chance, sit on the bottom edge); the full 0-1 chart beside it
  await report.plot('strategies', lineChart({ title: `${strategiesTitle}, zoomed`, xLabel: 'virtual time (s)', yLabel: 'test accuracy', series, yRange: zoomedRange(series, { lowQuantile: 0.2, step: 0.02, floor: 0, ceil: 1 }) }));
  await report.plot('strategies-full', lineChart({ title: strategiesTitle, xLabel: 'virtual time (s)', yLabel: 'test accuracy', series, yRange: [0, 1] }));
  const summary = { attack: o.attack, final: Object.fromEntries(series.map((s) => [s.name, tail(s.points.map((p) => p[1]))])) };
  await report.json('strategies', summary);
  return { ...summary, files: report.files };
}

// ---- the (ϕ, N) grid ----

export async function runThresholds(o: CommonOptions & { phis: number[]; Ns: number[]; seconds: number; onTime?: (label: string, run: number, seconds: number, accuracy: number) => void }) {
  const report = new Report(o.out);
  const rows: (string | number | null)[][] = [];
  const series: Series[] = [];
  const grid = [];
  let run = 0;
  for (const phi of o.phis) {
    for (const N of o.Ns) {
      // Every cell runs for the same virtual time. Clients are spread in time and blocks come
      // every 100 ms (two miners, 200 ms each), faster than updates arrive, so aggregations are
      // triggered by ϕ: with synchronized clients and 1 s blocks every block held 35-65
      // updates and ϕ never mattered (docs/experiments.md).
      const label = `ϕ=${phi} N=${N}`;
      const r = await runSimulation({ ...simOf({ ...o, phi, N }), spread: true, meanBlockMs: 200, aggregations: o.aggregations, maxVirtualMs: o.seconds * 1000, onRound: (x) => o.onTime?.(label, run, x.seconds, x.accuracy) });
      run++;
      const acc = r.rounds.map((x) => x.accuracy);
      const at = convergedAt(acc);
      const entry = { phi, N, aggregations: r.rounds.length, finalAccuracy: tail(acc), convergedRound: at === null ? null : r.rounds[at].round, convergenceSeconds: at === null ? null : r.rounds[at].seconds };
      grid.push(entry);
      rows.push([phi, N, entry.aggregations, entry.finalAccuracy.toFixed(4), entry.convergedRound, entry.convergenceSeconds === null ? null : entry.convergenceSeconds.toFixed(1)]);
      series.push({ name: label, points: r.rounds.map((x) => [x.seconds, x.accuracy] as [number, number]) });
    }
  }
  await report.csv('thresholds', ['phi', 'N', 'aggregations', 'final_accuracy', 'converged_round', 'convergence_seconds'], rows);
  // one panel per ϕ, a line per N: twelve curves in one chart lie on top of each other
  const panels = o.phis.map((phi) => ({ title: `ϕ = ${phi}`, series: series.filter((s) => s.name.startsWith(`ϕ=${phi} `)).map((s) => ({ name: s.name.split(' ')[1], points: s.points })) }));
  await report.plot('thresholds', smallMultiples({ title: 'accuracy over time by (ϕ, N)', xLabel: 'virtual time (s)', yLabel: 'test accuracy', panels, yRange: zoomedRange(series, { lowQuantile: 0.1, step: 0.05, floor: 0, ceil: 1 }) }));
  await report.json('thresholds', { grid });
  return { grid, files: report.files };
}
