/**
 * Per-peer budgets and the penalty ledger (issue 13, items 5 and 7): token buckets and decaying
 * penalty points, each keyed by a subject (an admitted member's id, or an outsider's address)
 * and each bounded in size, so that a flood of fresh keys or addresses cannot grow them without
 * limit. Written here rather than taken from @libp2p/utils' RateLimiter: that one reads the wall
 * clock and keeps a timer per key, and the simulator runs these on its virtual clock.
 */
import { Bounded } from '../util/bounded.ts';

export { Bounded };

/**
 * Token buckets: `rate` tokens per second up to `burst`. A take may overdraw (a response larger
 * than the burst is still served once, then the subject waits): refused only while in debt.
 */
export class Buckets {
  private readonly b: Bounded<{ tokens: number; at: number }>;

  constructor(maxSubjects: number) {
    this.b = new Bounded(maxSubjects);
  }

  /** Take `cost` tokens of `key`'s bucket at time `now` (ms); false (nothing taken) if it is empty. */
  take(key: string, cost: number, rate: number, burst: number, now: number): boolean {
    const prev = this.b.get(key);
    const tokens = prev ? Math.min(burst, prev.tokens + ((now - prev.at) / 1000) * rate) : burst;
    if (tokens <= 0) {
      this.b.set(key, { tokens, at: now });
      return false;
    }
    this.b.set(key, { tokens: tokens - cost, at: now });
    return true;
  }

  /** Charge `cost` after the fact (bytes of a response already sent). */
  charge(key: string, cost: number, rate: number, burst: number, now: number): void {
    const prev = this.b.get(key);
    const tokens = prev ? Math.min(burst, prev.tokens + ((now - prev.at) / 1000) * rate) : burst;
    this.b.set(key, { tokens: tokens - cost, at: now });
  }

  get size(): number {
    return this.b.size;
  }
}

export interface LedgerOptions {
  /** Points at which a subject is banned. */
  threshold: number;
  banMs: number;
  /** Points of a subject not penalised for `graceMs` halve every `halfLifeMs`: an honest peer's
   * occasional slip fades, a steady flood keeps its points. */
  graceMs: number;
  halfLifeMs: number;
  /** Subjects remembered at most (penalties and bans each); the least recently penalised go first. */
  maxSubjects: number;
}

/** Penalty points per subject, decaying linearly, and the bans they lead to. */
export class PenaltyLedger {
  private readonly o: LedgerOptions;
  private readonly points: Bounded<{ points: number; at: number }>;
  private readonly bans: Bounded<number>;

  constructor(o: LedgerOptions) {
    this.o = o;
    this.points = new Bounded(o.maxSubjects);
    this.bans = new Bounded(o.maxSubjects);
  }

  /** Add points; `banned` if the subject crossed the threshold with them. */
  add(key: string, points: number, now: number): { total: number; banned: boolean } {
    const wasBanned = this.isBanned(key, now);
    const total = this.pointsOf(key, now) + points;
    this.points.set(key, { points: total, at: now });
    if (wasBanned || total < this.o.threshold) return { total, banned: false };
    this.bans.set(key, now + this.o.banMs);
    return { total, banned: true };
  }

  pointsOf(key: string, now: number): number {
    const p = this.points.peek(key);
    if (!p) return 0;
    const quiet = now - p.at - this.o.graceMs;
    if (quiet <= 0) return p.points;
    const left = p.points * 0.5 ** (quiet / this.o.halfLifeMs);
    return left < 1 ? 0 : left;
  }

  isBanned(key: string, now: number): boolean {
    const until = this.bans.peek(key);
    if (until === undefined) return false;
    if (until > now) return true;
    // a served ban starts from zero: the subject comes back on probation, not one slip from a ban
    this.bans.delete(key);
    this.points.delete(key);
    return false;
  }

  /** Subjects with points now, for /status. Prunes the decayed ones. */
  report(now: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k] of [...this.points.entries()]) {
      this.isBanned(k, now); // a ban that ran out clears its points
      const p = this.pointsOf(k, now);
      if (p <= 0) this.points.delete(k); // decayed away: forgotten
      else out[k] = Math.round(p * 10) / 10;
    }
    return out;
  }

  get size(): { penalties: number; bans: number } {
    return { penalties: this.points.size, bans: this.bans.size };
  }
}
