/**
 * onnxruntime sessions over the RL graphs (graphs.ts) and Adam. Parameters are one flat
 * vector per network (the layout of graphs.ts), so averaging policies (FedAvg, eq. 39) and
 * soft target updates are plain vector arithmetic.
 */
import { ort } from '../../learn/ort.ts';
import type { ElemType } from '../../learn/onnx.ts';
import { type MlpShape, mlpForwardGraph, mlpInputGradGraph, mlpLayout, mlpMseGraph, mlpSize, ppoActorGraph, sacActorGraph } from './graphs.ts';

type Arr = Float32Array | Float64Array;

const so: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' };

/** One network shape with the sessions its learners need (compiled on first use). */
export class NetRuntime {
  readonly shape: MlpShape;
  readonly elem: ElemType;
  readonly size: number;
  readonly actions: number;
  private readonly layout;
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();

  constructor(shape: MlpShape, elem: ElemType = 'float', actions = 0) {
    this.shape = shape;
    this.elem = elem;
    this.size = mlpSize(shape);
    this.layout = mlpLayout(shape);
    this.actions = actions;
  }

  private session(kind: 'forward' | 'mse' | 'inputGrad' | 'sac' | 'ppo'): Promise<ort.InferenceSession> {
    let s = this.sessions.get(kind);
    if (!s) {
      const g =
        kind === 'forward' ? mlpForwardGraph(this.shape, this.elem)
        : kind === 'mse' ? mlpMseGraph(this.shape, this.elem)
        : kind === 'inputGrad' ? mlpInputGradGraph(this.shape, this.elem)
        : kind === 'sac' ? sacActorGraph(this.shape, this.actions, this.elem)
        : ppoActorGraph(this.shape, this.actions, this.elem);
      s = ort.InferenceSession.create(g, so);
      this.sessions.set(kind, s);
    }
    return s;
  }

  private t(data: Arr, dims: number[]): ort.Tensor {
    return new ort.Tensor(this.elem === 'double' ? 'float64' : 'float32', data, dims);
  }

  private scalar(v: number): ort.Tensor {
    return this.t(this.elem === 'double' ? Float64Array.of(v) : Float32Array.of(v), []);
  }

  vec(n: number): Arr {
    return this.elem === 'double' ? new Float64Array(n) : new Float32Array(n);
  }

  private feeds(p: Arr): Record<string, ort.Tensor> {
    if (p.length !== this.size) throw new RangeError(`expected ${this.size} parameters, got ${p.length}`);
    const f: Record<string, ort.Tensor> = {};
    for (const s of this.layout) f[s.name] = this.t(p.subarray(s.offset, s.offset + s.size), s.shape);
    return f;
  }

  private gradFetches(grad: Arr): Record<string, ort.Tensor | null> {
    const f: Record<string, ort.Tensor | null> = {};
    for (const s of this.layout) f[`g${s.name}`] = this.t(grad.subarray(s.offset, s.offset + s.size), s.shape);
    return f;
  }

  async forward(p: Arr, x: Arr, batch: number): Promise<Arr> {
    const f = this.feeds(p);
    f.x = this.t(x, [batch, this.shape.layers[0]]);
    return (await (await this.session('forward')).run(f)).y.data as Arr;
  }

  /** ½·mean squared error and its gradient (written into `grad`). */
  async mse(p: Arr, x: Arr, target: Arr, batch: number, grad: Arr): Promise<number> {
    const f = this.feeds(p);
    f.x = this.t(x, [batch, this.shape.layers[0]]);
    f.target = this.t(target, [batch, this.shape.layers[this.shape.layers.length - 1]]);
    const out = await (await this.session('mse')).run(f, { loss: null, ...this.gradFetches(grad) });
    return Number((out.loss.data as Arr)[0]);
  }

  /** y [B] and dy/dx [B, in]. */
  async inputGrad(p: Arr, x: Arr, batch: number): Promise<{ y: Arr; dx: Arr }> {
    const f = this.feeds(p);
    f.x = this.t(x, [batch, this.shape.layers[0]]);
    const out = await (await this.session('inputGrad')).run(f);
    return { y: out.y.data as Arr, dx: out.dx.data as Arr };
  }

  /** SAC actor pass (graphs.ts sacActorGraph); `grad` receives d loss / d params. */
  async sac(p: Arr, s: Arr, xi: Arr, gA: Arr, coef: number, batch: number, grad: Arr): Promise<{ action: Arr; logp: Arr; loss: number }> {
    const f = this.feeds(p);
    f.s = this.t(s, [batch, this.shape.layers[0]]);
    f.xi = this.t(xi, [batch, this.actions]);
    f.gA = this.t(gA, [batch, this.actions]);
    f.coef = this.scalar(coef);
    const out = await (await this.session('sac')).run(f, { action: null, logp: null, loss: null, ...this.gradFetches(grad) });
    return { action: out.action.data as Arr, logp: out.logp.data as Arr, loss: Number((out.loss.data as Arr)[0]) };
  }

  /** PPO clipped-surrogate pass (graphs.ts ppoActorGraph). */
  async ppo(p: Arr, s: Arr, u: Arr, logpOld: Arr, adv: Arr, clip: number, entCoef: number, batch: number, grad: Arr): Promise<{ logp: Arr; loss: number }> {
    const f = this.feeds(p);
    f.s = this.t(s, [batch, this.shape.layers[0]]);
    f.u = this.t(u, [batch, this.actions]);
    f.logpOld = this.t(logpOld, [batch]);
    f.adv = this.t(adv, [batch]);
    f.clip = this.scalar(clip);
    f.entCoef = this.scalar(entCoef);
    const out = await (await this.session('ppo')).run(f, { logp: null, loss: null, ...this.gradFetches(grad) });
    return { logp: out.logp.data as Arr, loss: Number((out.loss.data as Arr)[0]) };
  }

  async close(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).release();
    this.sessions.clear();
  }
}

/** Adam (Kingma & Ba) on a flat vector; β1 0.9, β2 0.999, ε 1e-8 as in the paper's PyTorch. */
export class Adam {
  private readonly m: Float64Array;
  private readonly v: Float64Array;
  private t = 0;
  readonly lr: number;

  constructor(size: number, lr: number) {
    this.m = new Float64Array(size);
    this.v = new Float64Array(size);
    this.lr = lr;
  }

  step(p: Arr, g: Arr): void {
    this.t++;
    const b1 = 0.9;
    const b2 = 0.999;
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    for (let i = 0; i < p.length; i++) {
      this.m[i] = b1 * this.m[i] + (1 - b1) * g[i];
      this.v[i] = b2 * this.v[i] + (1 - b2) * g[i] * g[i];
      p[i] -= (this.lr * (this.m[i] / c1)) / (Math.sqrt(this.v[i] / c2) + 1e-8);
    }
  }
}
