/**
 * Models as ONNX graphs generated from a small description (docs/architecture.md, "Learning"). `onnxruntime-node`
 * only runs inference, so the train step is an inference graph too: inputs are the parameters,
 * a batch and its one-hot labels; outputs are the mean cross-entropy loss and the gradient of
 * every parameter, with the backward pass written out in standard ONNX operators.
 *
 * Parameter layout (one flat Float32Array, the vector updates, digests and aggregation use):
 * for each dense layer l = 1..L in order, W_l (in_l × out_l, row-major) then b_l (out_l).
 * The default MLP 784-200-10 has 784·200 + 200 + 200·10 + 10 = 159,010 parameters.
 */
import { Rng } from '../core/random.ts';
import { type ElemType, GraphBuilder } from './onnx.ts';

export interface MlpSpec {
  kind: 'mlp';
  /** Layer widths, input first, classes last: [784, 200, 10]. ReLU between layers. */
  layers: number[];
}

export type ModelSpec = MlpSpec;

export const DEFAULT_MODEL: MlpSpec = { kind: 'mlp', layers: [784, 200, 10] };

export interface ParamSlice {
  name: string;
  offset: number;
  shape: number[];
  size: number;
}

export function paramLayout(spec: ModelSpec): ParamSlice[] {
  const out: ParamSlice[] = [];
  let offset = 0;
  for (let l = 1; l < spec.layers.length; l++) {
    const [i, o] = [spec.layers[l - 1], spec.layers[l]];
    out.push({ name: `W${l}`, offset, shape: [i, o], size: i * o });
    offset += i * o;
    out.push({ name: `b${l}`, offset, shape: [o], size: o });
    offset += o;
  }
  return out;
}

export function paramCount(spec: ModelSpec): number {
  return paramLayout(spec).reduce((s, p) => s + p.size, 0);
}

export function inputSize(spec: ModelSpec): number {
  return spec.layers[0];
}

export function classCount(spec: ModelSpec): number {
  return spec.layers[spec.layers.length - 1];
}

/**
 * Seeded initialisation: He-uniform weights, U(−√(6/in), √(6/in)) (suited to ReLU), zero
 * biases. The same seed gives the same vector on every machine.
 */
export function initParams(spec: ModelSpec, seed: number): Float32Array {
  const rng = new Rng(seed);
  const p = new Float32Array(paramCount(spec));
  for (const s of paramLayout(spec)) {
    if (s.name.startsWith('b')) continue;
    const bound = Math.sqrt(6 / s.shape[0]);
    for (let k = 0; k < s.size; k++) p[s.offset + k] = (2 * rng.float() - 1) * bound;
  }
  return p;
}

function forward(g: GraphBuilder, spec: MlpSpec, x: string, params: (name: string) => string): { logits: string; pre: string[]; acts: string[] } {
  const L = spec.layers.length - 1;
  const pre: string[] = [];
  const acts: string[] = [x];
  let a = x;
  for (let l = 1; l <= L; l++) {
    const z = g.node('Gemm', [a, params(`W${l}`), params(`b${l}`)]);
    pre.push(z);
    a = l < L ? g.node('Relu', [z]) : z;
    if (l < L) acts.push(a);
  }
  return { logits: a, pre, acts };
}

/** Inference graph: inputs W1, b1, ..., x [B, in]; output logits [B, classes]. */
export function buildInferenceGraph(spec: ModelSpec, elem: ElemType = 'float', initializer?: Float32Array): Uint8Array {
  const g = new GraphBuilder(elem);
  const layout = paramLayout(spec);
  for (const s of layout) {
    if (initializer) g.initializer(s.name, s.shape, initializer.subarray(s.offset, s.offset + s.size));
    else g.input(s.name, s.shape);
  }
  const x = g.input('x', ['B', inputSize(spec)]);
  const { logits } = forward(g, spec, x, (n) => n);
  g.node('Identity', [logits], {}, 'logits');
  g.output('logits', ['B', classCount(spec)]);
  return g.build('inference');
}

/**
 * Forward pass plus the loss and the backward pass; returns the gradient value names.
 * Backward pass, with P = softmax(z_L), B the batch size:
 *   dz_L = (P − y) / B
 *   gW_l = a_{l−1}ᵀ · dz_l,  gb_l = Σ_batch dz_l
 *   dz_{l−1} = (dz_l · W_lᵀ) ⊙ [z_{l−1} > 0]
 */
function lossAndGradients(g: GraphBuilder, spec: ModelSpec, elem: ElemType, gradName: (p: string) => string | undefined, batchIn?: BatchValues): Map<string, string> {
  const param = batchIn?.param ?? ((n: string) => n);
  let x: string;
  let y: string;
  if (batchIn) ({ x, y } = batchIn);
  else {
    for (const s of paramLayout(spec)) g.input(s.name, s.shape);
    x = g.input('x', ['B', inputSize(spec)]);
    y = g.input('y', ['B', classCount(spec)]);
  }
  const { logits, pre, acts } = forward(g, spec, x, param);

  const logp = g.node('LogSoftmax', [logits], { axis: 1 });
  const perSample = g.node('ReduceSum', [g.node('Mul', [y, logp]), g.constInt64([1])], { keepdims: 0 });
  const loss = batchIn?.loss ?? 'loss';
  g.node('Neg', [g.node('ReduceMean', [perSample], { keepdims: 0 })], {}, loss);
  g.output(loss, []);

  const batch = g.node('Cast', [g.node('Gather', [g.node('Shape', [x]), g.constInt64([0])])], { to: { type: elem } });
  let dz = g.node('Div', [g.node('Sub', [g.node('Exp', [logp]), y]), batch]);
  const zero = g.constScalar(0);
  const grads = new Map<string, string>();
  const L = spec.layers.length - 1;
  for (let l = L; l >= 1; l--) {
    grads.set(`W${l}`, g.node('Gemm', [acts[l - 1], dz], { transA: 1 }, gradName(`W${l}`)));
    grads.set(`b${l}`, g.node('ReduceSum', [dz, g.constInt64([0])], { keepdims: 0 }, gradName(`b${l}`)));
    if (l > 1) {
      const da = g.node('Gemm', [dz, param(`W${l}`)], { transB: 1 });
      dz = g.node('Where', [g.node('Greater', [pre[l - 2], zero]), da, zero]);
    }
  }
  return grads;
}

/** Where a loss-and-gradient block inside a larger graph (a Loop body) finds its batch and parameters. */
interface BatchValues {
  x: string;
  y: string;
  param: (name: string) => string;
  loss: string;
}

/**
 * Gradient graph: inputs W1, b1, ..., x [B, in], y [B, classes] (one-hot); outputs loss (mean
 * cross-entropy) and gW1, gb1, ... (d loss / d parameter). Used to check the backward pass.
 */
export function buildTrainGraph(spec: ModelSpec, elem: ElemType = 'float'): Uint8Array {
  const g = new GraphBuilder(elem);
  lossAndGradients(g, spec, elem, (p) => `g${p}`);
  for (const s of paramLayout(spec)) g.output(`g${s.name}`, s.shape);
  return g.build('train_step');
}

/**
 * SGD-step graph: the gradient graph plus the update, so the whole step runs inside
 * onnxruntime (its element-wise kernels are vectorised; the same loop in JS took 0.21 ms per
 * step for the default MLP). Extra inputs: lr (scalar) and, with `prox`, mu (scalar) and the
 * global parameters W1_0, b1_0, ... (FedProx: g + μ(w − w0)). Outputs: loss, W1_new, b1_new, ...
 */
export function buildSgdGraph(spec: ModelSpec, prox: boolean, elem: ElemType = 'float'): Uint8Array {
  const g = new GraphBuilder(elem);
  const grads = lossAndGradients(g, spec, elem, () => undefined);
  const lr = g.input('lr', []);
  const mu = prox ? g.input('mu', []) : '';
  for (const s of paramLayout(spec)) {
    const w0 = prox ? g.input(`${s.name}_0`, s.shape) : '';
    sgdUpdate(g, s.name, grads.get(s.name)!, lr, prox ? { mu, w0 } : undefined, `${s.name}_new`);
    g.output(`${s.name}_new`, s.shape);
  }
  return g.build(prox ? 'sgd_prox_step' : 'sgd_step');
}

/** w − lr · (g + μ(w − w0)): the same operators in the step graph and the Loop body, so both give the same bits. */
function sgdUpdate(g: GraphBuilder, w: string, grad: string, lr: string, prox: { mu: string; w0: string } | undefined, out: string): string {
  const full = prox ? g.node('Add', [grad, g.node('Mul', [prox.mu, g.node('Sub', [w, prox.w0])])]) : grad;
  return g.node('Sub', [w, g.node('Mul', [lr, full])], {}, out);
}

/**
 * Many SGD steps in one onnxruntime call: an ONNX Loop whose body is the SGD-step graph's
 * operators. A step of the default MLP at B = 10 costs about as much as one at B = 1 (0.33 ms,
 * `bench train`): the call (feeds, fetches, the hop to onnxruntime's thread and back) is most of
 * it, and a local update (E = 5, N = 100, B = 10) makes 50 of them. Inputs: the parameters
 * W1, b1, ... (the start), the samples x [N, in] and one-hot labels y [N, classes], the steps'
 * sample indices idx [S, B] (int64; row s holds step s's batch, its first counts[s] entries
 * used: the last batch of an epoch may be short), counts [S], steps (S, the trip count) and lr;
 * with `prox` mu and W1_0, b1_0, ... Outputs: W1_new, b1_new, ... after S steps and losses [S]
 * (each step's loss at the parameters it started from).
 */
export function buildSgdLoopGraph(spec: ModelSpec, prox: boolean, elem: ElemType = 'float'): Uint8Array {
  const g = new GraphBuilder(elem);
  const layout = paramLayout(spec);
  for (const s of layout) g.input(s.name, s.shape);
  const x = g.input('x', ['N', inputSize(spec)]);
  const y = g.input('y', ['N', classCount(spec)]);
  const idx = g.input('idx', ['S', 'B'], 'int64');
  const counts = g.input('counts', ['S'], 'int64');
  const steps = g.input('steps', [], 'int64');
  const lr = g.input('lr', []);
  const mu = prox ? g.input('mu', []) : '';
  const w0 = new Map(layout.map((s) => [s.name, prox ? g.input(`${s.name}_0`, s.shape) : '']));

  const b = new GraphBuilder(elem, 'body_');
  const iter = b.input('body_iter', [], 'int64');
  const cond = b.input('body_cond', [], 'bool');
  for (const s of layout) b.input(`body_${s.name}`, s.shape);
  const row = b.node('Gather', [idx, iter], { axis: 0 });
  const count = b.node('Unsqueeze', [b.node('Gather', [counts, iter], { axis: 0 }), b.constInt64([0])]);
  const picked = b.node('Slice', [row, b.constInt64([0]), count]);
  const xb = b.node('Gather', [x, picked], { axis: 0 });
  const yb = b.node('Gather', [y, picked], { axis: 0 });
  const grads = lossAndGradients(b, spec, elem, () => undefined, { x: xb, y: yb, param: (n) => `body_${n}`, loss: 'body_loss' });
  b.node('Identity', [cond], {}, 'body_cond_out');
  b.output('body_cond_out', [], 'bool');
  for (const s of layout) {
    sgdUpdate(b, `body_${s.name}`, grads.get(s.name)!, lr, prox ? { mu, w0: w0.get(s.name)! } : undefined, `body_${s.name}_next`);
    b.output(`body_${s.name}_next`, s.shape);
  }
  // the body's outputs: condition, loop-carried values, then scan outputs (the loss, stacked)
  const lossOut = b.graph('sgd_step_body');
  lossOut.output.push(lossOut.output.splice(lossOut.output.findIndex((o) => o.name === 'body_loss'), 1)[0]);

  g.node('Loop', [steps, '', ...layout.map((s) => s.name)], { body: { graph: lossOut } }, [...layout.map((s) => `${s.name}_new`), 'losses']);
  for (const s of layout) g.output(`${s.name}_new`, s.shape);
  g.output('losses', ['S']);
  return g.build(prox ? 'sgd_prox_loop' : 'sgd_loop');
}
