import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { defaultCentralized, runCentralized } from '../../experiments/centralized.ts';
import { UsageError, parseIntFlag, parseNumberFlag } from '../exit.ts';
import { type AggregatorName, AGGREGATORS } from '../../core/aggregation/index.ts';
import { ATTACK_HELP, parseAttack } from '../../experiments/attacks.ts';
import { defaultAttackExperiment, runAttackExperiment } from '../../experiments/attack.ts';
import { runRewards, runRobustness, runStrategies, runThresholds } from '../../experiments/suite.ts';
import { print, printJson } from '../output.ts';
import { progress } from '../../experiments/progress.ts';
import type { AggregationConfig } from '../../config/network.ts';
import { defaultMobility } from '../../sim/mobility.ts';
import { type Partition, parsePartition } from '../../learn/partition.ts';
import { defaultAssociation, runAssociation } from '../../experiments/association.ts';
import { type SchedulerName, SCHEDULERS } from '../../association/schedulers.ts';
import { provisioningCommand } from './provisioning.ts';
import { fedsacCommand } from './fedsac.ts';
import { keyrateCommand } from './keyrate.ts';
import { splitCommand } from './split.ts';
import { inversionCommand } from './inversion.ts';

export function experimentCommand(): Command {
  const exp = new Command('experiment').description("the paper's experiments");

  exp
    .command('centralized')
    .description('train one model on all the training data: the centralized reference curve')
    .option('--dataset <name>', 'mnist (embedded), fashion (/usr/share/datasets/fashion-mnist) or idx:DIR', defaultCentralized.dataset)
    .option('--epochs <n>', 'epochs', parseIntFlag('--epochs', 1, 10_000), defaultCentralized.epochs)
    .option('--batch <n>', 'batch size B', parseIntFlag('--batch', 1, 100_000), defaultCentralized.batchSize)
    .option('--lr <rate>', 'learning rate η', parseNumberFlag('--lr', 1e-9, 100), defaultCentralized.lr)
    .option('--seed <n>', 'initialisation and shuffling seed', parseIntFlag('--seed', 0, 2 ** 32 - 1), defaultCentralized.seed)
    .option('--threads <n>', 'onnxruntime threads', parseIntFlag('--threads', 1, 256), 1)
    .option('--json', 'print the result as JSON', false)
    .action(async (o: { dataset: string; epochs: number; batch: number; lr: number; seed: number; threads: number; json: boolean }) => {
      const r = await runCentralized({
        dataset: o.dataset,
        epochs: o.epochs,
        batchSize: o.batch,
        lr: o.lr,
        seed: o.seed,
        threads: o.threads,
        onEpoch: (e) => process.stderr.write(`epoch ${e.epoch}: train loss ${e.trainLoss.toFixed(4)}, test accuracy ${e.testAccuracy.toFixed(4)} (${e.seconds.toFixed(1)} s)\n`),
      });
      if (o.json) printJson(r);
      else print(`${r.dataset}: test accuracy ${r.testAccuracy.toFixed(4)} after ${o.epochs} epochs on ${r.trainSamples} samples (${r.testSamples} test), ${r.samplesPerSecond} samples/s`);
    });
  suiteCommands(exp);
  associationCommand(exp);
  exp.addCommand(provisioningCommand());
  exp.addCommand(fedsacCommand());
  exp.addCommand(keyrateCommand());
  exp.addCommand(splitCommand());
  exp.addCommand(inversionCommand());

  common(exp.command('attack').description('attack detection with rotating attackers (case i), in the simulator or over libp2p: detection rate, false positives, accuracy vs no attack'), { clients: defaultAttackExperiment.clients, aggregations: defaultAttackExperiment.aggregations, lr: defaultAttackExperiment.lr })
    .option('--malicious <f>', 'fraction of clients attacking', parseNumberFlag('--malicious', 0, 0.99), defaultAttackExperiment.malicious)
    .option('--attack <attack>', ATTACK_HELP, 'sign-flip')
    .option('--aggregator <name>', AGGREGATORS.join(', '), defaultAttackExperiment.aggregator)
    .option('--no-rotate', 'keep the same attackers (no case i rotation)')
    .option('--reuse-baseline', 'reuse the no-attack run stored in --out by an earlier run with the same settings (simulator only; delete baseline-*.json after changing the code)', false)
    .action(async (o: CommonFlags & { malicious: number; attack: string; aggregator: string; rotate: boolean; reuseBaseline: boolean }) => {
      aggregatorList(o.aggregator);
      attackList(o.attack);
      if (o.reuseBaseline && o.transport !== 'sim') throw new UsageError('--reuse-baseline needs --transport sim (libp2p runs depend on timing)');
      const { bar, opts } = commonOptions(o, 2 * o.aggregations);
      const a = opts.aggregation;
      const variant = Object.entries(a).map(([k, v]) => `-${k}${v ?? 'off'}`).join('');
      const baselineFile = o.reuseBaseline ? join(o.out, `baseline-${o.aggregator}${variant}-${o.partition}-${o.dataset.replace(/[^A-Za-z0-9.]+/g, '_')}-n${o.clients}-seed${o.seed}.json`) : undefined;
      if (baselineFile) await mkdir(o.out, { recursive: true });
      const r = await runAttackExperiment({ ...opts, malicious: o.malicious, attack: o.attack, aggregator: o.aggregator as AggregatorName, rotate: o.rotate, baselineFile });
      bar.done();
      const { rounds: _r, baseline: _b, ...summary } = r;
      if (o.json) printJson(summary);
      else {
        print(`${r.attack} by ${r.attackers} of ${r.clients} clients against ${r.aggregator} (${r.partition}), ${r.rounds.length} aggregations:`);
        print(`  detection rate ${r.detectionRate === null ? '-' : r.detectionRate.toFixed(3)} (last 10 aggregations ${r.detectionRateLast10 === null ? '-' : r.detectionRateLast10.toFixed(3)}), false positive rate ${r.falsePositiveRate.toFixed(3)}, ${r.rotations} rotations`);
        print(`  ${accuracyVersus(r.accuracy, r.accuracyNoAttack, r.accuracyDrop)}`);
        print(`  both runs: ${r.wallSeconds} s wall-clock for ${r.virtualSeconds} s simulated`);
        if (r.files) print(`  wrote ${r.files.csv} and ${r.files.json}`);
      }
    });
  return exp;
}

const intList = (name: string) => (v: string) => {
  const xs = v.split(',').map(Number);
  if (xs.some((x) => !Number.isInteger(x) || x < 1)) throw new UsageError(`${name} takes comma-separated whole numbers, got "${v}"`);
  return xs;
};

/** Flags every simulator experiment shares; `d` holds the experiment's own defaults. */
function common(cmd: Command, d: { clients: number; aggregations: number; lr: number }): Command {
  return cmd
    .option('--clients <k>', 'clients', parseIntFlag('--clients', 2, 1000), d.clients)
    .option('--miners <m>', 'miners', parseIntFlag('--miners', 1, 32), 2)
    .option('--partition <p>', 'iid, shards[:K] (K label shards per client, default 2), dirichlet:α, or noniid (= shards:2)', 'iid')
    .option('--dataset <name>', 'mnist (embedded 10,000 digits), fashion (/usr/share/datasets/fashion-mnist: 60,000 images) or idx:DIR', 'mnist')
    .option('--aggregations <a>', 'aggregations per run', parseIntFlag('--aggregations', 1, 10_000), d.aggregations)
    .option('--phi <n>', 'ϕ (default: min(clients, 10))', parseIntFlag('--phi', 1, 10_000))
    .option('--N <n>', 'new samples that trigger a local update', parseIntFlag('--N', 1, 100_000), 100)
    .option('--E <e>', 'local epochs', parseIntFlag('--E', 1, 1000), 5)
    .option('--B <b>', 'batch size', parseIntFlag('--B', 1, 100_000), 10)
    .option('--lr <rate>', 'learning rate η', parseNumberFlag('--lr', 1e-9, 100), d.lr)
    .option('--seed <n>', 'seed', parseIntFlag('--seed', 0, 2 ** 32 - 1), 1)
    .option('--metric <m>', 'BFL-MEC DBSCAN distance: cosine or euclidean (default: cosine)')
    .option('--eps <eps>', 'BFL-MEC DBSCAN radius: a number or auto (default: auto)')
    .option('--max-norm-ratio <r>', 'BFL-MEC length check: a number >= 1, or off (default: 2)')
    .option('--mobility', 'clients walk in and out of the miners\' coverage (random waypoint; simulator only)', false)
    .option('--transport <t>', 'sim (in-process network, virtual time) or libp2p (real daemons in this process, wall clock: small scale)', 'sim')
    .option('--out <dir>', 'write CSV, JSON and plots here', 'out')
    .option('--json', 'print the summary as JSON', false);
}

type CommonFlags = { clients: number; miners: number; partition: string; dataset: string; aggregations: number; phi?: number; N: number; E: number; B: number; lr: number; seed: number; metric?: string; eps?: string; maxNormRatio?: string; mobility: boolean; transport: string; out: string; json: boolean };

/** Checks the shared flags and makes the options and a progress bar of `steps` steps. */
function commonOptions(o: CommonFlags, steps: number) {
  let partition: Partition;
  try {
    partition = parsePartition(o.partition);
  } catch (e) {
    throw new UsageError(`--${(e as Error).message}`);
  }
  if (!['mnist', 'fashion'].includes(o.dataset) && !o.dataset.startsWith('idx:')) throw new UsageError('--dataset must be mnist, fashion or idx:DIR');
  if (o.transport !== 'sim' && o.transport !== 'libp2p') throw new UsageError('--transport must be sim or libp2p');
  if (o.mobility && o.transport === 'libp2p') throw new UsageError('--mobility needs --transport sim (coverage is simulated)');
  const bar = progress(steps);
  const mobility = o.mobility ? { ...defaultMobility, seed: o.seed } : undefined;
  return { bar, opts: { clients: o.clients, miners: o.miners, partition, dataset: o.dataset, aggregations: o.aggregations, phi: o.phi, N: o.N, E: o.E, B: o.B, lr: o.lr, seed: o.seed, aggregation: bflmecOf(o), transport: o.transport as 'sim' | 'libp2p', mobility, out: o.out, onRound: (label: string, r: { round: number; accuracy: number }) => bar(`${label}: round ${r.round}, accuracy ${r.accuracy.toFixed(4)}`) } };
}

/** The BFL-MEC flags as aggregation settings (only those given: the rest keep the defaults). */
function bflmecOf(o: { metric?: string; eps?: string; maxNormRatio?: string }): Partial<AggregationConfig> {
  const a: Partial<AggregationConfig> = {};
  if (o.metric !== undefined) {
    if (o.metric !== 'cosine' && o.metric !== 'euclidean') throw new UsageError('--metric must be cosine or euclidean');
    a.metric = o.metric;
  }
  if (o.eps !== undefined) {
    if (o.eps !== 'auto' && !(o.eps.trim() !== '' && Number(o.eps) >= 0)) throw new UsageError('--eps must be a number >= 0 or auto');
    a.eps = o.eps === 'auto' ? 'auto' : Number(o.eps);
  }
  if (o.maxNormRatio !== undefined) {
    if (o.maxNormRatio !== 'off' && !(o.maxNormRatio.trim() !== '' && Number(o.maxNormRatio) >= 1)) throw new UsageError('--max-norm-ratio must be a number >= 1 or off');
    a.maxNormRatio = o.maxNormRatio === 'off' ? null : Number(o.maxNormRatio);
  }
  return a;
}

function aggregatorList(v: string): AggregatorName[] {
  const xs = v.split(',');
  for (const x of xs) if (!(AGGREGATORS as readonly string[]).includes(x)) throw new UsageError(`unknown aggregator ${x}: use ${AGGREGATORS.join(', ')}`);
  return xs as AggregatorName[];
}

function attackList(v: string): string[] {
  const xs = v.split(',');
  for (const x of xs) {
    try {
      parseAttack(x);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  return xs;
}

function finish(o: { json: boolean }, summary: { files: string[] } & Record<string, unknown>, lines: string[]): void {
  if (o.json) printJson(summary);
  else {
    for (const l of lines) print(l);
    print(`wrote ${summary.files.join(', ')}`);
  }
}

export function suiteCommands(exp: Command): void {
  common(exp.command('robustness').description('accuracy under attack: attacks × aggregators, and the worst case per aggregator (over no attack and every attack: the ByzFL metric); detection and false-positive rates where the aggregator labels clients'), { clients: 10, aggregations: 20, lr: 0.01 })
    .option('--attacks <list>', 'comma-separated attacks', 'sign-flip,scale:10,noise:0.05,label-flip,alie,ipm:0.5,free-ride:0.001')
    .option('--aggregators <list>', 'comma-separated aggregators', 'bfl-mec,bfl-mec-paper,fedavg,multi-krum,median,trimmed-mean,flame,foolsgold')
    .option('--malicious <f>', 'fraction of clients attacking', parseNumberFlag('--malicious', 0, 0.99), 0.3)
    .action(async (o: CommonFlags & { attacks: string; aggregators: string; malicious: number }) => {
      const attacks = attackList(o.attacks);
      const aggregators = aggregatorList(o.aggregators);
      const { bar, opts } = commonOptions(o, aggregators.length * (attacks.length + 1) * o.aggregations);
      const r = await runRobustness({ ...opts, attacks, aggregators, malicious: o.malicious });
      bar.done();
      // under each accuracy line, where the aggregator labels clients: detection / false positives per attack
      const rates = (g: string) => {
        const d = r.detection[g];
        const f = (x: number | null) => (x === null ? '-' : x.toFixed(3));
        return d ? [`${''.padEnd(14)} detection / false positives  ${['none', ...attacks].map((a) => `${a} ${f(d[a].detectionRate)}/${f(d[a].falsePositiveRate)}`).join('  ')}`] : [];
      };
      finish(o, r, aggregators.flatMap((g) => [`${g.padEnd(14)} no attack ${r.accuracy[g].none.toFixed(4)}  worst ${r.worstCase[g].toFixed(4)}  ${attacks.map((a) => `${a} ${r.accuracy[g][a].toFixed(4)}`).join('  ')}`, ...rates(g)]));
    });

  common(exp.command('rewards').description('cumulative rewards with fixed curious clients (case ii)'), { clients: 10, aggregations: 20, lr: 0.01 })
    .option('--curious <f>', 'fraction of curious clients', parseNumberFlag('--curious', 0, 0.99), 0.2)
    .option('--attack <attack>', `what the curious clients send: ${ATTACK_HELP}`, 'free-ride:0.001')
    .option('--quality [shares]', 'no curious clients: honest clients with these shares of random labels, in turn (default 0,0.2,0.5); reports qualityRewardSpearman')
    .option('--shapley', 'exact Shapley value of every update per aggregation (2^n test-set evaluations; at most 12 clients); reports shapleyRewardSpearman', false)
    .action(async (o: CommonFlags & { curious: number; attack: string; quality?: string | boolean; shapley: boolean }) => {
      attackList(o.attack);
      let quality: number[] | undefined;
      if (o.quality !== undefined && o.quality !== false) {
        quality = (o.quality === true ? '0,0.2,0.5' : o.quality).split(',').map(Number);
        if (quality.some((q) => !(q >= 0 && q <= 1))) throw new UsageError('--quality takes comma-separated shares of random labels in [0, 1], e.g. 0,0.2,0.5');
      }
      if (o.shapley && o.clients > 12) throw new UsageError('--shapley needs --clients 12 or fewer (2^n coalitions per aggregation)');
      const { bar, opts } = commonOptions(o, o.aggregations);
      const r = await runRewards({ ...opts, curious: o.curious, attack: o.attack, quality, shapley: o.shapley });
      bar.done();
      const lines = quality ? [`quality (1 − random labels) vs cumulative reward: Spearman ${r.qualityRewardSpearman?.toFixed(3) ?? '-'}`] : [`curious clients (${r.curious.join(', ')}) got ${(r.curiousShare * 100).toFixed(1)} % of ${r.totalTokens.toFixed(2)} tokens: ${r.meanCurious.toFixed(2)} each vs ${r.meanHonest.toFixed(2)} per honest client`];
      if (o.shapley) lines.push(`exact Shapley value vs cumulative reward: Spearman ${r.shapleyRewardSpearman?.toFixed(3) ?? '-'}`);
      finish(o, r, lines);
    });

  common(exp.command('strategies').description('BFL-MEC discard vs keep vs FedAvg vs FedProx: accuracy over time'), { clients: 10, aggregations: 20, lr: 0.01 })
    .option('--aggregators <list>', 'comma-separated aggregators', 'bfl-mec,bfl-mec-keep,fedavg,fedprox')
    .option('--attack <attack>', `attack, if any: ${ATTACK_HELP}`, 'none')
    .option('--malicious <f>', 'fraction of clients attacking', parseNumberFlag('--malicious', 0, 0.99), 0.3)
    .action(async (o: CommonFlags & { aggregators: string; attack: string; malicious: number }) => {
      const aggregators = aggregatorList(o.aggregators);
      attackList(o.attack);
      const { bar, opts } = commonOptions(o, aggregators.length * o.aggregations);
      const r = await runStrategies({ ...opts, aggregators, attack: o.attack, malicious: o.malicious });
      bar.done();
      finish(o, r, Object.entries(r.final).map(([g, a]) => `${g.padEnd(14)} final accuracy ${a.toFixed(4)}`));
    });

  // the paper's grid and defaults: n = 100, m = 2, η = 0.01, E = 5, B = 10
  common(exp.command('thresholds').description('the (ϕ, N) grid: accuracy over time and convergence time (accuracy within 0.5 % over 5 aggregations)'), { clients: 100, aggregations: 100_000, lr: 0.01 })
    .option('--phis <list>', 'ϕ values', intList('--phis'), [5, 10, 15, 20])
    .option('--Ns <list>', 'N values', intList('--Ns'), [50, 75, 100])
    .option('--seconds <s>', 'virtual seconds per cell (every cell runs as long)', parseNumberFlag('--seconds', 1, 86_400), 60)
    .action(async (o: CommonFlags & { phis: number[]; Ns: number[]; seconds: number }) => {
      const { bar, opts } = commonOptions(o, o.phis.length * o.Ns.length * o.seconds);
      const r = await runThresholds({ ...opts, phis: o.phis, Ns: o.Ns, seconds: o.seconds, onTime: (label, run, s, acc) => bar.at(run * o.seconds + s, `${label}: ${s.toFixed(0)} of ${o.seconds} s, accuracy ${acc.toFixed(4)}`) });
      bar.done();
      finish(o, r, r.grid.map((g) => `ϕ=${String(g.phi).padEnd(3)} N=${String(g.N).padEnd(4)} ${String(g.aggregations).padStart(5)} aggregations, final accuracy ${g.finalAccuracy.toFixed(4)}, converged ${g.convergedRound === null ? 'no' : `at round ${g.convergedRound} (${g.convergenceSeconds!.toFixed(0)} s)`}`));
    });
}

/** "accuracy 0.8 vs 0.9 without attack (10 points lower)": the sign in words, so that an attack
 * that happens to raise accuracy does not read as a drop of -0.5 points. */
export function accuracyVersus(accuracy: number, noAttack: number, dropPoints: number): string {
  const points = (p: number) => `${p} point${p === 1 ? '' : 's'}`;
  const change = dropPoints > 0 ? `${points(dropPoints)} lower` : dropPoints < 0 ? `${points(-dropPoints)} higher` : 'the same';
  return `accuracy ${accuracy.toFixed(4)} vs ${noAttack.toFixed(4)} without attack (${change})`;
}

/** The DT paper's Figs. 6-9: client-miner association and channel assignment (issue 17). */
function associationCommand(exp: Command): void {
  exp
    .command('association')
    .description("which miner, which channel: the DT paper's schedulers (nearest, greedy, decomposition, swap, d3qn) in the radio twin; cost, time, energy and scheduling time per round (Figs. 6-9)")
    .option('--rounds <r>', 'rounds every scheduler schedules', parseIntFlag('--rounds', 1, 1_000_000), defaultAssociation.rounds)
    .option('--schedulers <list>', `comma-separated: ${SCHEDULERS.join(', ')}`, SCHEDULERS.join(','))
    .option('--train', 'train the D3QN first and use that policy (written to --policy, default <out>/d3qn-policy.onnx)', false)
    .option('--episodes <n>', 'D3QN training episodes of 25 rounds', parseIntFlag('--episodes', 1, 100_000), defaultAssociation.d3qn.episodes)
    .option('--policy <stem>', 'D3QN policy files <stem>.onnx and <stem>.json (default: the committed one for the default twin)')
    .option('--mobility <kind>', 'iid (positions redrawn every round, the paper) or walk (random walk)', 'iid')
    .option('--seed <n>', 'twin seed of the evaluation rounds', parseIntFlag('--seed', 0, 2 ** 32 - 1), defaultAssociation.seed)
    .option('--out <dir>', 'write CSV, JSON and plots here', 'out')
    .option('--json', 'print the summary as JSON', false)
    .action(async (o: { rounds: number; schedulers: string; train: boolean; episodes: number; policy?: string; mobility: string; seed: number; out: string; json: boolean }) => {
      const schedulers = o.schedulers.split(',');
      for (const x of schedulers) if (!(SCHEDULERS as readonly string[]).includes(x)) throw new UsageError(`unknown scheduler ${x}: use ${SCHEDULERS.join(', ')}`);
      if (o.mobility !== 'iid' && o.mobility !== 'walk') throw new UsageError('--mobility must be iid or walk');
      const bar = progress((o.train ? o.episodes : 0) + schedulers.length * o.rounds);
      const r = await runAssociation({
        ...defaultAssociation,
        rounds: o.rounds,
        schedulers: schedulers as SchedulerName[],
        train: o.train,
        policy: o.policy,
        d3qn: { ...defaultAssociation.d3qn, episodes: o.episodes },
        mobility: { ...defaultAssociation.mobility, kind: o.mobility },
        seed: o.seed,
        out: o.out,
        onEpisode: (e) => bar(`training: episode ${e.episode}, loss ${e.loss.toFixed(4)}, ε ${e.epsilon.toFixed(3)}`),
        onRound: (name, round) => bar(`${name}: round ${round} of ${o.rounds}`),
      });
      bar.done();
      const { training: _t, ...summary } = r;
      finish(o, summary, Object.entries(r.schedulers).map(([n, s]) => `${n.padEnd(14)} cost ${s.meanCost.toFixed(3)}  time ${s.meanTimeS.toFixed(3)} s  energy ${s.meanEnergyJ.toFixed(3)} J  scheduling ${s.execMsPerRound.toFixed(3)} ms/round`));
    });
}
