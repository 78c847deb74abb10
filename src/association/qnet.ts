/**
 * The dueling Q-network of the DT paper's scheduler (section V-B, Fig. 3) as ONNX graphs we
 * generate ourselves, the way src/learn/model.ts does for the classifier: `onnxruntime-node`
 * only runs inference, so the train step is an inference graph whose inputs are the parameters,
 * a minibatch, the taken actions (one-hot) and the double-Q targets, and whose outputs are the
 * loss and either the gradients or the RMSProp-updated parameters.
 *
 * Network: x → [Dense+ReLU] × hidden (512-256-128) → h; value V = h·Wv + bv (1), advantage
 * A = h·Wa + ba (M·K), Q = V + A − mean_a A (Wang et al.'s dueling aggregation, the paper's
 * [31]). Parameter layout (one flat Float32Array): W1, b1, ..., WL, bL, Wv, bv, Wa, ba.
 */
import { Rng } from '../core/random.ts';
import { type ElemType, GraphBuilder } from '../learn/onnx.ts';

export interface QNetSpec {
  inputs: number;
  hidden: number[];
  actions: number;
}

export interface ParamSlice {
  name: string;
  offset: number;
  shape: number[];
  size: number;
}

export function qnetLayout(spec: QNetSpec): ParamSlice[] {
  const out: ParamSlice[] = [];
  let offset = 0;
  const dense = (w: string, b: string, i: number, o: number) => {
    out.push({ name: w, offset, shape: [i, o], size: i * o });
    offset += i * o;
    out.push({ name: b, offset, shape: [o], size: o });
    offset += o;
  };
  const widths = [spec.inputs, ...spec.hidden];
  for (let l = 1; l < widths.length; l++) dense(`W${l}`, `b${l}`, widths[l - 1], widths[l]);
  const last = widths[widths.length - 1];
  dense('Wv', 'bv', last, 1);
  dense('Wa', 'ba', last, spec.actions);
  return out;
}

export function qnetParamCount(spec: QNetSpec): number {
  return qnetLayout(spec).reduce((s, p) => s + p.size, 0);
}

/** He-uniform weights (ReLU layers), zero biases; seeded. */
export function initQnet(spec: QNetSpec, seed: number): Float32Array {
  const rng = new Rng(seed);
  const p = new Float32Array(qnetParamCount(spec));
  for (const s of qnetLayout(spec)) {
    if (s.name.startsWith('b')) continue;
    const bound = Math.sqrt(6 / s.shape[0]);
    for (let k = 0; k < s.size; k++) p[s.offset + k] = (2 * rng.float() - 1) * bound;
  }
  return p;
}

function forward(g: GraphBuilder, spec: QNetSpec, x: string) {
  const pre: string[] = [];
  const acts: string[] = [x];
  let h = x;
  for (let l = 1; l <= spec.hidden.length; l++) {
    const z = g.node('Gemm', [h, `W${l}`, `b${l}`]);
    pre.push(z);
    h = g.node('Relu', [z]);
    acts.push(h);
  }
  const v = g.node('Gemm', [h, 'Wv', 'bv']);
  const adv = g.node('Gemm', [h, 'Wa', 'ba']);
  const q = g.node('Add', [v, g.node('Sub', [adv, g.node('ReduceMean', [adv], { axes: [1], keepdims: 1 })])]);
  return { q, h, pre, acts };
}

/** Inference graph: parameters (inputs, or initializers for a shipped policy), x [B, S] → q [B, A]. */
export function buildQGraph(spec: QNetSpec, elem: ElemType = 'float', initializer?: Float32Array): Uint8Array {
  const g = new GraphBuilder(elem);
  for (const s of qnetLayout(spec)) {
    if (initializer) g.initializer(s.name, s.shape, initializer.subarray(s.offset, s.offset + s.size));
    else g.input(s.name, s.shape);
  }
  g.input('x', ['B', spec.inputs]);
  const { q } = forward(g, spec, 'x');
  g.node('Identity', [q], {}, 'q');
  g.output('q', ['B', spec.actions]);
  return g.build('d3qn_q');
}

/**
 * Loss of eq. (22), Σ_b Σ_a w_ba (Q(s_b, a) − ŷ_ba)² / B: with w the one-hot of the taken
 * action and ŷ its double-Q target of eq. (23) (computed outside) in every column, exactly
 * eq. (22); with w over several actions, the twin's counterfactual targets for each (d3qn.ts,
 * `targets: 'all'`). Backward pass:
 *   dQ = 2 w ⊙ (Q − ŷ)/B
 *   dV = Σ_a dQ,  dA = dQ − mean_a dQ           (Q = V + A − mean A)
 *   gWv = hᵀ dV, gWa = hᵀ dA, dh = dV Wvᵀ + dA Waᵀ, then the ReLU MLP backward as model.ts.
 */
function lossAndGradients(g: GraphBuilder, spec: QNetSpec, elem: ElemType): Map<string, string> {
  for (const s of qnetLayout(spec)) g.input(s.name, s.shape);
  const x = g.input('x', ['B', spec.inputs]);
  const act = g.input('act', ['B', spec.actions]);
  const y = g.input('y', ['B', spec.actions]);
  const { q, h, pre, acts } = forward(g, spec, x);
  const batch = g.node('Cast', [g.node('Gather', [g.node('Shape', [x]), g.constInt64([0])])], { to: { type: elem } });
  const diff = g.node('Sub', [q, y]);
  const wd = g.node('Mul', [act, diff]);
  g.node('ReduceSum', [g.node('Div', [g.node('Mul', [wd, diff]), batch])], { keepdims: 0 }, 'loss');
  g.output('loss', []);

  const dQ = g.node('Div', [g.node('Mul', [wd, g.constScalar(2)]), batch]);
  const dV = g.node('ReduceSum', [dQ, g.constInt64([1])], { keepdims: 1 });
  const dA = g.node('Sub', [dQ, g.node('ReduceMean', [dQ], { axes: [1], keepdims: 1 })]);
  const grads = new Map<string, string>();
  grads.set('Wv', g.node('Gemm', [h, dV], { transA: 1 }));
  grads.set('bv', g.node('ReduceSum', [dV, g.constInt64([0])], { keepdims: 0 }));
  grads.set('Wa', g.node('Gemm', [h, dA], { transA: 1 }));
  grads.set('ba', g.node('ReduceSum', [dA, g.constInt64([0])], { keepdims: 0 }));
  const zero = g.constScalar(0);
  let da = g.node('Add', [g.node('Gemm', [dV, 'Wv'], { transB: 1 }), g.node('Gemm', [dA, 'Wa'], { transB: 1 })]);
  for (let l = spec.hidden.length; l >= 1; l--) {
    const dz = g.node('Where', [g.node('Greater', [pre[l - 1], zero]), da, zero]);
    grads.set(`W${l}`, g.node('Gemm', [acts[l - 1], dz], { transA: 1 }));
    grads.set(`b${l}`, g.node('ReduceSum', [dz, g.constInt64([0])], { keepdims: 0 }));
    if (l > 1) da = g.node('Gemm', [dz, `W${l}`], { transB: 1 });
  }
  return grads;
}

/** Gradient graph (checked against finite differences): outputs loss and g<param>. */
export function buildQGradGraph(spec: QNetSpec, elem: ElemType = 'float'): Uint8Array {
  const g = new GraphBuilder(elem);
  const grads = lossAndGradients(g, spec, elem);
  for (const s of qnetLayout(spec)) {
    g.node('Identity', [grads.get(s.name)!], {}, `g${s.name}`);
    g.output(`g${s.name}`, s.shape);
  }
  return g.build('d3qn_grad');
}

/**
 * RMSProp step graph (the paper's optimiser [34], in PyTorch's form): for every parameter w
 * with gradient g and running mean square s: s' = α·s + (1 − α)·g², w' = w − η·g/(√s' + ε).
 * Extra inputs lr, alpha, eps (scalars) and s_<param>; outputs loss, <param>_new, s_<param>_new.
 */
export function buildQRmspropGraph(spec: QNetSpec, elem: ElemType = 'float'): Uint8Array {
  const g = new GraphBuilder(elem);
  const grads = lossAndGradients(g, spec, elem);
  const lr = g.input('lr', []);
  const alpha = g.input('alpha', []);
  const eps = g.input('eps', []);
  const oneMinus = g.node('Sub', [g.constScalar(1), alpha]);
  for (const s of qnetLayout(spec)) {
    const grad = grads.get(s.name)!;
    const sq = g.input(`s_${s.name}`, s.shape);
    const sNew = g.node('Add', [g.node('Mul', [alpha, sq]), g.node('Mul', [oneMinus, g.node('Mul', [grad, grad])])], {}, `s_${s.name}_new`);
    const step = g.node('Div', [g.node('Mul', [lr, grad]), g.node('Add', [g.node('Sqrt', [sNew]), eps])]);
    g.node('Sub', [s.name, step], {}, `${s.name}_new`);
    g.output(`${s.name}_new`, s.shape);
    g.output(`s_${s.name}_new`, s.shape);
  }
  return g.build('d3qn_rmsprop');
}
