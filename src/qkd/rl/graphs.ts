/**
 * ONNX training graphs for the reinforcement learners of the QKD paper's §V (SAC, PPO), built
 * with the project's graph builder (src/learn/onnx.ts) like src/learn/model.ts builds the MLP's:
 * onnxruntime-node only runs inference, so every backward pass is written out in standard ONNX
 * operators and checked against finite differences (test/unit/qkd-rl.test.ts).
 *
 * All networks are MLPs with tanh hidden layers (smooth, so finite differences check them
 * everywhere). Parameter layout as src/learn/model.ts: W_l (in × out, row-major) then b_l.
 */
import { Rng } from '../../core/random.ts';
import { type ElemType, GraphBuilder } from '../../learn/onnx.ts';

export interface MlpShape {
  /** Widths, input first: [in, hidden..., out]. */
  layers: number[];
}

export function mlpLayout(s: MlpShape): { name: string; offset: number; shape: number[]; size: number }[] {
  const out = [];
  let offset = 0;
  for (let l = 1; l < s.layers.length; l++) {
    const [i, o] = [s.layers[l - 1], s.layers[l]];
    out.push({ name: `W${l}`, offset, shape: [i, o], size: i * o });
    offset += i * o;
    out.push({ name: `b${l}`, offset, shape: [o], size: o });
    offset += o;
  }
  return out;
}

export function mlpSize(s: MlpShape): number {
  return mlpLayout(s).reduce((a, p) => a + p.size, 0);
}

/** Glorot-uniform weights (suited to tanh), zero biases; `lastScale` shrinks the output layer
 * so a fresh policy starts near the middle of its range and a fresh critic near zero. */
export function initMlp(s: MlpShape, seed: number, lastScale = 1): Float32Array {
  const rng = new Rng(seed);
  const p = new Float32Array(mlpSize(s));
  const L = s.layers.length - 1;
  for (const x of mlpLayout(s)) {
    if (x.name.startsWith('b')) continue;
    const bound = Math.sqrt(6 / (x.shape[0] + x.shape[1])) * (x.name === `W${L}` ? lastScale : 1);
    for (let k = 0; k < x.size; k++) p[x.offset + k] = (2 * rng.float() - 1) * bound;
  }
  return p;
}

interface Forward {
  out: string;
  /** Activations a_0 = x, a_1 … a_{L−1} (tanh outputs). */
  acts: string[];
}

function forward(g: GraphBuilder, s: MlpShape, x: string): Forward {
  const L = s.layers.length - 1;
  const acts = [x];
  let a = x;
  for (let l = 1; l <= L; l++) {
    const z = g.node('Gemm', [a, `W${l}`, `b${l}`]);
    a = l < L ? g.node('Tanh', [z]) : z;
    if (l < L) acts.push(a);
  }
  return { out: a, acts };
}

/**
 * Backward pass from dOut = d loss / d output [B, out]; returns d loss / d x when `wantInput`.
 *   gW_l = a_{l−1}ᵀ · dz_l,  gb_l = Σ_batch dz_l,  dz_{l−1} = (dz_l · W_lᵀ) ⊙ (1 − a_{l−1}²)
 */
function backward(g: GraphBuilder, s: MlpShape, f: Forward, dOut: string, gradName: (p: string) => string | undefined, wantInput = false): string | undefined {
  const L = s.layers.length - 1;
  const one = g.constScalar(1);
  let dz = dOut;
  for (let l = L; l >= 1; l--) {
    g.node('Gemm', [f.acts[l - 1], dz], { transA: 1 }, gradName(`W${l}`));
    g.node('ReduceSum', [dz, g.constInt64([0])], { keepdims: 0 }, gradName(`b${l}`));
    if (l > 1 || wantInput) {
      const da = g.node('Gemm', [dz, `W${l}`], { transB: 1 });
      if (l === 1) return da;
      const a = f.acts[l - 1];
      dz = g.node('Mul', [da, g.node('Sub', [one, g.node('Mul', [a, a])])]);
    }
  }
  return undefined;
}

function params(g: GraphBuilder, s: MlpShape): void {
  for (const p of mlpLayout(s)) g.input(p.name, p.shape);
}

function gradOutputs(g: GraphBuilder, s: MlpShape): void {
  for (const p of mlpLayout(s)) g.output(`g${p.name}`, p.shape);
}

/** Inference: x [B, in] → y [B, out]. */
export function mlpForwardGraph(s: MlpShape, elem: ElemType = 'float'): Uint8Array {
  const g = new GraphBuilder(elem);
  params(g, s);
  const f = forward(g, s, g.input('x', ['B', s.layers[0]]));
  g.node('Identity', [f.out], {}, 'y');
  g.output('y', ['B', s.layers[s.layers.length - 1]]);
  return g.build('mlp_forward');
}

/**
 * Regression step (Q and value networks): inputs params, x [B, in], target [B, out];
 * outputs loss = ½ · mean over the batch of Σ_j (y_j − target_j)² and its gradients gW1, gb1, ….
 */
export function mlpMseGraph(s: MlpShape, elem: ElemType = 'float'): Uint8Array {
  const g = new GraphBuilder(elem);
  params(g, s);
  const x = g.input('x', ['B', s.layers[0]]);
  const t = g.input('target', ['B', s.layers[s.layers.length - 1]]);
  const f = forward(g, s, x);
  const diff = g.node('Sub', [f.out, t]);
  const half = g.constScalar(0.5);
  // loss = ½ · mean_b Σ_j (y − t)²
  g.node('Mul', [half, g.node('ReduceMean', [g.node('ReduceSum', [g.node('Mul', [diff, diff]), g.constInt64([1])], { keepdims: 0 })], { keepdims: 0 })], {}, 'loss');
  g.output('loss', []);
  const batch = g.node('Cast', [g.node('Gather', [g.node('Shape', [x]), g.constInt64([0])])], { to: { type: elem } });
  backward(g, s, f, g.node('Div', [diff, batch]), (p) => `g${p}`);
  gradOutputs(g, s);
  return g.build('mlp_mse');
}

/** Output and its input gradient: y [B, 1] and dy/dx [B, in] per sample (for dQ/da). */
export function mlpInputGradGraph(s: MlpShape, elem: ElemType = 'float'): Uint8Array {
  if (s.layers[s.layers.length - 1] !== 1) throw new RangeError('input gradient of a scalar network only');
  const g = new GraphBuilder(elem);
  params(g, s);
  const x = g.input('x', ['B', s.layers[0]]);
  const f = forward(g, s, x);
  g.node('Identity', [f.out], {}, 'y');
  g.output('y', ['B', 1]);
  const ones = g.node('Add', [g.node('Mul', [f.out, g.constScalar(0)]), g.constScalar(1)]);
  const dx = backward(g, s, f, ones, () => undefined, true)!;
  g.node('Identity', [dx], {}, 'dx');
  g.output('dx', ['B', s.layers[0]]);
  return g.build('mlp_input_grad');
}

/** Bounds of the policy's log standard deviation (SAC's usual −5 … 2), reached smoothly:
 * log σ = LO + (HI − LO)·(tanh(raw) + 1)/2, so the gradient never vanishes at a clip. */
export const LOG_STD = { lo: -5, hi: 2 };

/**
 * The squashed Gaussian policy of SAC (eq. 37): the network gives mean μ and raw log σ per
 * action dimension (output [B, 2·A]: μ first); ã = tanh(μ + σ ⊙ ξ), and
 *   log π(ã|s) = Σ_j [−ξ_j²/2 − log σ_j − ½ log 2π − log(1 − ã_j² + ε)].
 * Inputs: params, s [B, S], xi [B, A], gA [B, A] = d(outer loss)/d ã, coef (scalar: the weight
 * of Σ_b log π_b in the loss). Loss L = coef · Σ_b log π_b + Σ_b gA·ã, i.e. with gA = −∂Q/∂ã / B
 * and coef = α / B the actor loss of eq. (36): mean(α log π − Q). Outputs: action [B, A],
 * logp [B], loss, gW1, gb1, ….
 */
export function sacActorGraph(s: MlpShape, actions: number, elem: ElemType = 'float'): Uint8Array {
  if (s.layers[s.layers.length - 1] !== 2 * actions) throw new RangeError(`the policy network must output 2·${actions} values`);
  const g = new GraphBuilder(elem);
  params(g, s);
  const st = g.input('s', ['B', s.layers[0]]);
  const xi = g.input('xi', ['B', actions]);
  const gA = g.input('gA', ['B', actions]);
  const coef = g.input('coef', []);
  const f = forward(g, s, st);
  const mu = g.node('Slice', [f.out, g.constInt64([0]), g.constInt64([actions]), g.constInt64([1])]);
  const raw = g.node('Slice', [f.out, g.constInt64([actions]), g.constInt64([2 * actions]), g.constInt64([1])]);
  const one = g.constScalar(1);
  const halfSpan = g.constScalar((LOG_STD.hi - LOG_STD.lo) / 2);
  const th = g.node('Tanh', [raw]);
  const logStd = g.node('Add', [g.constScalar(LOG_STD.lo), g.node('Mul', [halfSpan, g.node('Add', [th, one])])]);
  const std = g.node('Exp', [logStd]);
  const u = g.node('Add', [mu, g.node('Mul', [std, xi])]);
  const a = g.node('Tanh', [u]);
  g.node('Identity', [a], {}, 'action');
  g.output('action', ['B', actions]);
  const eps = g.constScalar(1e-6);
  const oneMinusA2 = g.node('Sub', [one, g.node('Mul', [a, a])]);
  const perDim = g.node('Sub', [
    g.node('Sub', [g.node('Mul', [g.constScalar(-0.5), g.node('Mul', [xi, xi])]), logStd]),
    g.node('Add', [g.constScalar(0.5 * Math.log(2 * Math.PI)), g.node('Log', [g.node('Add', [oneMinusA2, eps])])]),
  ]);
  const logp = g.node('ReduceSum', [perDim, g.constInt64([1])], { keepdims: 0 }, 'logp');
  g.output('logp', ['B']);
  const sumLogp = g.node('ReduceSum', [logp, g.constInt64([0])], { keepdims: 0 });
  const sumGa = g.node('ReduceSum', [g.node('Mul', [gA, a]), g.constInt64([0, 1])], { keepdims: 0 });
  g.node('Add', [g.node('Mul', [coef, sumLogp]), sumGa], {}, 'loss');
  g.output('loss', []);
  // dL/dã = gA + coef · 2ã/(1 − ã² + ε); dL/du = dL/dã · (1 − ã²)
  const dA = g.node('Add', [gA, g.node('Mul', [coef, g.node('Div', [g.node('Mul', [g.constScalar(2), a]), g.node('Add', [oneMinusA2, eps])])])]);
  const dU = g.node('Mul', [dA, oneMinusA2]);
  // dL/dlogσ = dL/du · σξ − coef; dL/draw = dL/dlogσ · halfSpan · (1 − tanh²(raw))
  const dLogStd = g.node('Sub', [g.node('Mul', [dU, g.node('Mul', [std, xi])]), coef]);
  const dRaw = g.node('Mul', [dLogStd, g.node('Mul', [halfSpan, g.node('Sub', [one, g.node('Mul', [th, th])])])]);
  backward(g, s, f, g.node('Concat', [dU, dRaw], { axis: 1 }), (p) => `g${p}`);
  gradOutputs(g, s);
  return g.build('sac_actor');
}

/**
 * PPO's clipped surrogate (Schulman et al. 2017) for a Gaussian policy over pre-squash actions
 * u (the environment applies tanh): log π(u|s) = Σ_j [−(u−μ)²/(2σ²) − log σ − ½ log 2π],
 * r = exp(log π − log π_old), L = −mean_b min(r·A, clip(r, 1−ε, 1+ε)·A) − β·mean_b H, with
 * the Gaussian entropy H = Σ_j (log σ_j + ½ log 2πe). Inputs: params, s, u [B, A], logpOld [B],
 * adv [B], clip, entCoef (scalars). Outputs: loss, logp [B], gW1, gb1, ….
 */
export function ppoActorGraph(s: MlpShape, actions: number, elem: ElemType = 'float'): Uint8Array {
  if (s.layers[s.layers.length - 1] !== 2 * actions) throw new RangeError(`the policy network must output 2·${actions} values`);
  const g = new GraphBuilder(elem);
  params(g, s);
  const st = g.input('s', ['B', s.layers[0]]);
  const u = g.input('u', ['B', actions]);
  const logpOld = g.input('logpOld', ['B']);
  const adv = g.input('adv', ['B']);
  const clip = g.input('clip', []);
  const entCoef = g.input('entCoef', []);
  const f = forward(g, s, st);
  const mu = g.node('Slice', [f.out, g.constInt64([0]), g.constInt64([actions]), g.constInt64([1])]);
  const raw = g.node('Slice', [f.out, g.constInt64([actions]), g.constInt64([2 * actions]), g.constInt64([1])]);
  const one = g.constScalar(1);
  const halfSpan = g.constScalar((LOG_STD.hi - LOG_STD.lo) / 2);
  const th = g.node('Tanh', [raw]);
  const logStd = g.node('Add', [g.constScalar(LOG_STD.lo), g.node('Mul', [halfSpan, g.node('Add', [th, one])])]);
  const std = g.node('Exp', [logStd]);
  const zed = g.node('Div', [g.node('Sub', [u, mu]), std]);
  const perDim = g.node('Sub', [g.node('Mul', [g.constScalar(-0.5), g.node('Mul', [zed, zed])]), g.node('Add', [logStd, g.constScalar(0.5 * Math.log(2 * Math.PI))])]);
  const logp = g.node('ReduceSum', [perDim, g.constInt64([1])], { keepdims: 0 }, 'logp');
  g.output('logp', ['B']);
  const ratio = g.node('Exp', [g.node('Sub', [logp, logpOld])]);
  const clipped = g.node('Clip', [ratio, g.node('Sub', [one, clip]), g.node('Add', [one, clip])]);
  const surr1 = g.node('Mul', [ratio, adv]);
  const surr2 = g.node('Mul', [clipped, adv]);
  const batch = g.node('Cast', [g.node('Gather', [g.node('Shape', [st]), g.constInt64([0])])], { to: { type: elem } });
  const entropy = g.node('ReduceMean', [g.node('ReduceSum', [g.node('Add', [logStd, g.constScalar(0.5 * Math.log(2 * Math.PI * Math.E))]), g.constInt64([1])], { keepdims: 0 })], { keepdims: 0 });
  g.node('Sub', [g.node('Neg', [g.node('ReduceMean', [g.node('Min', [surr1, surr2])], { keepdims: 0 })]), g.node('Mul', [entCoef, entropy])], {}, 'loss');
  g.output('loss', []);
  // d/dr of −min(rA, clip(r)A)/B: −A/B where the unclipped term is the smaller (or they tie
  // inside the clip range), else 0 (the clipped term is flat in r outside the range).
  const useUnclipped = g.node('Cast', [g.node('LessOrEqual', [surr1, surr2])], { to: { type: elem } });
  const dLogp = g.node('Div', [g.node('Neg', [g.node('Mul', [g.node('Mul', [adv, useUnclipped]), ratio])]), batch]);
  const dLogpCol = g.node('Unsqueeze', [dLogp, g.constInt64([1])]);
  // dlogπ/dμ = z/σ; dlogπ/dlogσ = z² − 1; the entropy term adds −β/B to dL/dlogσ
  const dMu = g.node('Mul', [dLogpCol, g.node('Div', [zed, std])]);
  const dLogStd = g.node('Sub', [g.node('Mul', [dLogpCol, g.node('Sub', [g.node('Mul', [zed, zed]), one])]), g.node('Div', [entCoef, batch])]);
  const dRaw = g.node('Mul', [dLogStd, g.node('Mul', [halfSpan, g.node('Sub', [one, g.node('Mul', [th, th])])])]);
  backward(g, s, f, g.node('Concat', [dMu, dRaw], { axis: 1 }), (p) => `g${p}`);
  gradOutputs(g, s);
  return g.build('ppo_actor');
}
