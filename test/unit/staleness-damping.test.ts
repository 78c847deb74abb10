import { describe, expect, it } from 'vitest';
import { AGGREGATORS, createAggregator, dampStaleSteps, stateCodecOf } from '../../src/core/aggregation/index.ts';
import type { AggregationInput, UpdateInput } from '../../src/core/aggregation/types.ts';
import { aggregatorOf } from '../../src/chain/aggregation-engine.ts';
import { defaultAggregationConfig, rulesOf } from '../../src/config/network.ts';
import { Rng } from '../../src/core/random.ts';
import { makeUpdates, resultDigest } from '../helpers/updates.ts';

const BASE = 100_000_000n;

function withStaleness(updates: UpdateInput[], tau: (u: UpdateInput, i: number) => number): UpdateInput[] {
  return updates.map((u, i) => ({ ...u, staleness: tau(u, i) }));
}

function aggregate(name: (typeof AGGREGATORS)[number], a: number, input: AggregationInput) {
  const agg = dampStaleSteps(createAggregator(name), a);
  return agg.aggregate(input, agg.initialState());
}

describe('staleness damping of the global step (aggregation.stalenessDamping)', () => {
  it('fresh updates: every rule gives the bits it gives undamped', () => {
    const { updates, previous } = makeUpdates({ seed: 3, honest: 7, attackers: 2, dim: 96 });
    for (const name of AGGREGATORS) {
      const plain = aggregate(name, 0, { previous, updates, baseReward: BASE });
      const damped = aggregate(name, 0.5, { previous, updates, baseReward: BASE });
      expect(resultDigest(damped.result), name).toBe(resultDigest(plain.result));
      expect(damped.result.diagnostics.stepScale, name).toBeUndefined();
    }
  });

  it('equally stale updates: the step is (1 + τ)^(−a) of the rule\'s; entries, rewards and state are the rule\'s', () => {
    const { updates, previous } = makeUpdates({ seed: 4, honest: 8, attackers: 0, dim: 128 });
    const stale = withStaleness(updates, () => 3);
    for (const name of ['bfl-mec', 'fedavg', 'median', 'foolsgold'] as const) {
      const plain = aggregate(name, 0, { previous, updates: stale, baseReward: BASE });
      const damped = aggregate(name, 0.5, { previous, updates: stale, baseReward: BASE });
      const sigma = Math.pow(4, -0.5);
      expect(damped.result.diagnostics.stepScale, name).toBe(sigma);
      const want = previous.map((p, k) => Math.fround(p + sigma * (plain.result.model[k] - p)));
      expect(damped.result.model, name).toEqual(want);
      expect(plain.result.model.filter((x, k) => x !== previous[k]).length, name).toBeGreaterThan(previous.length / 2); // the rule did take a step
      expect(damped.result.entries, name).toEqual(plain.result.entries);
      expect(damped.result.rewards, name).toEqual(plain.result.rewards);
      const codec = stateCodecOf(createAggregator(name));
      expect(codec.encode(damped.state as never), name).toEqual(codec.encode(plain.state as never));
    }
  });

  it('σ is the mean discount weighted as the rule weighted the updates: an excluded update claiming an old base does not shorten the step', () => {
    const { updates, previous } = makeUpdates({ seed: 5, honest: 7, attackers: 3, attack: 'sign-flip', dim: 96 });
    const attackersOld = withStaleness(updates, (u) => (u.clientId.startsWith('attacker') ? 50 : 0));
    const plain = aggregate('bfl-mec-dbscan', 0, { previous, updates: attackersOld, baseReward: BASE });
    const damped = aggregate('bfl-mec-dbscan', 1, { previous, updates: attackersOld, baseReward: BASE });
    for (const e of plain.result.entries) expect(e.weight > 0, e.clientId).toBe(!e.clientId.startsWith('attacker'));
    expect(resultDigest(damped.result)).toBe(resultDigest(plain.result));
    // the control: one honest update one aggregation old shortens it by its weight's share of (1 − 1/2)
    const oneOld = withStaleness(updates, (u) => (u.clientId === 'client-1' ? 1 : 0));
    const r = aggregate('bfl-mec-dbscan', 1, { previous, updates: oneOld, baseReward: BASE }).result;
    const w1 = r.entries.find((e) => e.clientId === 'client-1')!.weight;
    expect(w1).toBeGreaterThan(0);
    expect(r.diagnostics.stepScale).toBeCloseTo(1 - w1 / 2, 12);
  });

  it('the same bits in any input order', () => {
    const { updates, previous } = makeUpdates({ seed: 6, honest: 9, attackers: 2, dim: 64 });
    const rng = new Rng(6);
    const mixed = withStaleness(updates, () => rng.int(4));
    const first = resultDigest(aggregate('bfl-mec', 0.5, { previous, updates: mixed, baseReward: BASE }).result);
    for (let t = 0; t < 5; t++) {
      const shuffled = [...mixed];
      for (let i = shuffled.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
      }
      expect(resultDigest(aggregate('bfl-mec', 0.5, { previous, updates: shuffled, baseReward: BASE }).result)).toBe(first);
    }
  });

  it('a stateless rule stays stateless and a stateful one keeps its codec', () => {
    for (const name of AGGREGATORS) expect(stateCodecOf(dampStaleSteps(createAggregator(name), 0.5)).stateless, name).toBe(stateCodecOf(createAggregator(name)).stateless);
    expect(() => dampStaleSteps(createAggregator('fedavg'), -1)).toThrow(/stalenessDamping must be a finite number >= 0/);
  });

  it('config: off by default and then absent from the genesis rules (older networks keep their genesis); on, it joins them and the node\'s aggregator damps', () => {
    expect(defaultAggregationConfig.stalenessDamping).toBe(0);
    expect(rulesOf(defaultAggregationConfig)).not.toContain('stalenessDamping');
    const on = { ...defaultAggregationConfig, stalenessDamping: 0.5 };
    expect(rulesOf(on)).toContain('"stalenessDamping":0.5');
    const { updates, previous } = makeUpdates({ seed: 7, honest: 6, attackers: 0, dim: 32 });
    const agg = aggregatorOf(on);
    expect(agg.aggregate({ previous, updates: withStaleness(updates, () => 1), baseReward: BASE }, agg.initialState()).result.diagnostics.stepScale).toBeCloseTo(Math.SQRT1_2, 15);
  });
});
