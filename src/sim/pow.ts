/**
 * The proof-of-work oracle of the simulator: no hashing, a block is "found" after an
 * exponentially distributed virtual time with the configured mean (what real mining at a fixed
 * difficulty gives: the time to the first success of many independent attempts). The
 * simulated network runs at difficulty 1, so every header is valid for the block rules.
 */
import { Rng } from '../core/random.ts';
import type { BlockHeader } from '../core/types.ts';
import type { MineResult, PowMiner } from '../mining/miner.ts';
import type { Clock } from '../util/clock.ts';

export class SimPow implements PowMiner {
  hashRate = 0;
  private readonly clock: Clock;
  private readonly rng: Rng;
  private readonly meanMs: number;

  constructor(clock: Clock, meanBlockMs: number, seed: number) {
    this.clock = clock;
    this.meanMs = meanBlockMs;
    this.rng = new Rng(seed);
  }

  async mine(header: BlockHeader, signal?: AbortSignal): Promise<MineResult | null> {
    const ms = -Math.log(1 - this.rng.float()) * this.meanMs;
    await this.clock.sleep(ms, signal);
    if (signal?.aborted) return null;
    return { header, hashes: 0, ms };
  }

  async close(): Promise<void> {}
}
