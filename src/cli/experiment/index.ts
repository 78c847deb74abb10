import { Command } from 'commander';
import { defaultCentralized, runCentralized } from '../../experiments/centralized.ts';
import { UsageError, parseIntFlag, parseNumberFlag } from '../exit.ts';
import { type AggregatorName, AGGREGATORS } from '../../core/aggregation/index.ts';
import { ATTACK_HELP, parseAttack } from '../../experiments/attacks.ts';
import { defaultAttackExperiment, runAttackExperiment } from '../../experiments/attack.ts';
import { print, printJson } from '../output.ts';

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
  exp
    .command('attack')
    .description('attack detection with rotating attackers (case i), in the simulator: detection rate, false positives, accuracy vs no attack')
    .option('--clients <k>', 'clients', parseIntFlag('--clients', 2, 1000), defaultAttackExperiment.clients)
    .option('--miners <m>', 'miners', parseIntFlag('--miners', 1, 32), defaultAttackExperiment.miners)
    .option('--malicious <f>', 'fraction of clients attacking', parseNumberFlag('--malicious', 0, 0.99), defaultAttackExperiment.malicious)
    .option('--attack <attack>', ATTACK_HELP, 'sign-flip')
    .option('--aggregator <name>', AGGREGATORS.join(', '), defaultAttackExperiment.aggregator)
    .option('--partition <p>', 'iid or noniid (two label shards per client)', defaultAttackExperiment.partition)
    .option('--aggregations <a>', 'aggregations to run', parseIntFlag('--aggregations', 1, 10_000), defaultAttackExperiment.aggregations)
    .option('--eps <eps>', 'BFL-MEC DBSCAN radius: a number or auto')
    .option('--metric <m>', 'BFL-MEC DBSCAN distance: cosine or euclidean')
    .option('--no-rotate', 'keep the same attackers (no case i rotation)')
    .option('--seed <n>', 'seed', parseIntFlag('--seed', 0, 2 ** 32 - 1), defaultAttackExperiment.seed)
    .option('--out <dir>', 'write CSV and JSON here', 'out')
    .option('--json', 'print the summary as JSON', false)
    .action(async (o: { clients: number; miners: number; malicious: number; attack: string; aggregator: string; partition: string; aggregations: number; eps?: string; metric?: string; rotate: boolean; seed: number; out: string; json: boolean }) => {
      if (!(AGGREGATORS as readonly string[]).includes(o.aggregator)) throw new UsageError(`--aggregator must be one of ${AGGREGATORS.join(', ')}`);
      if (o.partition !== 'iid' && o.partition !== 'noniid') throw new UsageError('--partition must be iid or noniid');
      if (o.metric && o.metric !== 'cosine' && o.metric !== 'euclidean') throw new UsageError('--metric must be cosine or euclidean');
      if (o.eps !== undefined && o.eps !== 'auto' && !(Number(o.eps) >= 0)) throw new UsageError('--eps must be a number >= 0 or auto');
      try {
        parseAttack(o.attack);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      const aggregation: Record<string, unknown> = {};
      if (o.eps !== undefined) aggregation.eps = o.eps === 'auto' ? 'auto' : Number(o.eps);
      if (o.metric) aggregation.metric = o.metric;
      const bar = progress(o.aggregations * 2);
      const r = await runAttackExperiment({
        ...defaultAttackExperiment,
        clients: o.clients,
        miners: o.miners,
        malicious: o.malicious,
        attack: o.attack,
        aggregator: o.aggregator as AggregatorName,
        partition: o.partition,
        aggregations: o.aggregations,
        rotate: o.rotate,
        seed: o.seed,
        aggregation,
        out: o.out,
        onRound: (which, round) => bar(`${which} round ${round.round}: accuracy ${round.accuracy.toFixed(4)}`),
      });
      bar.done();
      const { rounds: _r, baseline: _b, ...summary } = r;
      if (o.json) printJson(summary);
      else {
        print(`${r.attack} by ${r.attackers} of ${r.clients} clients against ${r.aggregator} (${r.partition}), ${r.rounds.length} aggregations:`);
        print(`  detection rate ${r.detectionRate === null ? '-' : r.detectionRate.toFixed(3)}, false positive rate ${r.falsePositiveRate.toFixed(3)}, ${r.rotations} rotations`);
        print(`  accuracy ${r.accuracy.toFixed(4)} vs ${r.accuracyNoAttack.toFixed(4)} without attack (${r.accuracyDrop} points)`);
        if (r.files) print(`  wrote ${r.files.csv} and ${r.files.json}`);
      }
    });
  return exp;
}

/** A one-line progress bar on a terminal; nothing otherwise. */
function progress(total: number) {
  let n = 0;
  const tty = process.stderr.isTTY;
  const f = (label: string) => {
    n++;
    if (!tty) return;
    const width = 30;
    const filled = Math.round((Math.min(n, total) / total) * width);
    process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${label}`.padEnd(100));
  };
  f.done = () => {
    if (tty) process.stderr.write('\n');
  };
  return f;
}
