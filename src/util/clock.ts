/**
 * Time and background work, behind one interface so that the same Miner and Client run on
 * the system clock (the daemon) or on a virtual clock (the simulator, src/sim/): `sleep` is the
 * only way they wait for time, `suspend` wraps any wait for another activity, and `spawn`
 * starts detached work. The simulator counts running activities through these three and
 * advances virtual time only when every activity is waiting.
 */
export interface Clock {
  now(): number;
  /** Resolves after `ms` (early, without error, if `signal` aborts). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Await a promise that another activity settles (a lock, a notification). */
  suspend<T>(p: Promise<T>): Promise<T>;
  /** Run a long-lived activity (a node's loop) and return its promise. */
  run<T>(task: () => Promise<T>): Promise<T>;
  /** Run detached work; errors go to `onError`. */
  spawn(task: () => Promise<unknown>, onError?: (e: unknown) => void): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const t = setTimeout(done, ms);
      t.unref?.();
      function done() {
        signal?.removeEventListener('abort', done);
        clearTimeout(t);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    }),
  suspend: (p) => p,
  run: (task) => task(),
  spawn: (task, onError) => {
    task().catch((e) => onError?.(e));
  },
};
