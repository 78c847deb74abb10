/**
 * onnxruntime-node sessions for one model: the inference graph and the train-step graph,
 * generated in memory. Parameters are fed as zero-copy views into the flat parameter vector;
 * gradients are written by onnxruntime straight into views of one flat gradient vector
 * (pre-allocated outputs), so a step allocates nothing of model size.
 */
import { ort } from './ort.ts';
import { type ElemType } from './onnx.ts';
import { type ModelSpec, buildInferenceGraph, buildSgdGraph, buildSgdLoopGraph, buildTrainGraph, classCount, inputSize, paramCount, paramLayout } from './model.ts';

type Arr = Float32Array | Float64Array;

export interface RuntimeOptions {
  /** onnxruntime intra-op threads. Default 1: on an edge device (or a laptop testnet) several
   * nodes share the cores, and one thread keeps the step time predictable. */
  threads?: number;
  elem?: ElemType;
}

export class ModelRuntime {
  readonly spec: ModelSpec;
  readonly elem: ElemType;
  readonly params: number;
  private readonly infer: ort.InferenceSession;
  private readonly sessionOptions: ort.InferenceSession.SessionOptions;
  private train?: Promise<ort.InferenceSession>;
  private sgd?: Promise<ort.InferenceSession>;
  private sgdProx?: Promise<ort.InferenceSession>;
  private sgdLoop?: Promise<ort.InferenceSession>;
  private sgdProxLoop?: Promise<ort.InferenceSession>;
  private readonly layout = new Map<string, { offset: number; shape: number[]; size: number }>();

  private constructor(spec: ModelSpec, elem: ElemType, infer: ort.InferenceSession, so: ort.InferenceSession.SessionOptions) {
    this.spec = spec;
    this.elem = elem;
    this.infer = infer;
    this.sessionOptions = so;
    this.params = paramCount(spec);
    for (const s of paramLayout(spec)) this.layout.set(s.name, s);
  }

  static async create(spec: ModelSpec, opts: RuntimeOptions = {}): Promise<ModelRuntime> {
    const elem = opts.elem ?? 'float';
    const so: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: opts.threads ?? 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    };
    return new ModelRuntime(spec, elem, await ort.InferenceSession.create(buildInferenceGraph(spec, elem), so), so);
  }

  // Train graphs are compiled on first use: a node that only evaluates never pays for them.
  private session(kind: 'train' | 'sgd' | 'sgdProx' | 'sgdLoop' | 'sgdProxLoop'): Promise<ort.InferenceSession> {
    const graph = () => {
      if (kind === 'train') return buildTrainGraph(this.spec, this.elem);
      if (kind === 'sgdLoop' || kind === 'sgdProxLoop') return buildSgdLoopGraph(this.spec, kind === 'sgdProxLoop', this.elem);
      return buildSgdGraph(this.spec, kind === 'sgdProx', this.elem);
    };
    return (this[kind] ??= ort.InferenceSession.create(graph(), this.sessionOptions));
  }

  private tensor(data: Arr, dims: number[]): ort.Tensor {
    return new ort.Tensor(this.elem === 'double' ? 'float64' : 'float32', data, dims);
  }

  private paramFeeds(params: Arr): Record<string, ort.Tensor> {
    if (params.length !== this.params) throw new RangeError(`expected ${this.params} parameters, got ${params.length}`);
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, s] of this.layout) feeds[name] = this.tensor(params.subarray(s.offset, s.offset + s.size), s.shape);
    return feeds;
  }

  /** One forward + backward pass. Writes d loss / d params into `grads`; returns the loss. */
  async trainStep(params: Arr, x: Arr, yOneHot: Arr, batch: number, grads: Arr): Promise<number> {
    const feeds = this.paramFeeds(params);
    feeds.x = this.tensor(x, [batch, inputSize(this.spec)]);
    feeds.y = this.tensor(yOneHot, [batch, classCount(this.spec)]);
    const fetches: Record<string, ort.Tensor | null> = { loss: null };
    for (const [name, s] of this.layout) fetches[`g${name}`] = this.tensor(grads.subarray(s.offset, s.offset + s.size), s.shape);
    const out = await (await this.session('train')).run(feeds, fetches);
    return Number((out.loss.data as Arr)[0]);
  }

  /**
   * One SGD step: w_new = w − lr · (∇loss + mu · (w − w0)), written into `next` (which must not
   * alias `params`). Returns the loss at `params`.
   */
  async sgdStep(params: Arr, x: Arr, yOneHot: Arr, batch: number, lr: number, next: Arr, prox?: { mu: number; global: Arr }): Promise<number> {
    const usesProx = !!prox && prox.mu > 0;
    const feeds = this.paramFeeds(params);
    feeds.x = this.tensor(x, [batch, inputSize(this.spec)]);
    feeds.y = this.tensor(yOneHot, [batch, classCount(this.spec)]);
    feeds.lr = this.tensor(this.elem === 'double' ? Float64Array.of(lr) : Float32Array.of(lr), []);
    if (usesProx) {
      feeds.mu = this.tensor(this.elem === 'double' ? Float64Array.of(prox.mu) : Float32Array.of(prox.mu), []);
      for (const [name, s] of this.layout) feeds[`${name}_0`] = this.tensor(prox.global.subarray(s.offset, s.offset + s.size), s.shape);
    }
    const fetches: Record<string, ort.Tensor | null> = { loss: null };
    for (const [name, s] of this.layout) fetches[`${name}_new`] = this.tensor(next.subarray(s.offset, s.offset + s.size), s.shape);
    const out = await (await this.session(usesProx ? 'sgdProx' : 'sgd')).run(feeds, fetches);
    return Number((out.loss.data as Arr)[0]);
  }

  /**
   * `counts.length` SGD steps in one call (buildSgdLoopGraph): step s trains on the samples
   * idx[s·B .. s·B + counts[s]) of x / yOneHot (n samples), B = idx.length / counts.length.
   * Writes the parameters after the last step into `next` (which must not alias `params`);
   * returns each step's loss. The same bits as sgdStep step by step (test/unit/learn.test.ts).
   */
  async sgdSteps(params: Arr, x: Arr, yOneHot: Arr, n: number, idx: BigInt64Array, counts: BigInt64Array, lr: number, next: Arr, prox?: { mu: number; global: Arr }): Promise<Arr> {
    const usesProx = !!prox && prox.mu > 0;
    const steps = counts.length;
    if (steps === 0 || idx.length % steps !== 0) throw new RangeError(`bad step plan: ${idx.length} indices for ${steps} steps`);
    const feeds = this.paramFeeds(params);
    feeds.x = this.tensor(x, [n, inputSize(this.spec)]);
    feeds.y = this.tensor(yOneHot, [n, classCount(this.spec)]);
    feeds.idx = new ort.Tensor('int64', idx, [steps, idx.length / steps]);
    feeds.counts = new ort.Tensor('int64', counts, [steps]);
    feeds.steps = new ort.Tensor('int64', BigInt64Array.of(BigInt(steps)), []);
    feeds.lr = this.tensor(this.elem === 'double' ? Float64Array.of(lr) : Float32Array.of(lr), []);
    if (usesProx) {
      feeds.mu = this.tensor(this.elem === 'double' ? Float64Array.of(prox.mu) : Float32Array.of(prox.mu), []);
      for (const [name, s] of this.layout) feeds[`${name}_0`] = this.tensor(prox.global.subarray(s.offset, s.offset + s.size), s.shape);
    }
    const fetches: Record<string, ort.Tensor | null> = { losses: null };
    for (const [name, s] of this.layout) fetches[`${name}_new`] = this.tensor(next.subarray(s.offset, s.offset + s.size), s.shape);
    const out = await (await this.session(usesProx ? 'sgdProxLoop' : 'sgdLoop')).run(feeds, fetches);
    return out.losses.data as Arr;
  }

  /** Logits [batch, classes] for `batch` inputs. */
  async logits(params: Arr, x: Arr, batch: number): Promise<Arr> {
    const feeds = this.paramFeeds(params);
    feeds.x = this.tensor(x, [batch, inputSize(this.spec)]);
    const out = await this.infer.run(feeds);
    return out.logits.data as Arr;
  }

  async close(): Promise<void> {
    const extra = await Promise.all([this.train, this.sgd, this.sgdProx, this.sgdLoop, this.sgdProxLoop].filter((s) => s !== undefined));
    await Promise.all([this.infer, ...extra].map((s) => s.release()));
  }
}
