/**
 * Split learning (issue 19; ../shared/papers/dt-cloud-edge-client-learning.txt, section III and
 * Algorithm 1): the model W is cut after dense layer c into a head W^H (layers 1..c, kept by
 * the client) and a body W^B (layers c+1..L, trained by the edge server, here a miner).
 *
 *   client:  a = relu(z_c) = head(x)                      → sends a ("smashed data") and y
 *   miner:   loss, ∇W^B, g_a = ∂loss/∂a = body step(a, y)  → answers g_a            (eq. 1)
 *   client:  ∇W^H = head backward(x, g_a)                                           (eq. 2)
 *
 * The cut activation is taken after the ReLU of layer c, so the smashed data are exactly the
 * hidden activations of the whole model and head + body compute the same loss and gradients as
 * the whole model's train graph (tested). The loss is the batch mean, so g_a already carries
 * the 1/B factor and the head gradient needs no rescaling.
 *
 * Parameter layout: the whole model's flat vector (model.ts) is W1, b1, ..., WL, bL, so the head
 * is its prefix (W1..bc) and the body its suffix (W_{c+1}..bL). Head and body vectors are
 * those slices, with the same names and shapes; `splitParams`/`joinParams` move between them.
 */
import { ort } from './ort.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import type { Rng } from '../core/random.ts';
import { type ModelSpec, type ParamSlice, classCount, inputSize, paramLayout } from './model.ts';
import { type ElemType, GraphBuilder } from './onnx.ts';
import type { RuntimeOptions } from './runtime.ts';

type Arr = Float32Array | Float64Array;

/** Dense layers on the client. The default model 784-200-10 has one possible cut: c = 1. */
export const DEFAULT_CUT = 1;

/** Throws BAD_CONFIG unless 1 ≤ cut ≤ L − 1 (both parts need at least one layer). */
export function checkCut(spec: ModelSpec, cut: number): void {
  const L = spec.layers.length - 1;
  if (!Number.isInteger(cut) || cut < 1 || cut > L - 1) {
    const range = L >= 2 ? `an integer from 1 to ${L - 1}` : 'impossible: a model needs at least two dense layers to split';
    throw new BflError(ErrorCode.BAD_CONFIG, `split cut ${cut} for MLP ${spec.layers.join('-')}: the cut is the number of dense layers on the client, ${range}`);
  }
}

/** Width of the smashed data: the activations at the cut, per sample. */
export function cutWidth(spec: ModelSpec, cut: number): number {
  checkCut(spec, cut);
  return spec.layers[cut];
}

/** The head's parameters (W1..bc), offsets into the head vector (= into the whole vector). */
export function headLayout(spec: ModelSpec, cut: number): ParamSlice[] {
  checkCut(spec, cut);
  return paramLayout(spec).slice(0, 2 * cut);
}

/** The body's parameters (W_{c+1}..bL), offsets into the body vector. */
export function bodyLayout(spec: ModelSpec, cut: number): ParamSlice[] {
  checkCut(spec, cut);
  const all = paramLayout(spec);
  const start = all[2 * cut].offset;
  return all.slice(2 * cut).map((s) => ({ ...s, offset: s.offset - start }));
}

const total = (layout: ParamSlice[]) => layout.reduce((s, p) => s + p.size, 0);

export function headParamCount(spec: ModelSpec, cut: number): number {
  return total(headLayout(spec, cut));
}

export function bodyParamCount(spec: ModelSpec, cut: number): number {
  return total(bodyLayout(spec, cut));
}

/** Views (no copy) of the head and body parts of a whole-model parameter vector. */
export function splitParams<T extends Arr>(params: T, spec: ModelSpec, cut: number): { head: T; body: T } {
  const h = headParamCount(spec, cut);
  const expected = h + bodyParamCount(spec, cut);
  if (params.length !== expected) throw new RangeError(`expected ${expected} parameters, got ${params.length}`);
  return { head: params.subarray(0, h) as T, body: params.subarray(h) as T };
}

/** The whole-model vector of a head and a body (a new array). */
export function joinParams(head: Float32Array, body: Float32Array): Float32Array {
  const out = new Float32Array(head.length + body.length);
  out.set(head, 0);
  out.set(body, head.length);
  return out;
}

/** Dense layers `from..to` (1-based, inclusive) on input `a`; ReLU after every layer below `reluBelow`. */
function dense(g: GraphBuilder, a: string, from: number, to: number, reluBelow: number): { out: string; pre: string[]; acts: string[] } {
  const pre: string[] = [];
  const acts: string[] = [a];
  for (let l = from; l <= to; l++) {
    const z = g.node('Gemm', [a, `W${l}`, `b${l}`]);
    pre.push(z);
    a = l < reluBelow ? g.node('Relu', [z]) : z;
    if (l < to) acts.push(a);
  }
  return { out: a, pre, acts };
}

/**
 * Backward through dense layers `from..to` given dz_to (d loss / d z_to); `pre`/`acts` from
 * `dense`. Writes the parameter gradients (named by `gradName`) and returns d loss / d (input of
 * layer `from`) if `wantInput`. Same recurrences as model.ts:
 *   gW_l = a_{l−1}ᵀ · dz_l,  gb_l = Σ_batch dz_l,  dz_{l−1} = (dz_l · W_lᵀ) ⊙ [z_{l−1} > 0]
 */
function backward(
  g: GraphBuilder,
  from: number,
  to: number,
  dzTop: string,
  pre: string[],
  acts: string[],
  gradName: (p: string) => string | undefined,
  wantInput?: string,
): Map<string, string> {
  const grads = new Map<string, string>();
  const zero = from < to ? g.constScalar(0) : ''; // only the masks between layers use it
  let dz = dzTop;
  for (let l = to; l >= from; l--) {
    const k = l - from;
    grads.set(`W${l}`, g.node('Gemm', [acts[k], dz], { transA: 1 }, gradName(`W${l}`)));
    grads.set(`b${l}`, g.node('ReduceSum', [dz, g.constInt64([0])], { keepdims: 0 }, gradName(`b${l}`)));
    if (l > from) {
      const da = g.node('Gemm', [dz, `W${l}`], { transB: 1 });
      dz = g.node('Where', [g.node('Greater', [pre[k - 1], zero]), da, zero]);
    } else if (wantInput) {
      g.node('Gemm', [dz, `W${l}`], { transB: 1 }, wantInput);
    }
  }
  return grads;
}

/** SGD outputs `${name}_new` = name − lr · grad for every parameter of `layout`. */
function sgdOutputs(g: GraphBuilder, layout: ParamSlice[], grads: Map<string, string>): void {
  const lr = g.input('lr', []);
  for (const s of layout) {
    g.node('Sub', [s.name, g.node('Mul', [lr, grads.get(s.name)!])], {}, `${s.name}_new`);
    g.output(`${s.name}_new`, s.shape);
  }
}

/** Head forward: inputs W1..bc, x [B, in]; output a [B, width_c] = relu(z_c). */
export function buildHeadForwardGraph(spec: ModelSpec, cut: number, elem: ElemType = 'float'): Uint8Array {
  const g = new GraphBuilder(elem);
  for (const s of headLayout(spec, cut)) g.input(s.name, s.shape);
  const x = g.input('x', ['B', inputSize(spec)]);
  const { out } = dense(g, x, 1, cut, cut + 1);
  g.node('Identity', [out], {}, 'a');
  g.output('a', ['B', spec.layers[cut]]);
  return g.build('split_head_forward');
}

/**
 * Head backward: inputs W1..bc, x, ga [B, width_c] (d loss / d a from the body); outputs gW1..gbc,
 * or with `sgd` an extra input lr and outputs W1_new..bc_new. The forward is recomputed (one
 * head pass) rather than kept: the client then holds nothing between the two calls but x.
 */
export function buildHeadBackwardGraph(spec: ModelSpec, cut: number, sgd: boolean, elem: ElemType = 'float'): Uint8Array {
  const g = new GraphBuilder(elem);
  const layout = headLayout(spec, cut);
  for (const s of layout) g.input(s.name, s.shape);
  const x = g.input('x', ['B', inputSize(spec)]);
  const ga = g.input('ga', ['B', spec.layers[cut]]);
  const { pre, acts } = dense(g, x, 1, cut, cut + 1);
  // a = relu(z_c): d loss / d z_c = ga ⊙ [z_c > 0]
  const zero = g.constScalar(0);
  const dz = g.node('Where', [g.node('Greater', [pre[cut - 1], zero]), ga, zero]);
  const grads = backward(g, 1, cut, dz, pre, acts, (p) => (sgd ? undefined : `g${p}`));
  if (sgd) sgdOutputs(g, layout, grads);
  else for (const s of layout) g.output(`g${s.name}`, s.shape);
  return g.build(sgd ? 'split_head_sgd' : 'split_head_backward');
}

/**
 * Body step: inputs W_{c+1}..bL, a [B, width_c], y [B, classes] (one-hot); outputs loss (mean
 * cross-entropy), ga [B, width_c] (d loss / d a, at the parameters given) and either the
 * gradients gW_{c+1}..gbL or, with `sgd` (extra input lr), the updated W_{c+1}_new..bL_new.
 */
export function buildBodyStepGraph(spec: ModelSpec, cut: number, sgd: boolean, elem: ElemType = 'float'): Uint8Array {
  const g = new GraphBuilder(elem);
  const layout = bodyLayout(spec, cut);
  const L = spec.layers.length - 1;
  for (const s of layout) g.input(s.name, s.shape);
  const a = g.input('a', ['B', spec.layers[cut]]);
  const y = g.input('y', ['B', classCount(spec)]);
  const { out: logits, pre, acts } = dense(g, a, cut + 1, L, L);
  const logp = g.node('LogSoftmax', [logits], { axis: 1 });
  const perSample = g.node('ReduceSum', [g.node('Mul', [y, logp]), g.constInt64([1])], { keepdims: 0 });
  g.node('Neg', [g.node('ReduceMean', [perSample], { keepdims: 0 })], {}, 'loss');
  g.output('loss', []);
  const batch = g.node('Cast', [g.node('Gather', [g.node('Shape', [a]), g.constInt64([0])])], { to: { type: elem } });
  const dz = g.node('Div', [g.node('Sub', [g.node('Exp', [logp]), y]), batch]);
  const grads = backward(g, cut + 1, L, dz, pre, acts, (p) => (sgd ? undefined : `g${p}`), 'ga');
  g.output('ga', ['B', spec.layers[cut]]);
  if (sgd) sgdOutputs(g, layout, grads);
  else for (const s of layout) g.output(`g${s.name}`, s.shape);
  return g.build(sgd ? 'split_body_sgd' : 'split_body_step');
}

type Kind = 'headForward' | 'headBackward' | 'headSgd' | 'bodyStep' | 'bodySgd';

/**
 * onnxruntime-node sessions for the split graphs of one model and cut, fed the same way as
 * ModelRuntime: parameters as zero-copy views, outputs written into caller-owned arrays. A client
 * uses the head calls, a miner the body calls; graphs are compiled on first use, so each side
 * only pays for its own.
 */
export class SplitRuntime {
  readonly spec: ModelSpec;
  readonly cut: number;
  readonly elem: ElemType;
  readonly headParams: number;
  readonly bodyParams: number;
  /** Floats of smashed data per sample (the cut width). */
  readonly width: number;
  private readonly head: ParamSlice[];
  private readonly body: ParamSlice[];
  private readonly so: ort.InferenceSession.SessionOptions;
  private readonly sessions = new Map<Kind, Promise<ort.InferenceSession>>();

  private constructor(spec: ModelSpec, cut: number, opts: RuntimeOptions) {
    this.spec = spec;
    this.cut = cut;
    this.elem = opts.elem ?? 'float';
    this.head = headLayout(spec, cut);
    this.body = bodyLayout(spec, cut);
    this.headParams = total(this.head);
    this.bodyParams = total(this.body);
    this.width = spec.layers[cut];
    // Same session settings as ModelRuntime (one thread: several nodes share the cores).
    this.so = { intraOpNumThreads: opts.threads ?? 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' };
  }

  /** Throws BAD_CONFIG for a cut the model cannot take (see checkCut). */
  static create(spec: ModelSpec, cut: number = DEFAULT_CUT, opts: RuntimeOptions = {}): SplitRuntime {
    checkCut(spec, cut);
    return new SplitRuntime(spec, cut, opts);
  }

  private session(kind: Kind): Promise<ort.InferenceSession> {
    let s = this.sessions.get(kind);
    if (!s) {
      const { spec, cut, elem } = this;
      const graph =
        kind === 'headForward'
          ? buildHeadForwardGraph(spec, cut, elem)
          : kind === 'headBackward' || kind === 'headSgd'
            ? buildHeadBackwardGraph(spec, cut, kind === 'headSgd', elem)
            : buildBodyStepGraph(spec, cut, kind === 'bodySgd', elem);
      s = ort.InferenceSession.create(graph, this.so);
      this.sessions.set(kind, s);
    }
    return s;
  }

  private tensor(data: Arr, dims: number[]): ort.Tensor {
    return new ort.Tensor(this.elem === 'double' ? 'float64' : 'float32', data, dims);
  }

  private scalar(v: number): ort.Tensor {
    return this.tensor(this.elem === 'double' ? Float64Array.of(v) : Float32Array.of(v), []);
  }

  private feeds(layout: ParamSlice[], params: Arr, part: 'head' | 'body'): Record<string, ort.Tensor> {
    const n = part === 'head' ? this.headParams : this.bodyParams;
    if (params.length !== n) throw new RangeError(`expected ${n} ${part} parameters, got ${params.length}`);
    const f: Record<string, ort.Tensor> = {};
    for (const s of layout) f[s.name] = this.tensor(params.subarray(s.offset, s.offset + s.size), s.shape);
    return f;
  }

  private views(layout: ParamSlice[], out: Arr, name: (p: string) => string, fetches: Record<string, ort.Tensor | null>): void {
    for (const s of layout) fetches[name(s.name)] = this.tensor(out.subarray(s.offset, s.offset + s.size), s.shape);
  }

  /** Smashed data a = head(x), [batch, width], written into `out` if given. */
  async headForward(head: Arr, x: Arr, batch: number, out?: Arr): Promise<Arr> {
    const f = this.feeds(this.head, head, 'head');
    f.x = this.tensor(x, [batch, inputSize(this.spec)]);
    const fetches = out ? { a: this.tensor(out.subarray(0, batch * this.width), [batch, this.width]) } : undefined;
    const res = await (await this.session('headForward')).run(f, fetches ?? ['a']);
    return res.a.data as Arr;
  }

  /** d loss / d head parameters given the cut gradient ga [batch, width], written into `grads`. */
  async headBackward(head: Arr, x: Arr, ga: Arr, batch: number, grads: Arr): Promise<void> {
    const f = this.feeds(this.head, head, 'head');
    f.x = this.tensor(x, [batch, inputSize(this.spec)]);
    f.ga = this.tensor(ga, [batch, this.width]);
    const fetches: Record<string, ort.Tensor | null> = {};
    this.views(this.head, grads, (p) => `g${p}`, fetches);
    await (await this.session('headBackward')).run(f, fetches);
  }

  /** head − lr · (head gradient), written into `next` (which must not alias `head`). */
  async headSgdStep(head: Arr, x: Arr, ga: Arr, batch: number, lr: number, next: Arr): Promise<void> {
    const f = this.feeds(this.head, head, 'head');
    f.x = this.tensor(x, [batch, inputSize(this.spec)]);
    f.ga = this.tensor(ga, [batch, this.width]);
    f.lr = this.scalar(lr);
    const fetches: Record<string, ort.Tensor | null> = {};
    this.views(this.head, next, (p) => `${p}_new`, fetches);
    await (await this.session('headSgd')).run(f, fetches);
  }

  /**
   * The miner's step on smashed data: writes d loss / d body into `grads` and d loss / d a into
   * `ga` ([batch, width]); returns the loss.
   */
  async bodyStep(body: Arr, a: Arr, yOneHot: Arr, batch: number, grads: Arr, ga: Arr): Promise<number> {
    const f = this.feeds(this.body, body, 'body');
    f.a = this.tensor(a, [batch, this.width]);
    f.y = this.tensor(yOneHot, [batch, classCount(this.spec)]);
    const fetches: Record<string, ort.Tensor | null> = { loss: null, ga: this.tensor(ga.subarray(0, batch * this.width), [batch, this.width]) };
    this.views(this.body, grads, (p) => `g${p}`, fetches);
    const out = await (await this.session('bodyStep')).run(f, fetches);
    return Number((out.loss.data as Arr)[0]);
  }

  /** bodyStep fused with SGD: body − lr · gradient into `next` (must not alias `body`), ga at `body`. */
  async bodySgdStep(body: Arr, a: Arr, yOneHot: Arr, batch: number, lr: number, next: Arr, ga: Arr): Promise<number> {
    const f = this.feeds(this.body, body, 'body');
    f.a = this.tensor(a, [batch, this.width]);
    f.y = this.tensor(yOneHot, [batch, classCount(this.spec)]);
    f.lr = this.scalar(lr);
    const fetches: Record<string, ort.Tensor | null> = { loss: null, ga: this.tensor(ga.subarray(0, batch * this.width), [batch, this.width]) };
    this.views(this.body, next, (p) => `${p}_new`, fetches);
    const out = await (await this.session('bodySgd')).run(f, fetches);
    return Number((out.loss.data as Arr)[0]);
  }

  async close(): Promise<void> {
    const all = await Promise.all(this.sessions.values());
    this.sessions.clear();
    await Promise.all(all.map((s) => s.release()));
  }
}

/**
 * Dropout on the smashed data (issue 19, fifth look; Srivastava et al. 2014, "inverted" dropout):
 * each activation at the cut is kept with probability 1 − p and scaled by 1/(1 − p), so its
 * expectation is unchanged and evaluation uses no mask. The mask (0 or 1/(1 − p) per activation
 * of `rows` × `width`) is drawn from `rng` into `out`.
 */
export function cutDropoutMask(rng: Rng, p: number, rows: number, width: number, out: Float32Array): Float32Array {
  if (!(p >= 0 && p < 1)) throw new BflError(ErrorCode.BAD_CONFIG, `cut dropout ${p}: a rate in [0, 1)`);
  const keep = 1 / (1 - p);
  const n = rows * width;
  for (let k = 0; k < n; k++) out[k] = rng.float() < p ? 0 : keep;
  return out.subarray(0, n);
}

/** v ⊙ mask, in place, over the mask's length. */
export function applyMask(v: Arr, mask: Float32Array): void {
  for (let k = 0; k < mask.length; k++) v[k] *= mask[k];
}

/** Buffers of one batch's step through the cut: smashed data and cut gradient, [batch, width]. */
export interface CutScratch {
  a: Arr;
  ga: Arr;
}

/**
 * One SGD step of a head and a body through the cut, as split learning runs it: the client's
 * head forward, the miner's body step on the smashed data, the client's head step with the cut
 * gradient. With a dropout `mask` the miner steps on a ⊙ mask, and the cut gradient it answers
 * is taken back through the same mask (d loss / d a = (d loss / d (a ⊙ mask)) ⊙ mask), so the
 * head is trained on the same thinned network. With lr for both and no mask it is the whole
 * model's SGD step (tested); `headLr` 0 leaves the head (a frozen head). Writes the body into
 * `nextBody` and, if headLr > 0, the head into `nextHead`; returns the body's loss.
 */
export async function stepThroughCut(
  rt: SplitRuntime,
  head: Arr,
  body: Arr,
  x: Arr,
  yOneHot: Arr,
  batch: number,
  lr: { head: number; body: number },
  mask: Float32Array | null,
  next: { head: Arr; body: Arr },
  scratch: CutScratch,
): Promise<number> {
  const n = batch * rt.width;
  const a = scratch.a.subarray(0, n);
  const ga = scratch.ga.subarray(0, n);
  await rt.headForward(head, x, batch, a);
  if (mask) applyMask(a, mask);
  const loss = await rt.bodySgdStep(body, a, yOneHot, batch, lr.body, next.body, ga);
  if (lr.head > 0) {
    if (mask) applyMask(ga, mask);
    await rt.headSgdStep(head, x, ga, batch, lr.head, next.head);
  }
  return loss;
}
