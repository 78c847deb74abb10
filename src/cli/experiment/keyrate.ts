import { Command } from 'commander';
import { KEYRATE_DATASETS, type KeyrateDataset, defaultKeyrate, runKeyrateExperiment } from '../../experiments/keyrate.ts';
import { progress } from '../../experiments/progress.ts';
import { parsePartition } from '../../learn/partition.ts';
import { UsageError, parseIntFlag, parseNumberFlag } from '../exit.ts';
import { print, printJson } from '../output.ts';

/** `experiment keyrate`: the QKD paper's Fig. 4 (src/experiments/keyrate.ts). */
export function keyrateCommand(): Command {
  const d = defaultKeyrate;
  return new Command('keyrate')
    .description("global model loss against the cluster head's secret-key rate (the QKD paper's Fig. 4) on scikit-learn's breast cancer, digits, iris and wine (read from Debian's python3-sklearn)")
    .option('--datasets <list>', KEYRATE_DATASETS.join(', '), d.datasets.join(','))
    .option('--data-dir <dir>', "scikit-learn's datasets/data folder", d.dataDir)
    .option('--workers <n>', 'FEL workers in the cluster', parseIntFlag('--workers', 1, 1000), d.workers)
    .option('--partition <p>', 'iid, shards[:K] (K label-sorted shards per worker) or dirichlet:α', 'dirichlet:0.3')
    .option('--rates <list>', "secret-key rates, in one worker channel's rate (1 = one channel)", d.rates.join(','))
    .option('--rounds <n>', 'global iterations', parseIntFlag('--rounds', 1, 10_000), d.rounds)
    .option('--repeats <n>', 'seeded repeats averaged per point', parseIntFlag('--repeats', 1, 100), d.repeats)
    .option('--lr <rate>', 'learning rate η', parseNumberFlag('--lr', 1e-9, 100), d.lr)
    .option('--seed <n>', 'seed', parseIntFlag('--seed', 0, 2 ** 32 - 1), d.seed)
    .option('--out <dir>', 'write CSV, JSON and plots here', d.out)
    .option('--json', 'print the summary as JSON', false)
    .action(async (o: { datasets: string; dataDir: string; workers: number; partition: string; rates: string; rounds: number; repeats: number; lr: number; seed: number; out: string; json: boolean }) => {
      const datasets = o.datasets.split(',');
      for (const x of datasets) if (!(KEYRATE_DATASETS as readonly string[]).includes(x)) throw new UsageError(`unknown data set ${x}: use ${KEYRATE_DATASETS.join(', ')}`);
      const rates = o.rates.split(',').map(Number);
      if (rates.some((r) => !(r >= 1 && r <= 1e6))) throw new UsageError('--rates must be numbers of at least 1 (one channel), comma-separated');
      let part;
      try {
        part = parsePartition(o.partition);
      } catch (e) {
        throw new UsageError(`--${(e as Error).message}`);
      }
      const bar = progress(datasets.length * rates.length * o.repeats);
      const r = await runKeyrateExperiment({ ...d, datasets: datasets as KeyrateDataset[], dataDir: o.dataDir, workers: o.workers, partition: part, rates, rounds: o.rounds, repeats: o.repeats, lr: o.lr, seed: o.seed, out: o.out, onRun: (n, rate, loss) => bar(`${n}: rate ${rate}, Taylor loss ${loss.toFixed(3)}`) });
      bar.done();
      if (o.json) printJson(r);
      else {
        for (const [n, x] of Object.entries(r.datasets)) print(`${n.padEnd(14)} Taylor loss ${x.taylorAtLowestRate.toFixed(3)} at one channel → ${x.taylorAtHighestRate.toFixed(3)} at ${rates[rates.length - 1]} (one channel = ${(x.channelKeyRateBitsPerSecond / 1000).toFixed(1)} kbit/s)`);
        print(`wrote ${r.files.join(', ')}`);
      }
    });
}
