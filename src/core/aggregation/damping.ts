/**
 * Staleness damping of the global step (config `aggregation.stalenessDamping`, a; 0 = off).
 *
 * An update built on a model τ aggregations old repeats part of the descent the τ aggregations
 * in between already made; applied at full length, a batch of such updates overshoots. This is
 * the delay in the paper's convergence bound (Theorem 1 grows with τ_avg, after Koloskova et
 * al.), and asynchronous FL shortens stale steps for it (FedAsync's s(τ) = (1 + τ)^(−a),
 * FedBuff's 1/√(1 + τ)). `stalenessExponent` only re-weights updates against each other, so a
 * batch in which every update is equally stale still takes a full step; this shortens the step.
 *
 * The rule's step g (whatever rule: scoring, weights, rewards and state are the rule's, untouched)
 * is multiplied by σ = Σ w_i s(τ_i) / Σ w_i, the mean discount of the updates the rule used,
 * weighted as it weighted them (an excluded update, weight 0, cannot shorten the step by claiming
 * an old base). For the weighted-sum rules with equal staleness this is FedBuff's per-update
 * discount exactly; with mixed staleness it keeps the direction the rule chose.
 *
 * Deterministic: g is recovered as model − previous in float64 (exact unless the two differ by
 * more than ~2^29 in magnitude, and then rounded the same way everywhere), scaled in float64 and
 * applied with applyUpdate, so it is rounded to float32 a second time; every miner does the same
 * operations in the same order. The rule's own state (e.g. the agreement rule's sketch of its
 * step) holds the undamped step; the chain's previous global update is the damped one.
 */
import { toHex } from '../bytes.ts';
import { applyUpdate, stalenessWeight } from './common.ts';
import type { AggregationInput, AggregationResult, Aggregator } from './types.ts';

/** σ for a result: the rule's weights, each update's staleness (entries and updates matched by digest and client). */
export function stepDamping(input: AggregationInput, result: AggregationResult, a: number): number {
  if (a === 0) return 1;
  const staleness = new Map(input.updates.map((u) => [`${u.clientId}\u0000${toHex(u.digest)}`, u.staleness]));
  let w = 0;
  let ws = 0;
  // entries are in the canonical order (by digest, then client): the sums run in one order
  for (const e of result.entries) {
    if (!(e.weight > 0)) continue;
    const tau = staleness.get(`${e.clientId}\u0000${toHex(e.updateDigest)}`);
    if (tau === undefined) throw new RangeError(`entry of ${e.clientId} matches no update`);
    w += e.weight;
    ws += e.weight * stalenessWeight(tau, a);
  }
  return w > 0 ? ws / w : 1;
}

/** `inner` with its step shortened by σ (above). The state codec, name and everything else are the inner rule's. */
export function dampStaleSteps<S>(inner: Aggregator<S>, a: number): Aggregator<S> {
  if (!(a >= 0 && Number.isFinite(a))) throw new RangeError(`stalenessDamping must be a finite number >= 0, got ${a}`);
  if (a === 0) return inner;
  const damped: Aggregator<S> = {
    name: inner.name,
    initialState: () => inner.initialState(),
    aggregate(input, state) {
      const out = inner.aggregate(input, state);
      const sigma = stepDamping(input, out.result, a);
      if (sigma === 1) return out;
      const prev = input.previous;
      const model = out.result.model;
      const g = new Float64Array(prev.length);
      for (let k = 0; k < g.length; k++) g[k] = sigma * (model[k] - prev[k]);
      return { result: { ...out.result, model: applyUpdate(prev, g), diagnostics: { ...out.result.diagnostics, stepScale: sigma } }, state: out.state };
    },
  };
  // a stateless rule has neither method (stateCodecOf tells them apart by their presence)
  if (inner.encodeState && inner.decodeState) {
    damped.encodeState = (s) => inner.encodeState!(s);
    damped.decodeState = (b) => inner.decodeState!(b);
  }
  return damped;
}
