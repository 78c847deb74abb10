import { Command } from 'commander';
import { defaultCentralized, runCentralized } from '../../experiments/centralized.ts';
import { parseIntFlag, parseNumberFlag } from '../exit.ts';
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
  return exp;
}
