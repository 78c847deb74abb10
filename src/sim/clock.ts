/**
 * A virtual clock for the simulator: the same Miner and Client code, with time that moves
 * only when every activity waits for it. An activity is anything started through `run` or
 * `spawn`, or resumed by a timer; `sleep` and `suspend` mark it as waiting. Real work inside an
 * activity (training, storage) keeps the count up, so virtual time stands still while it runs,
 * and a 100-client experiment takes the CPU time of its real work, not its virtual duration.
 *
 * Same-instant timers fire in the order of a deterministic identity, not of creation: every
 * activity is named by its parent's name and its rank among the parent's children (roots by
 * their rank), and a timer by (virtual time, its activity's name, the activity's count of
 * sleeps). Creation order would follow real completion order whenever two activities run at
 * once (storage, onnxruntime), and the same seed would not give the same run (issue 11).
 * The current activity is found through AsyncLocalStorage, which follows awaits.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Clock } from '../util/clock.ts';

interface Activity {
  id: number[];
  children: number;
  sleeps: number;
  suspended: number; // suspends in progress
}

interface Timer {
  at: number;
  id: number[]; // the sleeping activity's name, then its sleep count
  fire: () => void;
  done: boolean;
}

function compareIds(a: number[], b: number[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

export class SimClock implements Clock {
  private t: number;
  private active = 0;
  private roots = 0;
  private readonly current = new AsyncLocalStorage<Activity>();
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
      const act = this.current.getStore();
      const timer: Timer = {
        at: this.t + Math.max(0, Math.round(ms)), // whole milliseconds, like Date.now()
        id: act ? [...act.id, act.sleeps++] : [-1, this.roots++],
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
    // Nested suspends of one activity wait once: a stop that joins parts whose own stops suspend
    // too (Miner.stop joining BlockSync.stop) counted the activity down twice, and the count went
    // below zero when the last part finished. The activity runs again when its last wait ends.
    const act = this.current.getStore();
    if (!act || act.suspended++ === 0) this.down();
    const resume = () => {
      if (!act || --act.suspended === 0) this.up();
    };
    return p.then(
      (v) => {
        resume();
        return v;
      },
      (e) => {
        resume();
        throw e;
      },
    );
  }

  run<T>(task: () => Promise<T>): Promise<T> {
    this.up();
    const parent = this.current.getStore();
    const act: Activity = { id: parent ? [...parent.id, parent.children++] : [this.roots++], children: 0, sleeps: 0, suspended: 0 };
    let p: Promise<T>;
    try {
      p = this.current.run(act, task);
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
   * Drive the simulation: fire timers in (time, activity identity) order until `stop()` holds after an
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

  // binary heap by (at, identity)
  private less(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && compareIds(a.id, b.id) < 0);
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
