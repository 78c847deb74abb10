import { Command } from 'commander';
import { defaultInversion, runInversion } from '../../experiments/inversion.ts';
import { progress } from '../../experiments/progress.ts';
import { UsageError, parseIntFlag, parseNumberFlag } from '../exit.ts';
import { print, printJson } from '../output.ts';

/** `experiment inversion`: the privacy check of issue 19 (a curious miner's gradient-inversion attack). */
export function inversionCommand(): Command {
  const d = defaultInversion;
  return new Command('inversion')
    .description('a curious miner reconstructs training images: DLG on a federated update vs inverting split learning\'s smashed data (known or guessed head); MSE and SSIM per image')
    .option('--batches <list>', 'batch sizes of the attacked step (1-6)', d.batches.join(','))
    .option('--images <n>', 'images attacked per batch size', parseIntFlag('--images', 1, 64), d.images)
    .option('--iterations <n>', 'optimisation steps per attack', parseIntFlag('--iterations', 1, 1_000_000), d.iterations)
    .option('--lr <rate>', 'Adam step on pixels in [0, 1]', parseNumberFlag('--lr', 1e-9, 10), d.lr)
    .option('--drift <list>', 'split mode from the genesis head: the client\'s SGD steps before the attack, one attack per value', d.drift.join(','))
    .option('--hidden <w>', 'width of the one hidden layer (the smashed data per sample)', parseIntFlag('--hidden', 1, 100_000), d.hidden)
    .option('--dataset <name>', 'mnist (embedded), fashion or idx:DIR', d.dataset)
    .option('--seed <n>', 'seed', parseIntFlag('--seed', 0, 2 ** 32 - 1), d.seed)
    .option('--out <dir>', 'write CSV, JSON and the image gallery here', 'out')
    .option('--json', 'print the result as JSON', false)
    .action(async (o: { batches: string; images: number; iterations: number; lr: number; drift: string; hidden: number; dataset: string; seed: number; out: string; json: boolean }) => {
      const batches = o.batches.split(',').map(Number);
      // 6! orderings are tried to match a batch's reconstructions to its images
      if (batches.some((b) => !Number.isInteger(b) || b < 1 || b > 6)) throw new UsageError(`--batches takes comma-separated batch sizes from 1 to 6, got "${o.batches}"`);
      if (batches.some((b) => b > o.images)) throw new UsageError(`--images ${o.images} is fewer than the largest batch ${Math.max(...batches)}`);
      const drift = o.drift === '' ? [] : o.drift.split(',').map(Number);
      if (drift.some((s) => !Number.isInteger(s) || s < 0 || s > 1_000_000)) throw new UsageError(`--drift takes comma-separated step counts from 0 to 1000000, got "${o.drift}"`);
      const bar = progress(batches.reduce((s, b) => s + 2 * Math.floor(o.images / b), 0) + drift.length);
      const r = await runInversion({ ...d, batches, images: o.images, iterations: o.iterations, lr: o.lr, drift, hidden: o.hidden, dataset: o.dataset, seed: o.seed, out: o.out, onAttack: (label) => bar(label) });
      bar.done();
      if (o.json) printJson(r);
      else {
        const f = (s: { mse: number; ssim: number } | null) => (s ? `MSE ${s.mse.toFixed(4)} SSIM ${s.ssim.toFixed(3)}` : '-');
        print(`${r.dataset}, MLP ${r.model.join('-')}, ${r.iterations} steps per attack; the mean training image scores ${f(r.baseline)}`);
        for (const [B, x] of Object.entries(r.byBatch)) {
          print(`  batch ${B}: federated DLG ${f(x.federatedDlg)} (labels ${(x.federatedLabelsRecovered * 100).toFixed(0)} %)${x.federatedAnalytic ? `, closed form ${f(x.federatedAnalytic)}` : ''}`);
          print(`           split, head known ${f(x.splitKnownHead)}; head guessed ${f(x.splitGuessedHead)}`);
        }
        for (const [steps, x] of Object.entries(r.splitGenesisHead)) print(`  split from the genesis head, the client ${steps} steps on: through the genesis head ${f(x)}`);
        print(`  ${r.seconds} s; wrote ${r.files.join(', ')}`);
      }
    });
}
