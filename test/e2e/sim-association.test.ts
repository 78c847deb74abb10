/**
 * Issue 17 in the simulator: clients choose their miner through an association scheduler, a
 * coordinator assigning (miner, channel) jointly in the radio twin over the mobility model.
 */
import { describe, expect, it } from 'vitest';
import { isBflError } from '../../src/core/errors.ts';
import { loadEmbeddedMnist } from '../../src/learn/data.ts';
import { type SimOptions, runSimulation } from '../../src/sim/harness.ts';

const data = loadEmbeddedMnist();
// coverage of 1100 m in a 1000 m square (miners on a 2 × 2 grid): every client reaches every
// miner, so the scheduler, not coverage, decides where an update goes
const base: SimOptions = { seed: 7, miners: 4, clients: 8, phi: 8, learning: { N: 50, E: 1, B: 10, lr: 0.05, rate: 10 }, aggregation: {}, meanBlockMs: 2000, aggregations: 2, maxVirtualMs: 3600_000, data, mobility: { areaM: 1000, radiusM: 1100, speedMps: [1, 3], pauseMs: [0, 5000], seed: 7 } };

describe('simulator with an association scheduler', () => {
  it('swap matching: clients upload to the miner assigned them, at a lower twin cost than the nearest miner on the same rounds', { timeout: 120_000 }, async () => {
    const r = await runSimulation({ ...base, association: { policy: 'swap' } });
    expect(r.rounds).toHaveLength(2);
    expect(r.minersConverged).toBe(true);
    const a = r.association!;
    expect([a.policy, a.mode]).toEqual(['swap', 'coordinator']);
    // one assignment every 2 s of virtual time
    expect(a.twin!.rounds).toBeGreaterThanOrEqual(Math.floor(r.virtualSeconds / 2));
    expect(a.twin!.meanCost).toBeLessThan(a.twin!.nearestMeanCost);
    expect(a.uploads).toBeGreaterThanOrEqual(16);
    expect(a.uploadsToAssigned).toBe(a.uploads);
    expect(a.uploadsPerMiner.reduce((x, y) => x + y, 0)).toBe(a.uploads);
  });

  it('per client (the daemon\'s approximation): each client reads the miners\' announced loads and uploads where its policy chose', { timeout: 120_000 }, async () => {
    const r = await runSimulation({ ...base, association: { policy: 'swap', mode: 'per-client' } });
    expect(r.rounds).toHaveLength(2);
    const a = r.association!;
    expect([a.policy, a.mode, a.twin]).toEqual(['swap', 'per-client', undefined]);
    expect(a.uploads).toBeGreaterThanOrEqual(16);
    expect(a.uploadsToAssigned).toBe(a.uploads);
    // every client heard every miner's load; the miners that took uploads announced clients
    for (const c of r.clients) {
      expect(c.association!.selector).toBe('association-swap');
      expect(Object.values(c.association!.loads).every((l) => l !== null)).toBe(true);
    }
    const announced = r.clients.flatMap((c) => Object.values(c.association!.loads).map((l) => l!.clients));
    expect(Math.max(...announced)).toBeGreaterThan(0);
  });

  it('needs the mobility model: without it a BAD_CONFIG error', async () => {
    const err = await runSimulation({ ...base, mobility: undefined, association: { policy: 'greedy' } }).catch((e) => e);
    expect(isBflError(err) && err.code).toBe('BAD_CONFIG');
    expect((err as Error).message).toMatch(/mobility/);
  });
});
