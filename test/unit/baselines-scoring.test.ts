/** FLAME, FoolsGold, and the experiment statistics of issue 11 (Spearman, exact Shapley). */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FlameAggregator, FoolsGoldAggregator, majorityCluster } from '../../src/core/aggregation/baselines.ts';
import type { UpdateInput } from '../../src/core/aggregation/types.ts';
import { Rng } from '../../src/core/random.ts';
import { shapleyValues, spearman } from '../../src/experiments/report.ts';
import { makeUpdates, resultDigest } from '../helpers/updates.ts';

const BASE = 100_000_000n;

describe('FLAME', () => {
  it('admits the majority cluster, clips to the median length; same bits in any order', () => {
    const { updates, previous } = makeUpdates({ seed: 4, honest: 7, attackers: 3, attack: 'sign-flip', dim: 200 });
    updates[0] = { ...updates[0], delta: updates[0].delta.map((x) => x * 5) }; // one long honest update
    const a = new FlameAggregator();
    const r = a.aggregate({ previous, updates, baseReward: BASE }, null).result;
    expect(resultDigest(a.aggregate({ previous, updates: [...updates].reverse(), baseReward: BASE }, null).result)).toBe(resultDigest(r));
    for (const e of r.entries) if (e.clientId.startsWith('attacker')) expect(e.high).toBe(false);
    expect(r.entries.filter((e) => e.high).length).toBeGreaterThanOrEqual(6);
    // the long update is clipped: its weight is below the others'
    const w = new Map(r.entries.map((e) => [e.clientId, e.weight]));
    const others = r.entries.filter((e) => e.high && e.clientId !== updates[0].clientId).map((e) => e.weight);
    if (w.get(updates[0].clientId)! > 0) expect(w.get(updates[0].clientId)!).toBeLessThan(Math.min(...others));
  });

  it('the majority cluster of two groups is the bigger one', () => {
    const pts = [0, 0.1, 0.2, 0.15, 0.05, 5, 5.1, 5.2];
    expect(majorityCluster(pts.length, (i, j) => Math.abs(pts[i] - pts[j]), 5)).toEqual([true, true, true, true, true, false, false, false]);
  });
});

describe('FoolsGold', () => {
  it('sybils with the same history get no weight; honest ones keep theirs', () => {
    const rng = new Rng(2);
    const dim = 300;
    const a = new FoolsGoldAggregator();
    let state = a.initialState();
    const sybil = Float32Array.from({ length: dim }, () => rng.normal());
    let last;
    for (let round = 0; round < 3; round++) {
      const ups: UpdateInput[] = [];
      for (let c = 0; c < 5; c++) {
        const delta = Float32Array.from({ length: dim }, () => rng.normal());
        ups.push({ clientId: `client-${c}`, digest: createHash('sha256').update(Buffer.from(delta.buffer)).digest(), delta, sampleCount: 100, staleness: 0 });
      }
      for (let s = 0; s < 2; s++) {
        const delta = sybil.map((x) => x + 0.01 * rng.normal());
        ups.push({ clientId: `sybil-${s}`, digest: createHash('sha256').update(Buffer.from(delta.buffer)).digest(), delta, sampleCount: 100, staleness: 0 });
      }
      const out = a.aggregate({ previous: new Float32Array(dim), updates: ups, baseReward: BASE }, state);
      state = out.state;
      last = out.result;
    }
    for (const e of last!.entries) expect(e.high, e.clientId).toBe(e.clientId.startsWith('client'));
    expect(state.size).toBe(7);
  });
});

describe('experiment statistics', () => {
  it('Spearman: monotone is 1, reversed −1, ties share ranks, constant is null', () => {
    expect(spearman([1, 2, 3, 4], [10, 20, 25, 100])).toBeCloseTo(1, 12);
    expect(spearman([1, 2, 3], [3, 2, 1])).toBeCloseTo(-1, 12);
    expect(spearman([1, 1, 2], [1, 2, 3])).toBeCloseTo(0.866, 3);
    expect(spearman([1, 1, 1], [1, 2, 3])).toBeNull();
  });

  it('exact Shapley values: additive game gives each its own value; efficiency holds', () => {
    const own = [0.3, 0.1, 0.6];
    const v = new Float64Array(8).map((_, mask) => own.reduce((s, x, i) => s + (mask & (1 << i) ? x : 0), 0));
    shapleyValues(3, v).forEach((phi, i) => expect(phi).toBeCloseTo(own[i], 12));
    // a majority game: any two of three win → 1/3 each
    const maj = new Float64Array(8).map((_, mask) => ((mask & 1) + ((mask >> 1) & 1) + ((mask >> 2) & 1) >= 2 ? 1 : 0));
    const phi = shapleyValues(3, maj);
    for (const p of phi) expect(p).toBeCloseTo(1 / 3, 12);
    expect(() => shapleyValues(3, new Float64Array(7))).toThrow(/2\^3/);
  });
});
