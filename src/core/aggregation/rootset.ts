/**
 * A public root set (issue 11; docs/decisions.md "Rewards from a public root set"): a small
 * labelled set every miner holds (named by the network config, its SHA-256 there), on which a
 * reward rule may measure what an update does to the model, as FLTrust (Cao et al., NDSS 2021)
 * and Zeno (Xie et al., ICML 2019) do. Consensus code: the MLP's cross-entropy and its gradient
 * in float64, samples in index order, units and coordinates in one fixed order, exp/log by V8's
 * fdlibm ports (the same bits on every platform for one Node version), never onnxruntime (whose
 * kernels may sum in another order per CPU). Used today by the offline study of root-set rewards
 * (scripts/rootset-offline.ts, scripts/rootset-flip.ts); no consensus rule uses it yet (a rule
 * that did would round its factors to a fixed grid, e.g. 2^-24, before they enter a reward).
 */
import { toHex } from '../bytes.ts';
import { BflError, ErrorCode } from '../errors.ts';
import { sha256 } from '../hash.ts';
import { Rng } from '../random.ts';

export interface RootSet {
  /** count × dim inputs, row-major. */
  x: Float32Array;
  /** count labels in [0, classes). */
  y: Uint8Array;
  count: number;
  dim: number;
  classes: number;
}

/** The root set as the bytes its hash commits to: u32 count, u32 dim, u32 classes (LE), the
 * labels, then the inputs as float32 LE. */
export function encodeRootSet(r: RootSet): Uint8Array {
  const out = new Uint8Array(12 + r.count + r.count * r.dim * 4);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, r.count, true);
  dv.setUint32(4, r.dim, true);
  dv.setUint32(8, r.classes, true);
  out.set(r.y, 12);
  const at = 12 + r.count;
  for (let k = 0; k < r.x.length; k++) dv.setFloat32(at + 4 * k, r.x[k], true);
  return out;
}

export function rootSetHash(r: RootSet): Uint8Array {
  return sha256(encodeRootSet(r));
}

/**
 * `perClass` samples of each class, drawn with `seed` from `labels` (indices into the data set the
 * labels belong to), sorted by index: the selection every node makes from the same data and seed.
 * Throws when a class has fewer than perClass samples.
 */
export function selectRootIndices(labels: Uint8Array, classes: number, perClass: number, seed: number): number[] {
  const rng = new Rng(seed);
  const out: number[] = [];
  for (let c = 0; c < classes; c++) {
    const of = [];
    for (let i = 0; i < labels.length; i++) if (labels[i] === c) of.push(i);
    if (of.length < perClass) throw new BflError(ErrorCode.BAD_CONFIG, `root set: class ${c} has ${of.length} samples, ${perClass} needed: lower rootSet.perClass`);
    out.push(...rng.shuffle(of).slice(0, perClass));
  }
  return out.sort((a, b) => a - b);
}

/**
 * Checks a root set against the model it will score (layer widths, input first, classes last)
 * and the hash the network config names; a one-line BAD_CONFIG error says what is wrong.
 */
export function checkRootSet(r: RootSet, layers: number[], expectedHash?: string): void {
  const bad = (what: string) => {
    throw new BflError(ErrorCode.BAD_CONFIG, `root set: ${what}`);
  };
  if (!(Number.isInteger(r.count) && r.count >= 1)) bad(`needs at least one sample, got ${r.count}`);
  if (r.dim !== layers[0]) bad(`samples have ${r.dim} inputs, the model takes ${layers[0]}: name a root set of the network's data set`);
  if (r.classes !== layers[layers.length - 1]) bad(`${r.classes} classes, the model has ${layers[layers.length - 1]}`);
  if (r.x.length !== r.count * r.dim || r.y.length !== r.count) bad(`${r.x.length} input values and ${r.y.length} labels for ${r.count} samples of ${r.dim}`);
  for (let i = 0; i < r.count; i++) if (r.y[i] >= r.classes) bad(`label ${r.y[i]} of sample ${i} is not below ${r.classes}`);
  for (let k = 0; k < r.x.length; k++) if (!Number.isFinite(r.x[k])) bad(`input ${k} is not a finite number`);
  if (expectedHash !== undefined) {
    const h = toHex(rootSetHash(r));
    if (h !== expectedHash.toLowerCase()) bad(`SHA-256 ${h} differs from the config's ${expectedHash}: every miner must hold the same set (check rootSet.seed, perClass and the data set)`);
  }
}

/** The root set prepared for repeated evaluation: per sample its non-zero inputs (MNIST: ~19 %
 * of the pixels), which the first layer only needs (same sums, in the same index order). */
export interface PreparedRootSet {
  root: RootSet;
  layers: number[];
  nz: { idx: Int32Array; val: Float64Array }[];
}

export function prepareRootSet(root: RootSet, layers: number[]): PreparedRootSet {
  checkRootSet(root, layers);
  const nz = [];
  for (let s = 0; s < root.count; s++) {
    const idx: number[] = [];
    const val: number[] = [];
    for (let k = 0; k < root.dim; k++) {
      const v = root.x[s * root.dim + k];
      if (v !== 0) {
        idx.push(k);
        val.push(v);
      }
    }
    nz.push({ idx: Int32Array.from(idx), val: Float64Array.from(val) });
  }
  return { root, layers, nz };
}

/** Parameters p (+ d) in float64: the model a reward measures (the aggregated model is rounded to
 * float32 once per coordinate; the measure keeps the float64 sum, one rounding fewer). */
function effective(p: Float32Array, d?: Float32Array): Float64Array {
  const w = new Float64Array(p.length);
  if (d) for (let k = 0; k < p.length; k++) w[k] = p[k] + d[k];
  else for (let k = 0; k < p.length; k++) w[k] = p[k];
  return w;
}

/**
 * Mean cross-entropy over the root set, and with `grad` its gradient (accumulated into it,
 * divided by the count at the end). MLP as src/learn/model.ts lays it out: per layer W (in × out,
 * row-major) then b; ReLU between layers; softmax cross-entropy with the max subtracted.
 */
function lossAndGrad(prep: PreparedRootSet, w: Float64Array, grad?: Float64Array, logitsOut?: Float64Array): number {
  const { layers, nz, root } = prep;
  const L = layers.length - 1;
  const offW: number[] = [];
  const offB: number[] = [];
  let off = 0;
  for (let l = 1; l <= L; l++) {
    offW.push(off);
    off += layers[l - 1] * layers[l];
    offB.push(off);
    off += layers[l];
  }
  if (w.length !== off) throw new RangeError(`the model has ${w.length} parameters, layers ${layers.join('-')} need ${off}`);
  const acts: Float64Array[] = layers.map((n) => new Float64Array(n));
  const deltas: Float64Array[] = layers.map((n) => new Float64Array(n));
  let total = 0;
  for (let s = 0; s < root.count; s++) {
    // forward
    for (let l = 1; l <= L; l++) {
      const nIn = layers[l - 1];
      const nOut = layers[l];
      const z = acts[l];
      const W = offW[l - 1];
      for (let j = 0; j < nOut; j++) z[j] = w[offB[l - 1] + j];
      if (l === 1) {
        const { idx, val } = nz[s];
        for (let t = 0; t < idx.length; t++) {
          const row = W + idx[t] * nOut;
          const x = val[t];
          for (let j = 0; j < nOut; j++) z[j] += x * w[row + j];
        }
      } else {
        const a = acts[l - 1];
        for (let k = 0; k < nIn; k++) {
          const x = a[k];
          if (x === 0) continue;
          const row = W + k * nOut;
          for (let j = 0; j < nOut; j++) z[j] += x * w[row + j];
        }
      }
      if (l < L) for (let j = 0; j < nOut; j++) if (z[j] < 0) z[j] = 0;
    }
    const logits = acts[L];
    if (logitsOut) logitsOut.set(logits, s * logits.length);
    let max = -Infinity;
    for (let j = 0; j < logits.length; j++) if (logits[j] > max) max = logits[j];
    let sum = 0;
    for (let j = 0; j < logits.length; j++) sum += Math.exp(logits[j] - max);
    const y = root.y[s];
    total += Math.log(sum) + max - logits[y];
    if (!grad) continue;
    // backward: δ_L = softmax − onehot
    const dL = deltas[L];
    for (let j = 0; j < logits.length; j++) dL[j] = Math.exp(logits[j] - max) / sum - (j === y ? 1 : 0);
    for (let l = L; l >= 1; l--) {
      const nIn = layers[l - 1];
      const nOut = layers[l];
      const d = deltas[l];
      const W = offW[l - 1];
      for (let j = 0; j < nOut; j++) grad[offB[l - 1] + j] += d[j];
      if (l === 1) {
        const { idx, val } = nz[s];
        for (let t = 0; t < idx.length; t++) {
          const row = W + idx[t] * nOut;
          const x = val[t];
          for (let j = 0; j < nOut; j++) grad[row + j] += x * d[j];
        }
      } else {
        const a = acts[l - 1];
        const dIn = deltas[l - 1];
        for (let k = 0; k < nIn; k++) {
          const row = W + k * nOut;
          const x = a[k];
          let back = 0;
          for (let j = 0; j < nOut; j++) {
            if (x !== 0) grad[row + j] += x * d[j];
            back += w[row + j] * d[j];
          }
          // ReLU: no gradient where the unit was off
          dIn[k] = x > 0 ? back : 0;
        }
      }
    }
  }
  if (grad) for (let k = 0; k < grad.length; k++) grad[k] /= root.count;
  return total / root.count;
}

/** Mean root-set cross-entropy of the model p (+ d). */
export function rootLoss(prep: PreparedRootSet, p: Float32Array, d?: Float32Array): number {
  return lossAndGrad(prep, effective(p, d));
}

/** The logits of the model p (+ d) on every root sample (count × classes, row-major) and the mean cross-entropy. */
export function rootLogits(prep: PreparedRootSet, p: Float32Array, d?: Float32Array): { loss: number; logits: Float64Array } {
  const logits = new Float64Array(prep.root.count * prep.root.classes);
  const loss = lossAndGrad(prep, effective(p, d), undefined, logits);
  return { loss, logits };
}

/** Mean root-set cross-entropy of p and its gradient ∇L_root(p). */
export function rootGradient(prep: PreparedRootSet, p: Float32Array): { loss: number; grad: Float64Array } {
  const grad = new Float64Array(p.length);
  const loss = lossAndGrad(prep, effective(p), grad);
  return { loss, grad };
}

/**
 * Teaching (issue 11, docs/experiments.md "Eighth look"; offline studies only): the mean over the
 * root set of the true label's logit change less the mean class's, (1/R) Σ_s (Δz_{s,y_s} −
 * (1/C) Σ_c Δz_{s,c}), Δz = logits − baseLogits (both from rootLogits). On a class-balanced root
 * set a push of one class on every sample adds exactly zero; teaching wrong labels lowers it.
 */
export function rootTeaching(prep: PreparedRootSet, baseLogits: Float64Array, logits: Float64Array): number {
  const { count, classes: C, y } = prep.root;
  let t = 0;
  for (let s = 0; s < count; s++) {
    let m = 0;
    for (let c = 0; c < C; c++) m += logits[s * C + c] - baseLogits[s * C + c];
    t += logits[s * C + y[s]] - baseLogits[s * C + y[s]] - m / C;
  }
  return t / count;
}
