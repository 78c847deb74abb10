/**
 * Local training and evaluation. Minibatch SGD over E epochs with batch size B and rate η on a
 * client's samples (the paper's Algorithm 2), with the optional FedProx proximal term
 * μ/2 · ||w − w_global||² (gradient μ(w − w_global)). Returns Δ = w_local − w_global.
 */
import { Rng } from '../core/random.ts';
import type { Dataset } from './data.ts';
import { classCount, inputSize } from './model.ts';
import type { ModelRuntime } from './runtime.ts';

export interface TrainOptions {
  epochs: number; // E
  batchSize: number; // B
  lr: number; // η
  mu?: number; // FedProx μ (0: plain SGD)
  seed: number; // shuffling
  /** Replay a given sample order per epoch instead of shuffling (reference comparisons). */
  epochOrder?: (epoch: number) => ArrayLike<number>;
  /** 'loop' (default): every step of every epoch in one onnxruntime call (an ONNX Loop); 'step':
   * one call per step, the reference the loop is tested against bit for bit. */
  engine?: 'loop' | 'step';
}

export interface LocalUpdate {
  delta: Float32Array;
  params: Float32Array;
  samples: number;
  steps: number;
  loss: number; // mean training loss over the last epoch
}

export async function trainLocal(rt: ModelRuntime, global: Float32Array, data: Dataset, opts: TrainOptions): Promise<LocalUpdate> {
  const { epochs, batchSize, lr } = opts;
  const mu = opts.mu ?? 0;
  if (data.n === 0) throw new RangeError('no samples to train on');
  if (!(epochs >= 1 && batchSize >= 1 && lr > 0 && mu >= 0)) throw new RangeError(`bad training options ${JSON.stringify(opts)}`);
  const prox = mu > 0 ? { mu, global } : undefined;
  const dim = inputSize(rt.spec);
  const classes = classCount(rt.spec);
  const rng = new Rng(opts.seed);
  const order = Array.from({ length: data.n }, (_, i) => i);
  const nextOrder = (e: number) => {
    if (opts.epochOrder) {
      const given = opts.epochOrder(e);
      if (given.length !== data.n) throw new RangeError(`epoch order has ${given.length} entries for ${data.n} samples`);
      for (let i = 0; i < data.n; i++) order[i] = given[i];
    } else {
      rng.shuffle(order);
    }
  };
  if ((opts.engine ?? 'loop') === 'loop') {
    // The steps of all epochs planned up front (the same shuffles, in the same order), run in one call.
    const perEpoch = Math.ceil(data.n / batchSize);
    const S = epochs * perEpoch;
    const idx = new BigInt64Array(S * batchSize);
    const counts = new BigInt64Array(S);
    for (let e = 0; e < epochs; e++) {
      nextOrder(e);
      for (let k = 0; k < perEpoch; k++) {
        const start = k * batchSize;
        const b = Math.min(batchSize, data.n - start);
        const s = e * perEpoch + k;
        counts[s] = BigInt(b);
        for (let i = 0; i < b; i++) idx[s * batchSize + i] = BigInt(order[start + i]);
      }
    }
    const y = new Float32Array(data.n * classes);
    for (let j = 0; j < data.n; j++) y[j * classes + data.y[j]] = 1;
    const x = data.x.length === data.n * dim ? data.x : data.x.subarray(0, data.n * dim);
    // onnxruntime reads `global` and writes the result into `next`: no copy of the start
    const next = new Float32Array(global.length);
    const losses = await rt.sgdSteps(global, x, y, data.n, idx, counts, lr, next, prox);
    // the mean loss of the last epoch, summed as the step-by-step path sums it
    let lossSum = 0;
    let lossCount = 0;
    for (let s = S - perEpoch; s < S; s++) {
      const b = Number(counts[s]);
      lossSum += losses[s] * b;
      lossCount += b;
    }
    const delta = new Float32Array(next.length);
    for (let k = 0; k < next.length; k++) delta[k] = next[k] - global[k];
    return { delta, params: next, samples: data.n, steps: S, loss: lossSum / lossCount };
  }
  // Two parameter buffers: each step reads one and onnxruntime writes the next into the other.
  let w = Float32Array.from(global);
  let next = new Float32Array(w.length);
  const xb = new Float32Array(batchSize * dim);
  const yb = new Float32Array(batchSize * classes);
  let steps = 0;
  let lossSum = 0;
  let lossCount = 0;
  for (let e = 0; e < epochs; e++) {
    nextOrder(e);
    lossSum = 0;
    lossCount = 0;
    for (let start = 0; start < data.n; start += batchSize) {
      const b = Math.min(batchSize, data.n - start);
      yb.fill(0, 0, b * classes);
      for (let i = 0; i < b; i++) {
        const j = order[start + i];
        xb.set(data.x.subarray(j * dim, (j + 1) * dim), i * dim);
        yb[i * classes + data.y[j]] = 1;
      }
      const loss = await rt.sgdStep(w, xb.subarray(0, b * dim), yb.subarray(0, b * classes), b, lr, next, prox);
      [w, next] = [next, w];
      lossSum += loss * b;
      lossCount += b;
      steps++;
    }
  }
  const delta = new Float32Array(w.length);
  for (let k = 0; k < w.length; k++) delta[k] = w[k] - global[k];
  return { delta, params: w, samples: data.n, steps, loss: lossSum / lossCount };
}

export interface Evaluation {
  loss: number;
  accuracy: number;
  samples: number;
}

export async function evaluate(rt: ModelRuntime, params: Float32Array, data: Dataset, batch = 1000): Promise<Evaluation> {
  const dim = inputSize(rt.spec);
  const classes = classCount(rt.spec);
  let correct = 0;
  let loss = 0;
  for (let start = 0; start < data.n; start += batch) {
    const b = Math.min(batch, data.n - start);
    const logits = await rt.logits(params, data.x.subarray(start * dim, (start + b) * dim), b);
    for (let i = 0; i < b; i++) {
      let best = 0;
      let max = -Infinity;
      for (let c = 0; c < classes; c++) {
        const v = logits[i * classes + c];
        if (v > max) {
          max = v;
          best = c;
        }
      }
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += Math.exp(logits[i * classes + c] - max);
      const label = data.y[start + i];
      loss += Math.log(sum) - (logits[i * classes + label] - max);
      if (best === label) correct++;
    }
  }
  return { loss: loss / data.n, accuracy: correct / data.n, samples: data.n };
}
