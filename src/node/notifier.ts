/** Wake a sleeping loop: `wait()` resolves at the next `notify()` (or after `ms`). */
export class Notifier {
  private waiters: (() => void)[] = [];

  notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  wait(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      if (ms !== undefined) setTimeout(resolve, ms).unref();
    });
  }
}
