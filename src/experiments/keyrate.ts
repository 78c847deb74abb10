/**
 * `bfl-node experiment keyrate`: the QKD paper's Fig. 4, the loss of the global model of a
 * quantum-secured federated edge learning (FEL) cluster against the cluster head's secret-key rate,
 * on scikit-learn's breast cancer, digits, iris and wine data sets.
 *
 * The paper's mechanism (§VI-B): the secret-key rate bounds how many quantum-secured channels the
 * cluster head can keep up at once, hence how many FEL workers take part in each global iteration.
 * The paper does not say how a key rate maps to channels; ours: a worker's channel carries its model
 * upload and the global model's download under one-time-pad encryption, so it needs
 * 2 · (model bits) of key per global iteration; a head with key rate R (bit/s) and iterations of
 * `roundSeconds` keeps ⌊R · roundSeconds / (2 · model bits)⌋ channels (capped at the workers).
 * The x axis is R in units of one channel's rate, so the four data sets share it; the CSV also has R
 * in bit/s.
 *
 * The loss is the Taylor cross-entropy of the paper's reference [59] (Feng et al., IJCAI 2020):
 * Σ_{k=1..t} (1 − p_y)^k / k, with t = 2 by default (their recommended order).
 *
 * The data sets are read from Debian's python3-sklearn (the CSV files scikit-learn bundles); they
 * are an experiment input, never a dependency of the product.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { BflError, ErrorCode } from '../core/errors.ts';
import { Rng } from '../core/random.ts';
import { type Dataset, subset } from '../learn/data.ts';
import { type MlpSpec, initParams, paramCount } from '../learn/model.ts';
import { type Partition, partition } from '../learn/partition.ts';
import { ModelRuntime } from '../learn/runtime.ts';
import { trainLocal } from '../learn/train.ts';
import { lineChart } from './plot.ts';
import { Report } from './report.ts';

export const SKLEARN_DATA_DIR = '/usr/lib/python3/dist-packages/sklearn/datasets/data';
export const KEYRATE_DATASETS = ['breast_cancer', 'digits', 'iris', 'wine'] as const;
export type KeyrateDataset = (typeof KEYRATE_DATASETS)[number];

export interface KeyrateOptions {
  datasets: KeyrateDataset[];
  dataDir: string;
  /** FEL workers of the cluster (the data is split among them). */
  workers: number;
  /** How the training data is split among the workers. */
  partition: Partition;
  /** Secret-key rates on the x axis, in channels' worth (1 = exactly one worker channel). */
  rates: number[];
  /** Global iterations per run. */
  rounds: number;
  epochs: number; // E
  batchSize: number; // B
  lr: number; // η
  hidden: number; // one hidden layer of this width (0: softmax regression)
  /** Length of one global iteration, seconds: converts channels to bit/s. */
  roundSeconds: number;
  /** Order t of the Taylor cross-entropy. */
  taylorOrder: number;
  /** Share of each data set held out for the test loss. */
  testShare: number;
  /** Partition and worker-sampling seeds are seed, seed + 1, …: one run per repeat, averaged. */
  seed: number;
  repeats: number;
  out: string;
  onRun?: (dataset: string, rate: number, loss: number) => void;
}

// Small models for small tabular data sets: E = 1, B = 10 and η = 0.05 as a plain FEL worker would
// use; 10 workers and 10 iterations keep the difference between few and many channels visible
// (with hundreds of iterations every setting converges to the same loss on data this small).
// Workers hold label-skewed data (Dirichlet α = 0.3 per class; two label shards leave iris and wine,
// three classes, with one class per worker), as edge workers collecting their own data do:
// with an iid split, averaging more workers per iteration only lowers the variance of the same
// number of SGD steps, and the loss hardly moves with the key rate (measured: docs/experiments.md).
export const defaultKeyrate: Omit<KeyrateOptions, 'onRun'> = {
  datasets: [...KEYRATE_DATASETS],
  dataDir: SKLEARN_DATA_DIR,
  workers: 10,
  partition: { kind: 'dirichlet', alpha: 0.3 }, // the CLI's default string says the same: keep them together
  rates: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
  rounds: 10,
  epochs: 1,
  batchSize: 10,
  lr: 0.05,
  hidden: 16,
  roundSeconds: 1,
  taylorOrder: 2,
  testShare: 0.25,
  seed: 1,
  repeats: 3,
  out: 'out',
};

/**
 * One scikit-learn data set from its bundled CSV: breast_cancer.csv, iris.csv and wine_data.csv
 * start with a line "n_samples,n_features,class names…", then one row of features and the class
 * per sample; digits.csv.gz has no header, 64 pixel columns and the class. Features are
 * standardised to zero mean and unit variance (over the whole set: the split is a later step).
 */
export function loadSklearn(name: KeyrateDataset, dir = SKLEARN_DATA_DIR): Dataset {
  const file = join(dir, name === 'digits' ? 'digits.csv.gz' : name === 'wine' ? 'wine_data.csv' : `${name}.csv`);
  if (!existsSync(file)) throw new BflError(ErrorCode.DATA_NOT_FOUND, `${file} not found: install Debian's python3-sklearn (apt-get install python3-sklearn) or pass --data-dir with scikit-learn's datasets/data folder`);
  const text = name === 'digits' ? gunzipSync(readFileSync(file)).toString('utf8') : readFileSync(file, 'utf8');
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const rows = (name === 'digits' ? lines : lines.slice(1)).map((l) => l.split(',').map(Number));
  const dim = rows[0].length - 1;
  const n = rows.length;
  const x = new Float32Array(n * dim);
  const y = new Uint8Array(n);
  const mean = new Float64Array(dim);
  const sq = new Float64Array(dim);
  rows.forEach((r, i) => {
    if (r.length !== dim + 1 || r.some((v) => !Number.isFinite(v))) throw new BflError(ErrorCode.BAD_DATA, `${file}: row ${i + 1} is not ${dim} numbers and a class`);
    for (let j = 0; j < dim; j++) {
      mean[j] += r[j];
      sq[j] += r[j] * r[j];
    }
    y[i] = r[dim];
  });
  for (let j = 0; j < dim; j++) {
    mean[j] /= n;
    sq[j] = Math.sqrt(Math.max(sq[j] / n - mean[j] * mean[j], 0)) || 1; // constant pixels of digits: σ = 1
  }
  rows.forEach((r, i) => {
    for (let j = 0; j < dim; j++) x[i * dim + j] = (r[j] - mean[j]) / sq[j];
  });
  const classes = Math.max(...y) + 1;
  return { name, x, y, n, dim, classes };
}

/** Taylor cross-entropy Σ_{k=1..t} (1 − p_y)^k / k, and plain cross-entropy, averaged over `data`. */
export async function taylorLoss(rt: ModelRuntime, params: Float32Array, data: Dataset, order: number): Promise<{ taylor: number; crossEntropy: number; accuracy: number }> {
  const logits = await rt.logits(params, data.x, data.n);
  let taylor = 0;
  let ce = 0;
  let correct = 0;
  const c = data.classes;
  for (let i = 0; i < data.n; i++) {
    let max = -Infinity;
    let best = 0;
    for (let k = 0; k < c; k++) if (logits[i * c + k] > max) [max, best] = [logits[i * c + k], k];
    let sum = 0;
    for (let k = 0; k < c; k++) sum += Math.exp(logits[i * c + k] - max);
    const label = data.y[i];
    const p = Math.exp(logits[i * c + label] - max) / sum;
    for (let k = 1; k <= order; k++) taylor += (1 - p) ** k / k;
    ce += Math.log(sum) - (logits[i * c + label] - max);
    if (best === label) correct++;
  }
  return { taylor: taylor / data.n, crossEntropy: ce / data.n, accuracy: correct / data.n };
}

interface Point {
  rate: number;
  channels: number;
  keyRateBitsPerSecond: number;
  taylor: number;
  crossEntropy: number;
  accuracy: number;
}

/** Workers a key rate of `rate` channels' worth admits per iteration: ⌊rate⌋, at least one, at most all. */
const channelsOf = (rate: number, workers: number) => Math.max(1, Math.min(workers, Math.floor(rate + 1e-9)));

/** FedAvg over `rounds` global iterations with `channels` workers drawn per iteration. */
async function felRun(rt: ModelRuntime, spec: MlpSpec, shards: Dataset[], test: Dataset, channels: number, o: KeyrateOptions, seed: number) {
  const rng = new Rng(seed);
  let global = initParams(spec, seed);
  const ids = shards.map((_, i) => i);
  for (let r = 0; r < o.rounds; r++) {
    rng.shuffle(ids);
    const chosen = ids.slice(0, channels).sort((a, b) => a - b);
    const next = new Float64Array(global.length);
    let total = 0;
    for (const w of chosen) {
      if (shards[w].n === 0) continue; // a Dirichlet split can leave a worker without data: it sends nothing
      const u = await trainLocal(rt, global, shards[w], { epochs: o.epochs, batchSize: o.batchSize, lr: o.lr, seed: seed * 1000 + r * 100 + w });
      for (let k = 0; k < next.length; k++) next[k] += u.params[k] * u.samples;
      total += u.samples;
    }
    if (total > 0) global = Float32Array.from(next, (v) => v / total);
  }
  return taylorLoss(rt, global, test, o.taylorOrder);
}

export async function runKeyrateExperiment(o: KeyrateOptions) {
  const report = new Report(o.out);
  const results: Record<string, { samples: number; features: number; classes: number; parameters: number; channelKeyRateBitsPerSecond: number; points: Point[] }> = {};
  for (const name of o.datasets) {
    const all = loadSklearn(name, o.dataDir);
    const spec: MlpSpec = { kind: 'mlp', layers: o.hidden > 0 ? [all.dim, o.hidden, all.classes] : [all.dim, all.classes] };
    const params = paramCount(spec);
    // one-time pad both ways: 2 · 32 · |w| bits of key per worker and global iteration
    const channelRate = (2 * 32 * params) / o.roundSeconds;
    const rt = await ModelRuntime.create(spec);
    try {
      const sums = o.rates.map(() => ({ taylor: 0, crossEntropy: 0, accuracy: 0 }));
      for (let rep = 0; rep < o.repeats; rep++) {
        const seed = o.seed + rep;
        const order = Array.from({ length: all.n }, (_, i) => i);
        new Rng(seed).shuffle(order);
        const nTest = Math.round(all.n * o.testShare);
        const test = subset(all, order.slice(0, nTest));
        const trainSet = subset(all, order.slice(nTest));
        const shards = partition(trainSet.y, o.workers, o.partition, seed).map((idx) => subset(trainSet, idx));
        for (const [i, rate] of o.rates.entries()) {
          const r = await felRun(rt, spec, shards, test, channelsOf(rate, o.workers), o, seed);
          sums[i].taylor += r.taylor / o.repeats;
          sums[i].crossEntropy += r.crossEntropy / o.repeats;
          sums[i].accuracy += r.accuracy / o.repeats;
          o.onRun?.(name, rate, r.taylor);
        }
      }
      const points = o.rates.map((rate, i) => ({ rate, channels: channelsOf(rate, o.workers), keyRateBitsPerSecond: rate * channelRate, ...sums[i] }));
      results[name] = { samples: all.n, features: all.dim, classes: all.classes, parameters: params, channelKeyRateBitsPerSecond: channelRate, points };
    } finally {
      await rt.close();
    }
  }
  const names = Object.keys(results);
  await report.csv('keyrate', ['dataset', 'rate_channels', 'key_rate_bps', 'workers_per_iteration', 'taylor_loss', 'cross_entropy', 'accuracy'], names.flatMap((n) => results[n].points.map((p) => [n, p.rate, Math.round(p.keyRateBitsPerSecond), p.channels, p.taylor.toFixed(5), p.crossEntropy.toFixed(5), p.accuracy.toFixed(4)])));
  await report.plot(
    'keyrate',
    lineChart({
      title: "Fig. 4: global model loss vs secret-key rate",
      xLabel: "cluster head's secret-key rate (in one worker channel's rate)",
      yLabel: `Taylor loss (t = ${o.taylorOrder}), test set`,
      series: names.map((n) => ({ name: n.replace('_', ' '), points: results[n].points.map((p) => [p.rate, p.taylor] as [number, number]) })),
      // zoomed to the data: every curve lies below about 0.8
      yRange: [0, Math.ceil(10 * Math.max(...names.flatMap((n) => results[n].points.map((p) => p.taylor)))) / 10],
    }),
  );
  const summary = {
    workers: o.workers,
    partition: o.partition,
    rounds: o.rounds,
    repeats: o.repeats,
    datasets: Object.fromEntries(names.map((n) => {
      const r = results[n];
      return [n, { ...r, taylorAtLowestRate: r.points[0].taylor, taylorAtHighestRate: r.points[r.points.length - 1].taylor }];
    })),
  };
  await report.json('keyrate', { options: { ...o, onRun: undefined }, summary });
  return { ...summary, files: report.files };
}
