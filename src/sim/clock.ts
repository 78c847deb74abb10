/**
 * A virtual clock for the simulator: the same Miner and Client code, with time that moves
 * only when every activity waits for it. An activity is anything started through `run` or
 * `spawn`, or resumed by a timer; `sleep` and `suspend` mark it as waiting. Real work inside an
 * activity (training, storage) keeps the count up, so virtual time stands still while it runs,
 * and a 100-client experiment takes the CPU time of its real work, not its virtual duration.
 */
import type { Clock } from '../util/clock.ts';

interface Timer {
  at: number;
  seq: number;
  fire: () => void;
  done: boolean;
}

export class SimClock implements Clock {
  private t: number;
  private active = 0;
  private seq = 0;
  private readonly heap: Timer[] = [];
  private idleWaiter?: () => void;

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  get activities(): number {
    return this.active;
  }

  private up(): void {
    this.active++;
  }

  private down(): void {
    this.active--;
    if (this.active < 0) throw new Error('SimClock: more activities ended than started (an untracked wait)');
    if (this.active === 0 && this.idleWaiter) {
      const w = this.idleWaiter;
      this.idleWaiter = undefined;
      w();
    }
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const timer: Timer = {
        at: this.t + Math.max(0, Math.round(ms)), // whole milliseconds, like Date.now()
        seq: this.seq++,
        done: false,
        fire: () => {
          if (timer.done) return;
          timer.done = true;
          this.up();
          resolve();
        },
      };
      this.push(timer);
      // an abort comes from a running activity: resume at once, at the current virtual time
      signal?.addEventListener('abort', () => timer.fire(), { once: true });
      this.down();
    });
  }

  suspend<T>(p: Promise<T>): Promise<T> {
    this.down();
    return p.then(
      (v) => {
        this.up();
        return v;
      },
      (e) => {
        this.up();
        throw e;
      },
    );
  }

  run<T>(task: () => Promise<T>): Promise<T> {
    this.up();
    let p: Promise<T>;
    try {
      p = task();
    } catch (e) {
      this.down();
      return Promise.reject(e);
    }
    return p.finally(() => this.down());
  }

  spawn(task: () => Promise<unknown>, onError?: (e: unknown) => void): void {
    this.run(task).catch((e) => onError?.(e));
  }

  /** Resolves once no activity runs (after pending microtasks and I/O callbacks settle). */
  private whenIdle(): Promise<void> {
    return new Promise((resolve) => {
      const check = () =>
        setImmediate(() => {
          if (this.active === 0) resolve();
          else this.idleWaiter = check;
        });
      check();
    });
  }

  /**
   * Drive the simulation: fire timers in (time, creation) order until `stop()` holds after an
   * event, virtual time passes `until`, or nothing is scheduled.
   */
  async advance(until: number, stop: () => boolean = () => false): Promise<void> {
    for (;;) {
      await this.whenIdle();
      if (stop()) return;
      const next = this.pop();
      if (!next) return;
      if (next.at > until) {
        this.push(next);
        this.t = until;
        return;
      }
      if (next.done) continue;
      this.t = Math.max(this.t, next.at);
      next.fire();
    }
  }

  // binary heap by (at, seq)
  private less(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(x: Timer): void {
    const h = this.heap;
    h.push(x);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  private pop(): Timer | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l], h[m])) m = l;
        if (r < h.length && this.less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}
