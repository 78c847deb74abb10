import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AGGREGATORS, createAggregator } from '../../src/core/aggregation/index.ts';
import { BflMecAggregator } from '../../src/core/aggregation/bflmec.ts';
import type { AggregationInput, AggregationResult, UpdateInput } from '../../src/core/aggregation/types.ts';
import { CHUNK, dot, dotsWith, pairwise, toFloat64 } from '../../src/core/aggregation/vectors.ts';
import { Rng } from '../../src/core/random.ts';
import { makeUpdates, resultDigest } from '../helpers/updates.ts';
import type { Json } from '../../src/config/schema.ts';

const BASE = 100_000_000n;

function run(name: (typeof AGGREGATORS)[number], input: AggregationInput): AggregationResult {
  const a = createAggregator(name);
  return a.aggregate(input, a.initialState()).result;
}

describe('BFL-MEC contribution identification', () => {
  it('sign-flipped minority is low, honest majority high; weights are the normalised similarities', () => {
    const { updates, previous } = makeUpdates({ seed: 1, honest: 7, attackers: 3, attack: 'sign-flip', dim: 300 });
    const r = run('bfl-mec-dbscan', { previous, updates, baseReward: BASE });
    const byClient = new Map(r.entries.map((e) => [e.clientId, e]));
    for (const u of updates) expect(byClient.get(u.clientId)!.high, u.clientId).toBe(!u.clientId.startsWith('attacker'));
    // θ_i = max(0, cos(Δ_i, ḡ)), p_i = θ_i / Σ θ over H
    const sim = r.diagnostics.similarity!;
    const theta = r.entries.map((e, i) => (e.high ? Math.max(0, sim[i]) : 0));
    const total = theta.reduce((a, b) => a + b, 0);
    r.entries.forEach((e, i) => expect(e.weight).toBeCloseTo(theta[i] / total, 12));
    expect(r.entries.reduce((s, e) => s + e.weight, 0)).toBeCloseTo(1, 12);
    // rewards: only high clients, ⌊base p_i⌋, total at most base
    expect(r.rewards.every((x) => !x.id.startsWith('attacker'))).toBe(true);
    const paid = r.rewards.reduce((s, x) => s + x.amount, 0n);
    expect(paid).toBeLessThanOrEqual(BASE);
    expect(paid).toBeGreaterThan(BASE - 10n);
  });

  it('the new model is previous + Σ p_i Δ_i (discard) and includes the low ones with keep', () => {
    const { updates, previous } = makeUpdates({ seed: 2, honest: 5, attackers: 2, attack: 'sign-flip', dim: 64 });
    for (const strategy of ['discard', 'keep'] as const) {
      const agg = new BflMecAggregator({ strategy });
      const r = agg.aggregate({ previous, updates, baseReward: BASE }, null).result;
      const sorted = [...updates].sort((a, b) => Buffer.compare(a.digest, b.digest));
      const low = r.entries.filter((e) => !e.high);
      expect(low.length).toBe(2);
      if (strategy === 'discard') expect(low.every((e) => e.weight === 0)).toBe(true);
      else expect(low.every((e) => e.weight >= 0)).toBe(true); // clamped: a flipped update has similarity < 0 → 0
      for (let k = 0; k < previous.length; k++) {
        let g = 0;
        sorted.forEach((u, i) => (g += r.entries[i].weight * u.delta[k]));
        expect(r.model[k]).toBe(Math.fround(previous[k] + g));
      }
    }
  });

  it('keep gives low-but-aligned updates weight, discard does not', () => {
    // honest cluster, plus two updates in a similar direction but far in Euclidean terms
    const { updates, previous } = makeUpdates({ seed: 3, honest: 6, attackers: 2, attack: 'scale', scale: 50, dim: 80 });
    const discard = new BflMecAggregator({ metric: 'euclidean', eps: 3, strategy: 'discard' }).aggregate({ previous, updates, baseReward: BASE }, null).result;
    const keep = new BflMecAggregator({ metric: 'euclidean', eps: 3, strategy: 'keep' }).aggregate({ previous, updates, baseReward: BASE }, null).result;
    const lowD = discard.entries.filter((e) => !e.high);
    expect(lowD.map((e) => e.clientId).sort()).toEqual(['attacker-1', 'attacker-2']);
    expect(lowD.every((e) => e.weight === 0)).toBe(true);
    expect(keep.entries.filter((e) => !e.high).every((e) => e.weight > 0)).toBe(true);
    expect(keep.rewards).toEqual(discard.rewards); // rewards go to H only, in both strategies
  });

  it('when the mean is noise, falls back to its neighbourhood, then to everyone', () => {
    // orthogonal updates: nothing clusters; the mean is not within eps of any of them
    const dim = 6;
    const updates: UpdateInput[] = Array.from({ length: 6 }, (_, i) => {
      const d = new Float32Array(dim);
      d[i] = 1;
      return { clientId: `c${i}`, digest: createHash('sha256').update(`u${i}`).digest(), delta: d, sampleCount: 10, staleness: 0 };
    });
    const r = new BflMecAggregator({ eps: 0.2 }).aggregate({ previous: new Float32Array(dim), updates, baseReward: BASE }, null).result;
    expect(r.diagnostics.note).toMatch(/all admitted updates kept/);
    expect(r.entries.every((e) => e.high && Math.abs(e.weight - 1 / 6) < 1e-15)).toBe(true);
  });

  it('staleness weighting s(τ) = (1+τ)^-a lowers stale updates only when enabled', () => {
    const { updates, previous } = makeUpdates({ seed: 4, honest: 6, attackers: 0, dim: 50 });
    updates[0].staleness = 3;
    const off = run('bfl-mec-dbscan', { previous, updates, baseReward: BASE });
    const on = new BflMecAggregator({ stalenessExponent: 0.5 }).aggregate({ previous, updates, baseReward: BASE }, null).result;
    const w = (r: AggregationResult) => r.entries.find((e) => e.clientId === updates[0].clientId)!.weight;
    const sim = off.diagnostics.similarity![off.entries.findIndex((e) => e.clientId === updates[0].clientId)];
    expect(w(on)).toBeLessThan(w(off));
    // the stale update's score is θ · 4^-0.5 = θ / 2
    const thetaOthers = off.entries.reduce((s, e, i) => (e.clientId === updates[0].clientId ? s : s + Math.max(0, off.diagnostics.similarity![i])), 0);
    expect(w(on)).toBeCloseTo(sim / 2 / (sim / 2 + thetaOthers), 12);
  });

  it('two clients with byte-identical updates (a copycat) aggregate, in either order (regression: liveness)', () => {
    const { updates, previous } = makeUpdates({ seed: 5, honest: 4, attackers: 0, dim: 10 });
    const copy = { ...updates[0], clientId: 'copycat' };
    for (const name of AGGREGATORS) {
      const a = run(name, { previous, updates: [...updates, copy], baseReward: BASE });
      const b = run(name, { previous, updates: [copy, ...updates].reverse(), baseReward: BASE });
      expect(resultDigest(b), name).toBe(resultDigest(a));
      expect(a.entries).toHaveLength(5);
    }
  });

  it('refuses bad input: empty set, mixed dimensions, a repeated (client, digest), bad options', () => {
    const { updates, previous } = makeUpdates({ seed: 5, honest: 3, attackers: 0, dim: 10 });
    expect(() => run('bfl-mec-dbscan', { previous, updates: [], baseReward: BASE })).toThrow(/nothing to aggregate/);
    expect(() => run('bfl-mec-dbscan', { previous, updates: [...updates, { ...updates[0] }], baseReward: BASE })).toThrow(/appears twice/);
    expect(() => run('bfl-mec-dbscan', { previous, updates: [updates[0], { ...updates[1], delta: new Float32Array(9) }], baseReward: BASE })).toThrow(/parameters/);
    expect(() => new BflMecAggregator({ eps: -1 })).toThrow(RangeError);
    expect(() => new BflMecAggregator({ minPts: 0 })).toThrow(RangeError);
  });
});

describe('determinism (a consensus rule)', () => {
  for (const name of AGGREGATORS) {
    it(`${name}: any input order gives bit-identical labels, weights, rewards and model`, () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 0, max: 4 }), (seed, attackers) => {
          const { updates, previous } = makeUpdates({ seed, honest: 6, attackers, attack: 'sign-flip', dim: 40 });
          const a = run(name, { previous, updates, baseReward: BASE });
          const shuffled = new Rng(seed).shuffle([...updates]);
          const b = run(name, { previous, updates: shuffled, baseReward: BASE });
          expect(resultDigest(b)).toBe(resultDigest(a));
          expect(Buffer.from(b.model.buffer)).toEqual(Buffer.from(a.model.buffer));
        }),
        { numRuns: 25 },
      );
    });
  }

  it('a single changed bit in one update changes the result digest; a changed sign bit changes the model', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.nat(), fc.nat(), (seed, which, coord) => {
        const { updates, previous } = makeUpdates({ seed, honest: 6, attackers: 0, dim: 32 });
        const before = run('bfl-mec-dbscan', { previous, updates, baseReward: BASE });
        const i = which % updates.length;
        const k = coord % 32;
        const flipped = Float32Array.from(updates[i].delta);
        new Uint8Array(flipped.buffer)[k * 4 + 3] ^= 0x80; // sign bit of coordinate k
        const changed = updates.map((u, j) => (j === i ? { ...u, delta: flipped, digest: createHash('sha256').update(Buffer.from(flipped.buffer)).digest() } : u));
        const after = run('bfl-mec-dbscan', { previous, updates: changed, baseReward: BASE });
        expect(resultDigest(after)).not.toBe(resultDigest(before));
        if (after.entries.find((e) => e.clientId === updates[i].clientId)!.weight > 0 && updates[i].delta[k] !== 0) {
          expect(Buffer.from(after.model.buffer)).not.toEqual(Buffer.from(before.model.buffer));
        }
      }),
      { numRuns: 40 },
    );
  });

  it('chunked dot products equal the pairwise matrix bit for bit', () => {
    const rng = new Rng(9);
    const vs = Array.from({ length: 5 }, () => Float64Array.from({ length: 5000 }, () => rng.normal()));
    const g = pairwise(vs, 'dot');
    for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) expect(g[i * 5 + j]).toBe(dot(vs[i], vs[j]));
    expect(Object.is(dot(toFloat64(new Float32Array([1, 2, 3])), toFloat64(new Float32Array([4, 5, 6]))), 32)).toBe(true);
  });

  it('dotsWith gives the bits of dot, for float32 vectors (read in place) and float64 ones', () => {
    // across chunk boundaries, a count of vectors that is not a multiple of the 4 per pass, and
    // sums whose rounding depends on the order (1e16 + x − 1e16 inside one chunk)
    const rng = new Rng(12);
    for (const dim of [0, 7, CHUNK, 3 * CHUNK + 5]) {
      for (const n of [1, 4, 7]) {
        const v32 = Array.from({ length: n }, () => Float32Array.from({ length: dim }, (_, k) => rng.normal() * (k % 61 === 0 ? 1e8 : 1)));
        const v64 = v32.map((v) => toFloat64(v));
        const x = Float64Array.from({ length: dim }, (_, k) => rng.normal() + (k % 97 === 0 ? 1e16 * (k % 2 ? 1 : -1) : 0));
        const want = v64.map((v) => dot(v, x));
        expect(Buffer.from(dotsWith(v32, x).buffer)).toEqual(Buffer.from(Float64Array.from(want).buffer));
        expect(Buffer.from(dotsWith(v64, x).buffer)).toEqual(Buffer.from(Float64Array.from(want).buffer));
      }
    }
    expect(dotsWith([], new Float64Array(3)).length).toBe(0);
  });
});

describe('baselines', () => {
  it('FedAvg weights by sample count', () => {
    const { updates, previous } = makeUpdates({ seed: 6, honest: 3, attackers: 0, dim: 8 });
    updates.forEach((u, i) => (u.sampleCount = [100, 300, 600][i]));
    const r = run('fedavg', { previous, updates, baseReward: BASE });
    const w = new Map(r.entries.map((e) => [e.clientId, e.weight]));
    updates.forEach((u) => expect(w.get(u.clientId)).toBeCloseTo(u.sampleCount / 1000, 15));
    expect(r.entries.every((e) => e.high)).toBe(true);
  });

  it('FedProx drop removes the stalest fraction', () => {
    const { updates, previous } = makeUpdates({ seed: 7, honest: 10, attackers: 0, dim: 8 });
    updates[3].staleness = 5;
    const r = createAggregator('fedprox', { fedproxDrop: 0.1 });
    const res = r.aggregate({ previous, updates, baseReward: BASE }, null).result;
    expect(res.entries.filter((e) => !e.high).map((e) => e.clientId)).toEqual([updates[3].clientId]);
  });

  it('Multi-Krum leaves out the far-away updates', () => {
    const { updates, previous } = makeUpdates({ seed: 8, honest: 8, attackers: 2, attack: 'scale', scale: 30, dim: 50 });
    const r = run('multi-krum', { previous, updates, baseReward: BASE });
    for (const e of r.entries.filter((x) => x.clientId.startsWith('attacker'))) expect(e.high).toBe(false);
  });

  it('median and trimmed mean are robust to a large outlier on one coordinate', () => {
    const dim = 3;
    const mk = (id: string, v: number[]): UpdateInput => ({ clientId: id, digest: createHash('sha256').update(id).digest(), delta: Float32Array.from(v), sampleCount: 1, staleness: 0 });
    const updates = [mk('a', [1, 1, 1]), mk('b', [2, 2, 2]), mk('c', [3, 3, 3]), mk('d', [4, 4, 4]), mk('e', [1000, 5, 5])];
    const prev = new Float32Array(dim);
    expect(Array.from(run('median', { previous: prev, updates, baseReward: BASE }).model)).toEqual([3, 3, 3]);
    const tm = createAggregator('trimmed-mean', { trim: 0.2 }).aggregate({ previous: prev, updates, baseReward: BASE }, null).result;
    expect(Array.from(tm.model)).toEqual([3, 3, 3]);
    expect(Array.from(run('fedavg', { previous: prev, updates, baseReward: BASE }).model)[0]).toBeCloseTo(202, 4);
  });
});

describe("eps 'auto' (a radius relative to the updates)", () => {
  function noisy(seed: number, honest: number, flipped: number, dim = 400, signal = 0.35) {
    const rng = new Rng(seed);
    const dir = Float64Array.from({ length: dim }, () => rng.normal());
    const mk = (id: string, sign: number): UpdateInput => {
      const delta = Float32Array.from(dir, (x) => sign * (signal * x + rng.normal()));
      return { clientId: id, digest: createHash('sha256').update(id + seed).digest(), delta, sampleCount: 100, staleness: 0 };
    };
    return [...Array.from({ length: honest }, (_, i) => mk(`h${i}`, 1)), ...Array.from({ length: flipped }, (_, i) => mk(`a${i}`, -1))];
  }
  const prev = new Float32Array(400);
  const low = (r: AggregationResult) => r.entries.filter((e) => !e.high).map((e) => e.clientId).sort();

  it('keeps noise-dominated honest updates that a fixed cosine radius of 0.5 throws away', () => {
    const updates = noisy(1, 10, 0);
    const fixed = new BflMecAggregator({ eps: 0.5 }).aggregate({ previous: prev, updates, baseReward: BASE }, null).result;
    const auto = new BflMecAggregator({ eps: 'auto' }).aggregate({ previous: prev, updates, baseReward: BASE }, null).result;
    // cos(Δ, ḡ) hovers around 0.5 here: most honest updates fall just outside a fixed radius
    expect(low(fixed).length).toBeGreaterThan(5);
    expect(low(auto)).toEqual([]);
    expect(auto.diagnostics.eps).toBeGreaterThan(0.5);
  });

  it('still separates a sign-flipping minority when the signal is there', () => {
    const updates = noisy(2, 7, 3, 400, 1.5);
    const auto = new BflMecAggregator({ eps: 'auto' }).aggregate({ previous: prev, updates, baseReward: BASE }, null).result;
    expect(low(auto)).toEqual(['a0', 'a1', 'a2']);
  });

  it('is parsed from the config and committed in the rules', async () => {
    const { parseNetworkConfig, rulesOf } = await import('../../src/config/network.ts');
    const pk = 'ab'.repeat(1312);
    const cfg = parseNetworkConfig({ networkId: 'n', genesisTime: 0, members: [{ id: 'm', role: 'miner', publicKey: pk }], aggregation: { eps: 'auto', epsFactor: 2 } });
    expect(cfg.aggregation.eps).toBe('auto');
    expect(cfg.aggregation.epsFactor).toBe(2);
    expect(rulesOf(cfg.aggregation)).toContain('"eps":"auto"');
    expect(() => parseNetworkConfig({ networkId: 'n', genesisTime: 0, members: [{ id: 'm', role: 'miner', publicKey: pk }], aggregation: { eps: 'big' } })).toThrow(/aggregation\.eps/);
  });
});

describe('length check (maxNormRatio)', () => {
  const along = (norms: number[], dim = 8): UpdateInput[] => {
    const rng = new Rng(11);
    const dir = Float64Array.from({ length: dim }, () => rng.normal());
    return norms.map((n, i) => {
      // the same direction plus a little noise, scaled to the exact length n
      const v = Float64Array.from(dir, (x) => x + 0.05 * rng.normal());
      const s = n / Math.sqrt(dot(v, v));
      const delta = Float32Array.from(v, (x) => x * s);
      return { clientId: `c${i}`, digest: createHash('sha256').update(`len${i}`).digest(), delta, sampleCount: 10, staleness: 0 };
    });
  };
  const highOf = (r: AggregationResult) => Object.fromEntries(r.entries.map((e) => [e.clientId, e.high]));

  it('marks scaled updates low although cosine distance cannot see them, and keeps them out of the model', () => {
    const { updates, previous } = makeUpdates({ seed: 7, honest: 7, attackers: 3, attack: 'scale', scale: 10, dim: 200 });
    const on = run('bfl-mec-dbscan', { previous, updates, baseReward: BASE });
    const off = new BflMecAggregator({ maxNormRatio: null }).aggregate({ previous, updates, baseReward: BASE }, null).result;
    const low = (r: AggregationResult) => r.entries.filter((e) => !e.high).map((e) => e.clientId).sort();
    expect(low(on)).toEqual(['attacker-1', 'attacker-2', 'attacker-3']);
    expect(on.entries.filter((e) => !e.high).every((e) => e.weight === 0)).toBe(true);
    expect(on.rewards.every((x) => !x.id.startsWith('attacker'))).toBe(true);
    expect(on.diagnostics.note).toMatch(/3 update\(s\) longer than 2 × the median length/);
    expect(low(off)).toEqual([]); // the paper's rule: direction only
    // the model moves by about one honest update with the check, by several without it
    const step = (r: AggregationResult) => Math.sqrt(r.model.reduce((s, x, k) => s + (x - previous[k]) ** 2, 0));
    const honestLen = Math.sqrt(dot(toFloat64(updates[0].delta), toFloat64(updates[0].delta)));
    expect(step(on)).toBeLessThan(1.2 * honestLen);
    expect(step(off)).toBeGreaterThan(3 * honestLen);
  });

  it('bounds inclusively at maxNormRatio × the median length', () => {
    // a fixed radius that holds every direction here, so only the length decides
    const agg = (maxNormRatio: number) => new BflMecAggregator({ eps: 0.5, maxNormRatio });
    const previous = new Float32Array(8);
    const at = agg(2).aggregate({ previous, updates: along([1, 1, 1, 1, 1, 1.999]), baseReward: BASE }, null).result;
    expect(Object.values(highOf(at)).every(Boolean)).toBe(true);
    const over = agg(2).aggregate({ previous, updates: along([1, 1, 1, 1, 1, 2.001]), baseReward: BASE }, null).result;
    expect(highOf(over)).toEqual({ c0: true, c1: true, c2: true, c3: true, c4: true, c5: false });
    expect(over.diagnostics.lengthRatio![over.entries.findIndex((e) => e.clientId === 'c5')]).toBeCloseTo(2.001, 4);
    const looser = agg(3).aggregate({ previous, updates: along([1, 1, 1, 1, 1, 2.9]), baseReward: BASE }, null).result;
    expect(Object.values(highOf(looser)).every(Boolean)).toBe(true);
  });

  it('does nothing when most updates are empty (median length 0)', () => {
    const previous = new Float32Array(8);
    const ups = along([0, 0, 0, 1, 1]);
    ups.forEach((u, i) => i < 3 && u.delta.fill(0));
    const r = run('bfl-mec-dbscan', { previous, updates: ups, baseReward: BASE });
    expect(r.diagnostics.note ?? '').not.toMatch(/longer than/);
  });

  it('is parsed from the config (number or null), validated, and committed in the rules', async () => {
    const { parseNetworkConfig, rulesOf } = await import('../../src/config/network.ts');
    const members = [{ id: 'm', role: 'miner', publicKey: 'ab'.repeat(1312) }];
    const parse = (aggregation: Json) => parseNetworkConfig({ networkId: 'n', genesisTime: 0, members, aggregation });
    expect(parse({}).aggregation.maxNormRatio).toBe(2);
    expect(parse({ maxNormRatio: null }).aggregation.maxNormRatio).toBeNull();
    expect(parse({ maxNormRatio: 3.5 }).aggregation.maxNormRatio).toBe(3.5);
    expect(rulesOf(parse({ maxNormRatio: null }).aggregation)).not.toBe(rulesOf(parse({}).aggregation));
    expect(() => parse({ maxNormRatio: 0.5 })).toThrow(/aggregation\.maxNormRatio/);
    expect(() => parse({ maxNormRatio: 'big' })).toThrow(/aggregation\.maxNormRatio/);
    expect(() => new BflMecAggregator({ maxNormRatio: 0.9 })).toThrow(/maxNormRatio/);
  });
});
