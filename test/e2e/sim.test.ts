/**
 * The simulator runs the real Miner and Client code on a virtual clock, an in-process network
 * and a proof-of-work oracle: seeded, reproducible, fast.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadEmbeddedMnist } from '../../src/learn/data.ts';
import { type SimOptions, runSimulation } from '../../src/sim/harness.ts';

const data = loadEmbeddedMnist();
const base: SimOptions = { seed: 3, miners: 2, clients: 8, phi: 8, learning: { N: 50, E: 2, B: 10, lr: 0.05, rate: 10 }, aggregation: {}, meanBlockMs: 2000, aggregations: 4, maxVirtualMs: 3600_000, data };
const digest = (x: unknown) => createHash('sha256').update(JSON.stringify(x)).digest('hex');

describe('simulator', () => {
  it('the same seed gives the same run, another seed another; the model learns; the miners agree', { timeout: 120_000 }, async () => {
    const a = await runSimulation(base);
    const b = await runSimulation(base);
    const c = await runSimulation({ ...base, seed: 4 });
    expect(a.rounds).toHaveLength(4);
    expect(digest(a.rounds)).toBe(digest(b.rounds));
    expect(a.virtualSeconds).toBe(b.virtualSeconds);
    expect(digest(c.rounds)).not.toBe(digest(a.rounds));
    expect(a.minersConverged).toBe(true);
    expect(a.rounds[3].accuracy).toBeGreaterThan(a.rounds[0].accuracy);
    expect(a.rounds[3].accuracy).toBeGreaterThan(0.6);
    for (const r of a.rounds) expect(r.updates.length).toBeGreaterThanOrEqual(base.phi);
  });

  it('clients that walk out of coverage buffer and upload the average when back in range', { timeout: 120_000 }, async () => {
    const r = await runSimulation({ ...base, seed: 5, clients: 10, phi: 10, aggregations: 6, mobility: { areaM: 1000, radiusM: 300, speedMps: [5, 15], pauseMs: [0, 5000], seed: 5 } });
    const averaged = r.clients.filter((c) => c.lastAveragedUpload !== null);
    expect(averaged.length).toBeGreaterThan(0);
    for (const c of averaged) expect(c.lastAveragedUpload!.samples).toBe(c.lastAveragedUpload!.averaged * 50);
    expect(r.rounds).toHaveLength(6);
  });
});
