/**
 * A client's data arriving over time, so that "more than N new samples" is a real trigger
 * (the paper's Algorithm 2). Samples of the client's partition arrive at `rate` per second in
 * a seeded order; when the partition is used up it arrives again in a new order (a device keeps
 * collecting data of the same kind). Time is a parameter: the daemon passes the clock, the
 * simulator its virtual clock.
 */
import { Rng } from '../core/random.ts';

export interface StreamOptions {
  rate: number; // samples per second
  seed: number;
  /** Samples present at start (a device does not start empty). */
  initial?: number;
}

export class DataStream {
  private readonly indices: number[];
  private readonly opts: StreamOptions;
  private readonly startMs: number;
  private readonly order: number[] = [];
  private readonly rng: Rng;
  /** Count of samples arrived at the last training (the client's "consumed" mark). */
  private mark = 0;

  constructor(indices: number[], startMs: number, opts: StreamOptions) {
    if (indices.length === 0) throw new RangeError('a data stream needs at least one sample');
    if (!(opts.rate > 0)) throw new RangeError('rate must be > 0');
    this.indices = indices;
    this.opts = opts;
    this.startMs = startMs;
    this.rng = new Rng(opts.seed);
  }

  /** Samples arrived by `nowMs` (counting repeats after the partition wraps around). */
  arrived(nowMs: number): number {
    return Math.max(0, Math.floor(((nowMs - this.startMs) / 1000) * this.opts.rate)) + (this.opts.initial ?? 0);
  }

  /** New samples since the last `take`. */
  fresh(nowMs: number): number {
    return this.arrived(nowMs) - this.mark;
  }

  /** Time at which `fresh` first exceeds `n` (for schedulers). */
  whenFreshExceeds(n: number): number {
    const target = this.mark + n + 1 - (this.opts.initial ?? 0);
    return this.startMs + Math.ceil((target / this.opts.rate) * 1000);
  }

  /** The `n` newest samples arrived by `nowMs` (dataset indices), and mark everything as used. */
  takeNewest(n: number, nowMs: number): number[] {
    const arrived = this.arrived(nowMs);
    this.mark = arrived;
    const from = Math.max(0, arrived - n);
    const out: number[] = [];
    for (let k = from; k < arrived; k++) out.push(this.at(k));
    return out;
  }

  /** The k-th arrived sample: the partition in a fresh seeded order on every pass. */
  private at(k: number): number {
    while (this.order.length <= k) this.order.push(...this.rng.shuffle([...this.indices]));
    return this.order[k];
  }
}
