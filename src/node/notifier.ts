import { type Clock, systemClock } from '../util/clock.ts';

/** Wake a sleeping loop: `wait()` resolves at the next `notify()` (or after `ms`). */
export class Notifier {
  private waiters: (() => void)[] = [];
  private readonly clock: Clock;

  constructor(clock: Clock = systemClock) {
    this.clock = clock;
  }

  notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async wait(ms?: number): Promise<void> {
    const ac = new AbortController();
    const notified = new Promise<void>((resolve) => this.waiters.push(resolve));
    if (ms === undefined) return this.clock.suspend(notified);
    // a notification ends the sleep early
    void notified.then(() => ac.abort());
    await this.clock.sleep(ms, ac.signal);
  }
}
