/**
 * `bfl-node experiment inversion`: the privacy check of issue 19. A curious miner tries to
 * reconstruct a client's training images from what it sees:
 *
 *   (a) federated mode: the client's update after one SGD step on a batch of b images. The miner
 *       knows the global model and η (both public), so the update is the gradient g = −Δ/η.
 *       Attack: "deep leakage from gradients" (Zhu et al., NeurIPS 2019): optimise dummy images
 *       x' ∈ [0,1] and soft labels softmax(ℓ') so that the gradient they produce matches g,
 *       min ||∇_W L(x', softmax(ℓ')) − g||². For b = 1 we also report the closed form of Phong et
 *       al. (2017): the first layer's gW1 = xᵀ·dz1 and gb1 = dz1, so x = gW1[:, j] / gb1[j].
 *   (b) split mode: the smashed data a = relu(x·W1 + b1) and the labels (the cut gradient adds
 *       nothing: the miner computes it itself from a, the labels and its body). The head W1, b1
 *       is the client's and never leaves it (section III-B). Attack: optimise x' ∈ [0,1] so that
 *       relu(x'·W1' + b1') matches a, with
 *         (b-known) the true head: the worst case, e.g. heads started from the public initial
 *                   model (`--head-init shared`) and attacked in the first round, or a head leaked
 *                   through noiseless eq. (4) aggregation;
 *         (b-guess) a head the miner draws itself from the public initialiser (it knows the
 *                   architecture, not the client's seed): the case the paper argues about.
 *
 * The gradients of these attack objectives are written by hand in TypeScript float64 for the
 * one-hidden-layer MLP (our default 784-200-10) rather than as ONNX graphs: DLG needs the
 * derivative of a gradient (second order), which onnxruntime cannot produce and which would be a
 * second hand-written backward in ONNX operators anyway; in TS it is ~60 lines, deterministic,
 * checked against finite differences (test/unit/inversion.test.ts), and fast enough at this size
 * (a few ms per iteration). What the attack observes is produced by the product's own ONNX graphs
 * (ModelRuntime.trainStep, SplitRuntime.headForward, float32).
 *
 * Scores: per image, the MSE and the SSIM (Wang et al. 2004: 11×11 Gaussian window, σ = 1.5,
 * K1 = 0.01, K2 = 0.03, data range 1, over the windows inside the 28×28 image) between the
 * reconstruction and the true image; a batch's reconstructions are matched to its images by the
 * permutation of least MSE (DLG's order is arbitrary). For scale, the same scores of the mean
 * training image (what a miner knows without any attack).
 */
import { BflError, ErrorCode } from '../core/errors.ts';
import { Rng } from '../core/random.ts';
import { type Dataset, loadDataset, subset } from '../learn/data.ts';
import { DEFAULT_MODEL, type ModelSpec, initParams, paramCount, paramLayout } from '../learn/model.ts';
import { ModelRuntime } from '../learn/runtime.ts';
import { SplitRuntime, splitParams } from '../learn/split.ts';
import { Report } from './report.ts';

/** One-hidden-layer MLP parameters in float64: W1 [I×H], b1 [H], W2 [H×C], b2 [C], row-major. */
export interface Mlp1 {
  I: number;
  H: number;
  C: number;
  W1: Float64Array;
  b1: Float64Array;
  W2: Float64Array;
  b2: Float64Array;
}

export function mlp1Of(spec: ModelSpec, params: ArrayLike<number>): Mlp1 {
  if (spec.layers.length !== 3) throw new BflError(ErrorCode.BAD_CONFIG, `the inversion attack is written for one hidden layer (e.g. 784-200-10), not MLP ${spec.layers.join('-')}`);
  const [I, H, C] = spec.layers;
  const [W1, b1, W2, b2] = paramLayout(spec).map((s) => Float64Array.from({ length: s.size }, (_, k) => params[s.offset + k]));
  return { I, H, C, W1, b1, W2, b2 };
}

/** The model's gradient at (x, y) for a batch of B (y soft or one-hot): gW1, gb1, gW2, gb2, flat in the model's layout. */
export function mlp1Gradient(m: Mlp1, x: Float64Array, y: Float64Array, B: number): Float64Array {
  return dlgObjective(m, x, y, B).grad;
}

interface Forward {
  z1: Float64Array;
  a: Float64Array;
  p: Float64Array;
  dz2: Float64Array;
  dz1: Float64Array;
  grad: Float64Array;
}

function forwardAndGradient(m: Mlp1, x: Float64Array, y: Float64Array, B: number): Forward {
  const { I, H, C, W1, b1, W2, b2 } = m;
  const z1 = new Float64Array(B * H);
  const a = new Float64Array(B * H);
  const p = new Float64Array(B * C);
  for (let b = 0; b < B; b++) {
    const zr = z1.subarray(b * H, (b + 1) * H);
    zr.set(b1);
    for (let i = 0; i < I; i++) {
      const xi = x[b * I + i];
      if (xi === 0) continue;
      const w = W1.subarray(i * H, (i + 1) * H);
      for (let h = 0; h < H; h++) zr[h] += xi * w[h];
    }
    for (let h = 0; h < H; h++) a[b * H + h] = zr[h] > 0 ? zr[h] : 0;
    let max = -Infinity;
    for (let c = 0; c < C; c++) {
      let s = b2[c];
      for (let h = 0; h < H; h++) s += a[b * H + h] * W2[h * C + c];
      p[b * C + c] = s;
      max = Math.max(max, s);
    }
    let sum = 0;
    for (let c = 0; c < C; c++) sum += p[b * C + c] = Math.exp(p[b * C + c] - max);
    for (let c = 0; c < C; c++) p[b * C + c] /= sum;
  }
  // mean cross-entropy: dz2 = (p − y) / B; the layout of the gradient is W1, b1, W2, b2
  const dz2 = new Float64Array(B * C);
  for (let k = 0; k < dz2.length; k++) dz2[k] = (p[k] - y[k]) / B;
  const grad = new Float64Array(I * H + H + H * C + C);
  const gW1 = grad.subarray(0, I * H);
  const gb1 = grad.subarray(I * H, I * H + H);
  const gW2 = grad.subarray(I * H + H, I * H + H + H * C);
  const gb2 = grad.subarray(I * H + H + H * C);
  const dz1 = new Float64Array(B * H);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      let s = 0;
      for (let c = 0; c < C; c++) {
        gW2[h * C + c] += a[b * H + h] * dz2[b * C + c];
        s += dz2[b * C + c] * W2[h * C + c];
      }
      dz1[b * H + h] = z1[b * H + h] > 0 ? s : 0;
      gb1[h] += dz1[b * H + h];
    }
    for (let c = 0; c < C; c++) gb2[c] += dz2[b * C + c];
    for (let i = 0; i < I; i++) {
      const xi = x[b * I + i];
      if (xi === 0) continue;
      const g = gW1.subarray(i * H, (i + 1) * H);
      const d = dz1.subarray(b * H, (b + 1) * H);
      for (let h = 0; h < H; h++) g[h] += xi * d[h];
    }
  }
  return { z1, a, p, dz2, dz1, grad };
}

/**
 * DLG's objective D = ||g(x, y) − target||² and its gradient with respect to x (B×I) and to the
 * soft label y (B×C), by differentiating the backward pass once more (ReLU's mask is piecewise
 * constant, so it passes derivatives through unchanged and has none of its own).
 */
export function dlgObjective(m: Mlp1, x: Float64Array, y: Float64Array, B: number, target?: Float64Array): { value: number; grad: Float64Array; dx: Float64Array; dy: Float64Array } {
  const f = forwardAndGradient(m, x, y, B);
  const { I, H, C, W1, W2 } = m;
  const dx = new Float64Array(B * I);
  const dy = new Float64Array(B * C);
  if (!target) return { value: NaN, grad: f.grad, dx, dy };
  const R = new Float64Array(f.grad.length);
  let value = 0;
  for (let k = 0; k < R.length; k++) {
    const d = f.grad[k] - target[k];
    value += d * d;
    R[k] = 2 * d;
  }
  const RW1 = R.subarray(0, I * H);
  const Rb1 = R.subarray(I * H, I * H + H);
  const RW2 = R.subarray(I * H + H, I * H + H + H * C);
  const Rb2 = R.subarray(I * H + H + H * C);
  const ddz1 = new Float64Array(H);
  const daF = new Float64Array(H);
  const ddz2 = new Float64Array(C);
  const dz2f = new Float64Array(C);
  const dz1f = new Float64Array(H);
  for (let b = 0; b < B; b++) {
    const z1 = f.z1.subarray(b * H, (b + 1) * H);
    const dz1 = f.dz1.subarray(b * H, (b + 1) * H);
    const xb = x.subarray(b * I, (b + 1) * I);
    const dxb = dx.subarray(b * I, (b + 1) * I);
    // gW1 = xᵀ·dz1, gb1 = Σ dz1: to x directly, and to dz1
    ddz1.set(Rb1);
    for (let i = 0; i < I; i++) {
      const r = RW1.subarray(i * H, (i + 1) * H);
      let s = 0;
      const xi = xb[i];
      for (let h = 0; h < H; h++) {
        s += r[h] * dz1[h];
        if (xi !== 0) ddz1[h] += xi * r[h];
      }
      dxb[i] += s;
    }
    // dz1 = (dz2·W2ᵀ) ⊙ mask; gW2 = aᵀ·dz2, gb2 = Σ dz2: to dz2, and to a
    for (let c = 0; c < C; c++) ddz2[c] = Rb2[c];
    for (let h = 0; h < H; h++) {
      const dda = z1[h] > 0 ? ddz1[h] : 0;
      const ah = f.a[b * H + h];
      let s = 0;
      for (let c = 0; c < C; c++) {
        ddz2[c] += dda * W2[h * C + c] + ah * RW2[h * C + c];
        s += f.dz2[b * C + c] * RW2[h * C + c];
      }
      daF[h] = s;
    }
    // dz2 = (p − y)/B: to y directly, and to p = softmax(z2)
    let dot = 0;
    for (let c = 0; c < C; c++) dot += (ddz2[c] / B) * f.p[b * C + c];
    for (let c = 0; c < C; c++) {
      dy[b * C + c] = -ddz2[c] / B;
      dz2f[c] = f.p[b * C + c] * (ddz2[c] / B - dot);
    }
    // z2 = a·W2 + b2, a = relu(z1), z1 = x·W1 + b1
    for (let h = 0; h < H; h++) {
      let s = daF[h];
      for (let c = 0; c < C; c++) s += dz2f[c] * W2[h * C + c];
      dz1f[h] = z1[h] > 0 ? s : 0;
    }
    for (let i = 0; i < I; i++) {
      const w = W1.subarray(i * H, (i + 1) * H);
      let s = 0;
      for (let h = 0; h < H; h++) s += dz1f[h] * w[h];
      dxb[i] += s;
    }
  }
  return { value, grad: f.grad, dx, dy };
}

/** ||relu(x·W1 + b1) − a||² and its gradient in x: inverting smashed data through a head. */
export function smashedObjective(m: Pick<Mlp1, 'I' | 'H' | 'W1' | 'b1'>, x: Float64Array, a: Float64Array, B: number): { value: number; dx: Float64Array } {
  const { I, H, W1, b1 } = m;
  const dx = new Float64Array(B * I);
  const z = new Float64Array(H);
  const dz = new Float64Array(H);
  let value = 0;
  for (let b = 0; b < B; b++) {
    z.set(b1);
    for (let i = 0; i < I; i++) {
      const xi = x[b * I + i];
      if (xi === 0) continue;
      const w = W1.subarray(i * H, (i + 1) * H);
      for (let h = 0; h < H; h++) z[h] += xi * w[h];
    }
    for (let h = 0; h < H; h++) {
      const d = (z[h] > 0 ? z[h] : 0) - a[b * H + h];
      value += d * d;
      dz[h] = z[h] > 0 ? 2 * d : 0;
    }
    for (let i = 0; i < I; i++) {
      const w = W1.subarray(i * H, (i + 1) * H);
      let s = 0;
      for (let h = 0; h < H; h++) s += dz[h] * w[h];
      dx[b * I + i] = s;
    }
  }
  return { value, dx };
}

/** Adam (Kingma & Ba) with β = (0.9, 0.999), ε = 1e-8, on a flat vector; `project` after each step. */
class Adam {
  private readonly m: Float64Array;
  private readonly v: Float64Array;
  private t = 0;
  readonly lr: number;
  constructor(n: number, lr: number) {
    this.lr = lr;
    this.m = new Float64Array(n);
    this.v = new Float64Array(n);
  }
  step(w: Float64Array, g: Float64Array, lr = this.lr): void {
    this.t++;
    const c1 = 1 - 0.9 ** this.t;
    const c2 = 1 - 0.999 ** this.t;
    for (let k = 0; k < w.length; k++) {
      this.m[k] = 0.9 * this.m[k] + 0.1 * g[k];
      this.v[k] = 0.999 * this.v[k] + 0.001 * g[k] * g[k];
      w[k] -= (lr * this.m[k]) / c1 / (Math.sqrt(this.v[k] / c2) + 1e-8);
    }
  }
}

const clamp01 = (x: Float64Array) => {
  for (let k = 0; k < x.length; k++) x[k] = x[k] < 0 ? 0 : x[k] > 1 ? 1 : x[k];
};

export interface AttackOptions {
  iterations: number;
  /** Adam's step on pixels (in [0, 1]); decayed ×0.1 over the last half of the iterations. */
  lr: number;
  seed: number;
}

/** Learning-rate schedule: full rate for the first half, then down linearly to a tenth (fine-tuning). */
const rate = (o: AttackOptions, it: number) => (it < o.iterations / 2 ? o.lr : o.lr * (1 - (0.9 * (it - o.iterations / 2)) / (o.iterations / 2)));

/** DLG: dummy images and soft labels matched to an observed gradient. Returns the images (B×I) and the final objective. */
export function dlgAttack(m: Mlp1, target: Float64Array, B: number, o: AttackOptions): { x: Float64Array; labels: number[]; objective: number } {
  const rng = new Rng(o.seed);
  const x = Float64Array.from({ length: B * m.I }, () => rng.float());
  const logits = Float64Array.from({ length: B * m.C }, () => rng.normal());
  const ax = new Adam(x.length, o.lr);
  const al = new Adam(logits.length, o.lr);
  const y = new Float64Array(B * m.C);
  const soft = () => {
    for (let b = 0; b < B; b++) {
      let max = -Infinity;
      for (let c = 0; c < m.C; c++) max = Math.max(max, logits[b * m.C + c]);
      let s = 0;
      for (let c = 0; c < m.C; c++) s += y[b * m.C + c] = Math.exp(logits[b * m.C + c] - max);
      for (let c = 0; c < m.C; c++) y[b * m.C + c] /= s;
    }
  };
  let value = Infinity;
  for (let it = 0; it < o.iterations; it++) {
    soft();
    const r = dlgObjective(m, x, y, B, target);
    value = r.value;
    // through y = softmax(ℓ): dℓ = y ⊙ (dy − Σ dy·y)
    const dl = new Float64Array(logits.length);
    for (let b = 0; b < B; b++) {
      let dot = 0;
      for (let c = 0; c < m.C; c++) dot += r.dy[b * m.C + c] * y[b * m.C + c];
      for (let c = 0; c < m.C; c++) dl[b * m.C + c] = y[b * m.C + c] * (r.dy[b * m.C + c] - dot);
    }
    ax.step(x, r.dx, rate(o, it));
    al.step(logits, dl, rate(o, it));
    clamp01(x);
  }
  soft();
  const labels = Array.from({ length: B }, (_, b) => {
    let best = 0;
    for (let c = 1; c < m.C; c++) if (y[b * m.C + c] > y[b * m.C + best]) best = c;
    return best;
  });
  return { x, labels, objective: value };
}

/**
 * Inverting smashed data through a (known or guessed) head, from the prior `start` (an image per
 * sample: the mean training image). a fixes only H of the I pixels' directions (200 of 784 here);
 * the rest stay near the start, so a random start would leave noise there that no attacker keeps.
 */
export function smashedAttack(head: Pick<Mlp1, 'I' | 'H' | 'W1' | 'b1'>, a: Float64Array, B: number, start: Float64Array, o: AttackOptions): { x: Float64Array; objective: number } {
  const x = new Float64Array(B * head.I);
  for (let b = 0; b < B; b++) x.set(start, b * head.I);
  const adam = new Adam(x.length, o.lr);
  let value = Infinity;
  for (let it = 0; it < o.iterations; it++) {
    const r = smashedObjective(head, x, a, B);
    value = r.value;
    adam.step(x, r.dx, rate(o, it));
    clamp01(x);
  }
  return { x, objective: value };
}

/** The closed-form reconstruction from a batch-1 gradient: x = gW1[:, j] / gb1[j] for the j with the largest |gb1[j]|. */
export function analyticInversion(m: Mlp1, g: ArrayLike<number>): Float64Array {
  const { I, H } = m;
  let j = 0;
  for (let h = 1; h < H; h++) if (Math.abs(g[I * H + h]) > Math.abs(g[I * H + j])) j = h;
  return Float64Array.from({ length: I }, (_, i) => g[i * H + j] / g[I * H + j]);
}

export function mse(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += (a[k] - b[k]) ** 2;
  return s / a.length;
}

/**
 * SSIM of two side×side grey images in [0, 1] (Wang et al. 2004): mean over the windows inside
 * the image of the local SSIM with an 11×11 Gaussian window (σ = 1.5). Hand-written: the npm
 * SSIM packages take 8-bit RGBA canvases, which would quantise our float reconstructions.
 */
export function ssim(a: ArrayLike<number>, b: ArrayLike<number>, side = 28): number {
  const K = 11;
  const w = new Float64Array(K * K);
  let wsum = 0;
  for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) wsum += w[i * K + j] = Math.exp(-((i - 5) ** 2 + (j - 5) ** 2) / (2 * 1.5 ** 2));
  for (let k = 0; k < w.length; k++) w[k] /= wsum;
  const C1 = 0.01 ** 2;
  const C2 = 0.03 ** 2;
  let total = 0;
  let n = 0;
  for (let r = 0; r + K <= side; r++) {
    for (let c = 0; c + K <= side; c++) {
      let ma = 0;
      let mb = 0;
      for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) {
        const q = (r + i) * side + c + j;
        ma += w[i * K + j] * a[q];
        mb += w[i * K + j] * b[q];
      }
      let va = 0;
      let vb = 0;
      let cov = 0;
      for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) {
        const q = (r + i) * side + c + j;
        const [da, db] = [a[q] - ma, b[q] - mb];
        va += w[i * K + j] * da * da;
        vb += w[i * K + j] * db * db;
        cov += w[i * K + j] * da * db;
      }
      total += ((2 * ma * mb + C1) * (2 * cov + C2)) / ((ma * ma + mb * mb + C1) * (va + vb + C2));
      n++;
    }
  }
  return total / n;
}

function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  return permutations(n - 1).flatMap((p) => Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)]));
}

/** Scores of a batch of reconstructions against the truth, matched by the permutation of least total MSE. */
export function scoreBatch(truth: Float64Array, guess: Float64Array, B: number, I: number): { mse: number[]; ssim: number[]; order: number[] } {
  const img = (v: Float64Array, b: number) => v.subarray(b * I, (b + 1) * I);
  let best: number[] = [];
  let bestErr = Infinity;
  for (const p of permutations(B)) {
    const e = p.reduce((s, g, t) => s + mse(img(truth, t), img(guess, g)), 0);
    if (e < bestErr) [best, bestErr] = [p, e];
  }
  return { mse: best.map((g, t) => mse(img(truth, t), img(guess, g))), ssim: best.map((g, t) => ssim(img(truth, t), img(guess, g))), order: best };
}

export interface InversionOptions {
  dataset: string;
  /** Batch sizes of the attacked client steps. */
  batches: number[];
  /** Images attacked per batch size (in batches of that size). */
  images: number;
  iterations: number;
  lr: number;
  seed: number;
  /** Split mode as the product runs it (issue 19 part B): every client starts from the genesis
   * head, which the miner knows, and trains it. The client's SGD steps (B = 10, η = 0.05, on 500
   * other images) before the attacked images' smashed data are sent, one attack per value. */
  drift: number[];
  /** Width of the one hidden layer (the head's smashed data per sample): the product's 200 by
   * default; `experiment split --hidden` models with a wider first layer are attacked through it. */
  hidden?: number;
  out?: string;
  onAttack?: (label: string) => void;
}

/** 4 images, batches of 1 and 4 (the issue: "one step, batch 1-4"); 2,000 Adam steps, where the
 * DLG objective has flattened on the default model (measured); rate 0.05 per step on [0, 1] pixels.
 * Drift 0, 50 and 500 steps: the genesis head itself, then 1 and 10 of the product's rounds
 * (E·N/B = 5·100/10 = 50 steps a round). */
export const defaultInversion: InversionOptions = { dataset: 'mnist', batches: [1, 4], images: 4, iterations: 2000, lr: 0.05, seed: 1, drift: [0, 50, 500], hidden: DEFAULT_MODEL.layers[1] };

export interface Scores {
  mse: number;
  ssim: number;
  /** Per image. */
  perImage: { mse: number; ssim: number }[];
}

export interface InversionResult {
  dataset: string;
  model: number[];
  iterations: number;
  /** Scores of the mean training image: what a miner knows without an attack. */
  baseline: Scores;
  byBatch: Record<string, { federatedDlg: Scores; federatedLabelsRecovered: number; federatedAnalytic: Scores | null; splitKnownHead: Scores; splitGuessedHead: Scores }>;
  /** By the client's training steps since the genesis head: smashed data inverted through the genesis head. */
  splitGenesisHead: Record<string, Scores>;
  seconds: number;
  files: string[];
}

const summarise = (per: { mse: number; ssim: number }[]): Scores => ({ mse: per.reduce((s, p) => s + p.mse, 0) / per.length, ssim: per.reduce((s, p) => s + p.ssim, 0) / per.length, perImage: per });

export async function runInversion(o: InversionOptions): Promise<InversionResult> {
  const t0 = performance.now();
  const { train } = loadDataset(o.dataset);
  const spec: ModelSpec = { ...DEFAULT_MODEL, layers: [train.dim, o.hidden ?? DEFAULT_MODEL.layers[1], train.classes] };
  // the attacked model: the initial global model (the first round, as in DLG's own experiments)
  const params = initParams(spec, o.seed);
  const m = mlp1Of(spec, params);
  // the client's private head: its own draw from the same initialiser; the miner's guess: another
  const clientHead = mlp1Of(spec, initParams(spec, o.seed * 7919 + 1000));
  const guessedHead = mlp1Of(spec, initParams(spec, o.seed * 7919 + 999_999));
  const whole = await ModelRuntime.create(spec);
  const split = SplitRuntime.create(spec, 1);
  const I = spec.layers[0];
  const C = spec.layers[2];
  const mean = new Float64Array(I);
  for (let j = 0; j < train.n; j++) for (let i = 0; i < I; i++) mean[i] += train.x[j * I + i] / train.n;
  const rng = new Rng(o.seed * 53 + 1);
  const picks = rng.shuffle(Array.from({ length: train.n }, (_, i) => i)).slice(0, o.images);
  const baselinePer = picks.map((j) => {
    const t = Float64Array.from(train.x.subarray(j * I, (j + 1) * I));
    return { mse: mse(t, mean), ssim: ssim(t, mean) };
  });
  const report = new Report(o.out ?? 'out');
  const byBatch: InversionResult['byBatch'] = {};
  const splitGenesisHead: InversionResult['splitGenesisHead'] = {};
  const gallery: { label: string; images: Float64Array[] }[] = [{ label: 'original', images: picks.map((j) => Float64Array.from(train.x.subarray(j * I, (j + 1) * I))) }];
  try {
    for (const B of o.batches) {
      const fed: { mse: number; ssim: number }[] = [];
      const ana: { mse: number; ssim: number }[] = [];
      const known: { mse: number; ssim: number }[] = [];
      const guess: { mse: number; ssim: number }[] = [];
      const shown: Record<string, Float64Array[]> = { dlg: [], known: [], guessed: [] };
      let labelsOk = 0;
      for (let start = 0; start + B <= picks.length; start += B) {
        const batch: Dataset = subset(train, picks.slice(start, start + B));
        const truth = Float64Array.from(batch.x);
        const y = new Float32Array(B * C);
        for (let b = 0; b < B; b++) y[b * C + batch.y[b]] = 1;
        const attack = { iterations: o.iterations, lr: o.lr, seed: o.seed + start };
        // (a) the update the client would send after one step, via the product's train graph
        const g32 = new Float32Array(paramCount(spec));
        await whole.trainStep(params, batch.x, y, B, g32);
        const g = Float64Array.from(g32);
        o.onAttack?.(`batch ${B}, images ${start + 1}-${start + B}: DLG on the federated update`);
        const dlg = dlgAttack(m, g, B, attack);
        const sd = scoreBatch(truth, dlg.x, B, I);
        sd.mse.forEach((v, t) => fed.push({ mse: v, ssim: sd.ssim[t] }));
        const truthLabels = Array.from(batch.y).sort();
        labelsOk += dlg.labels.filter((l) => truthLabels.includes(l)).length;
        if (B === 1) {
          const xa = analyticInversion(m, g);
          ana.push({ mse: mse(truth, xa), ssim: ssim(truth, xa) });
        }
        // (b) the smashed data the client sends in split mode (its private head, the product's head graph)
        const head32 = splitParams(initParams(spec, o.seed * 7919 + 1000), spec, 1).head;
        const a = Float64Array.from(await split.headForward(head32, batch.x, B));
        o.onAttack?.(`batch ${B}, images ${start + 1}-${start + B}: inverting smashed data`);
        const rk = smashedAttack(clientHead, a, B, mean, attack);
        const sk = scoreBatch(truth, rk.x, B, I);
        const rg = smashedAttack(guessedHead, a, B, mean, attack);
        const sg = scoreBatch(truth, rg.x, B, I);
        sk.mse.forEach((v, t) => known.push({ mse: v, ssim: sk.ssim[t] }));
        sg.mse.forEach((v, t) => guess.push({ mse: v, ssim: sg.ssim[t] }));
        // each reconstruction under the image it was matched to
        const pick = (x: Float64Array, order: number[], b: number) => x.slice(order[b] * I, (order[b] + 1) * I);
        for (let b = 0; b < B; b++) {
          shown.dlg.push(pick(dlg.x, sd.order, b));
          shown.known.push(pick(rk.x, sk.order, b));
          shown.guessed.push(pick(rg.x, sg.order, b));
        }
      }
      byBatch[String(B)] = { federatedDlg: summarise(fed), federatedLabelsRecovered: labelsOk / fed.length, federatedAnalytic: ana.length ? summarise(ana) : null, splitKnownHead: summarise(known), splitGuessedHead: summarise(guess) };
      gallery.push({ label: `DLG, federated, batch ${B}`, images: shown.dlg }, { label: `split, known head, batch ${B}`, images: shown.known }, { label: `split, guessed head, batch ${B}`, images: shown.guessed });
    }
    // (c) the genesis head known, the client's head trained away from it
    const genesis = splitParams(params, spec, 1);
    const head = Float32Array.from(genesis.head);
    const body = Float32Array.from(genesis.body);
    const [nextHead, nextBody] = [new Float32Array(head.length), new Float32Array(body.length)];
    const own = subset(train, rng.shuffle(Array.from({ length: train.n }, (_, i) => i).filter((i) => !picks.includes(i))).slice(0, 500));
    const Bt = 10;
    const yb = new Float32Array(Bt * C);
    const ga = new Float32Array(Bt * split.width);
    const pictures = subset(train, picks);
    const truthAll = Float64Array.from(pictures.x);
    let done = 0;
    for (const steps of [...o.drift].sort((x, y) => x - y)) {
      for (; done < steps; done++) {
        const at = (done * Bt) % own.n;
        const xb = own.x.subarray(at * I, (at + Bt) * I);
        yb.fill(0);
        for (let b = 0; b < Bt; b++) yb[b * C + own.y[at + b]] = 1;
        const a = await split.headForward(head, xb, Bt);
        await split.bodySgdStep(body, a, yb, Bt, 0.05, nextBody, ga);
        body.set(nextBody);
        await split.headSgdStep(head, xb, ga, Bt, 0.05, nextHead);
        head.set(nextHead);
      }
      o.onAttack?.(`client head ${steps} steps from the genesis head: inverting smashed data`);
      const a = Float64Array.from(await split.headForward(head, pictures.x, picks.length));
      const per: { mse: number; ssim: number }[] = [];
      const shown: Float64Array[] = [];
      for (let k = 0; k < picks.length; k++) {
        const r = smashedAttack(m, a.subarray(k * split.width, (k + 1) * split.width), 1, mean, { iterations: o.iterations, lr: o.lr, seed: o.seed + k });
        const truth = truthAll.subarray(k * I, (k + 1) * I);
        per.push({ mse: mse(truth, r.x), ssim: ssim(truth, r.x) });
        shown.push(r.x);
      }
      splitGenesisHead[String(steps)] = summarise(per);
      gallery.push({ label: `split, genesis head, ${steps} steps`, images: shown });
    }
  } finally {
    await Promise.all([whole.close(), split.close()]);
  }
  const result: InversionResult = { dataset: o.dataset, model: spec.layers, iterations: o.iterations, baseline: summarise(baselinePer), byBatch, splitGenesisHead, seconds: 0, files: report.files };
  if (o.out) {
    await report.plot('inversion-gallery', gallerySvg(gallery));
    await report.csv('inversion', ['batch', 'attack', 'image', 'mse', 'ssim'], [
      ...baselinePer.map((s, i) => ['-', 'mean-image', i, s.mse, s.ssim]),
      ...Object.entries(byBatch).flatMap(([B, r]) =>
        (
          [
            ['federated-dlg', r.federatedDlg],
            ['federated-analytic', r.federatedAnalytic],
            ['split-known-head', r.splitKnownHead],
            ['split-guessed-head', r.splitGuessedHead],
          ] as const
        ).flatMap(([name, s]) => (s ? s.perImage.map((p, i) => [B, name, i, p.mse, p.ssim]) : [])),
      ),
      ...Object.entries(result.splitGenesisHead).flatMap(([steps, sc]) => sc.perImage.map((p, i) => [1, `split-genesis-head-${steps}-steps`, i, p.mse, p.ssim])),
    ]);
  }
  result.seconds = Math.round((performance.now() - t0) / 100) / 10;
  if (o.out) await report.json('inversion', result);
  return result;
}

/** Rows of 28×28 grey images (3× scaled), one row per attack, the originals first. */
function gallerySvg(rows: { label: string; images: Float64Array[] }[]): string {
  const px = 3;
  const side = 28 * px;
  const labelW = 230;
  const cols = Math.max(...rows.map((r) => r.images.length));
  const W = labelW + cols * (side + 6) + 10;
  const H = rows.length * (side + 10) + 10;
  const cells = rows.flatMap((row, r) =>
    row.images.flatMap((img, c) => {
      const x0 = labelW + c * (side + 6);
      const y0 = 10 + r * (side + 10);
      const out: string[] = [];
      for (let i = 0; i < 28; i++) for (let j = 0; j < 28; j++) {
        const v = Math.round(255 * (1 - Math.min(1, Math.max(0, img[i * 28 + j]))));
        if (v < 255) out.push(`<rect x="${x0 + j * px}" y="${y0 + i * px}" width="${px}" height="${px}" fill="rgb(${v},${v},${v})"/>`);
      }
      out.unshift(`<rect x="${x0}" y="${y0}" width="${side}" height="${side}" fill="white" stroke="#ccc"/>`);
      return out;
    }),
  );
  const labels = rows.map((row, r) => `<text x="8" y="${10 + r * (side + 10) + side / 2}" font-size="13">${row.label}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, sans-serif">\n<rect width="${W}" height="${H}" fill="white"/>\n${labels.join('')}${cells.join('')}\n</svg>\n`;
}
