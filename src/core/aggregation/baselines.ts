/**
 * Baselines behind the same interface (DESIGN.md §5), for the comparisons a reviewer asks for.
 * All deterministic: canonical order, float64, ties broken by digest order.
 *   FedAvg (McMahan et al. 2017): sample-count weighted mean.
 *   FedProx-style straggler drop (Li et al. 2020): drop the given fraction of updates, the
 *     stalest first (in an asynchronous network the stragglers are the stale ones), then FedAvg.
 *     The proximal term μ itself lives in local training.
 *   Multi-Krum (Blanchard et al. 2017): score_i = sum of the n − f − 2 smallest squared
 *     distances to the others; average the m best.
 *   Coordinate-wise median and trimmed mean (Yin et al. 2018).
 * Labels: an update a rule leaves out (dropped, not selected) is low; rewards follow the
 * aggregation weights of the high ones.
 */
import { applyUpdate, canonical, normalise, rewardsFor, stalenessWeight } from './common.ts';
import type { AggregationInput, AggregationResult, Aggregator, UpdateInput } from './types.ts';
import { pairwise, toFloat64, weightedSum } from './vectors.ts';

function result(input: AggregationInput, ups: UpdateInput[], g: Float64Array, weights: number[], high: boolean[], note?: string): AggregationResult {
  return {
    model: applyUpdate(input.previous, g),
    entries: ups.map((u, i) => ({ clientId: u.clientId, updateDigest: u.digest, high: high[i], weight: weights[i] })),
    rewards: rewardsFor(
      ups.map((u, i) => ({ clientId: u.clientId, weight: weights[i], rewarded: high[i] })),
      input.baseReward,
    ),
    diagnostics: { note },
  };
}

function nonEmpty(input: AggregationInput): UpdateInput[] {
  const ups = canonical(input.updates);
  if (ups.length === 0) throw new RangeError('nothing to aggregate');
  return ups;
}

abstract class Stateless implements Aggregator<null> {
  abstract readonly name: string;
  initialState(): null {
    return null;
  }
  aggregate(input: AggregationInput, state: null): { result: AggregationResult; state: null } {
    return { result: this.run(input), state };
  }
  protected abstract run(input: AggregationInput): AggregationResult;
}

export class FedAvgAggregator extends Stateless {
  readonly name = 'fedavg';
  readonly stalenessExponent: number;

  constructor(opts: { stalenessExponent?: number } = {}) {
    super();
    this.stalenessExponent = opts.stalenessExponent ?? 0;
  }

  protected run(input: AggregationInput): AggregationResult {
    const ups = nonEmpty(input);
    const w = normalise(ups.map((u) => u.sampleCount * stalenessWeight(u.staleness, this.stalenessExponent)));
    return result(input, ups, weightedSum(ups.map((u) => toFloat64(u.delta)), w), w, ups.map(() => true));
  }
}

export class FedProxDropAggregator extends Stateless {
  readonly name = 'fedprox';
  readonly dropFraction: number;

  constructor(opts: { dropFraction?: number } = {}) {
    super();
    // FedProx's experiments use 0, 50 and 90 % stragglers; the BFL-MEC paper compares with 2 %.
    this.dropFraction = opts.dropFraction ?? 0.02;
    if (!(this.dropFraction >= 0 && this.dropFraction < 1)) throw new RangeError('dropFraction must be in [0, 1)');
  }

  protected run(input: AggregationInput): AggregationResult {
    const ups = nonEmpty(input);
    const drop = Math.floor(ups.length * this.dropFraction);
    // stalest first; among equals the later digest (a fixed, input-order-free choice)
    const order = ups.map((_, i) => i).sort((a, b) => ups[b].staleness - ups[a].staleness || b - a);
    const dropped = new Set(order.slice(0, drop));
    const keep = ups.map((_, i) => !dropped.has(i));
    const w = normalise(ups.map((u) => u.sampleCount), keep);
    return result(input, ups, weightedSum(ups.map((u) => toFloat64(u.delta)), w), w, keep, drop ? `dropped ${drop} stalest` : undefined);
  }
}

export class MultiKrumAggregator extends Stateless {
  readonly name = 'multi-krum';
  /** f: Byzantine updates tolerated (default ⌊(n − 3) / 2⌋, the most Krum allows); m: updates averaged (default n − f). */
  readonly f?: number;
  readonly m?: number;

  constructor(opts: { f?: number; m?: number } = {}) {
    super();
    this.f = opts.f;
    this.m = opts.m;
  }

  protected run(input: AggregationInput): AggregationResult {
    const ups = nonEmpty(input);
    const n = ups.length;
    const vs = ups.map((u) => toFloat64(u.delta));
    const f = Math.max(0, Math.min(this.f ?? Math.floor((n - 3) / 2), n - 1));
    const m = Math.max(1, Math.min(this.m ?? n - f, n));
    const closest = Math.max(1, n - f - 2);
    const d = pairwise(vs, 'sqdist');
    const scores = ups.map((_, i) => {
      const row: number[] = [];
      for (let j = 0; j < n; j++) if (j !== i) row.push(d[i * n + j]);
      row.sort((a, b) => a - b);
      let s = 0;
      for (let k = 0; k < Math.min(closest, row.length); k++) s += row[k];
      return s;
    });
    const selected = ups.map((_, i) => i).sort((a, b) => scores[a] - scores[b] || a - b).slice(0, m);
    const high = ups.map((_, i) => selected.includes(i));
    const w = normalise(ups.map(() => 1), high);
    return result(input, ups, weightedSum(vs, w), w, high);
  }
}

/** Coordinate-wise order statistics: median, or mean after trimming a fraction at each end. */
function coordinateWise(ups: UpdateInput[], trim: number | 'median'): Float64Array {
  const n = ups.length;
  const dim = ups[0].delta.length;
  const out = new Float64Array(dim);
  const col = new Float64Array(n);
  const k = trim === 'median' ? 0 : Math.floor(n * trim);
  for (let c = 0; c < dim; c++) {
    for (let i = 0; i < n; i++) col[i] = ups[i].delta[c];
    col.sort();
    if (trim === 'median') {
      out[c] = n % 2 ? col[(n - 1) / 2] : (col[n / 2 - 1] + col[n / 2]) / 2;
    } else {
      let s = 0;
      for (let i = k; i < n - k; i++) s += col[i];
      out[c] = s / (n - 2 * k);
    }
  }
  return out;
}

export class MedianAggregator extends Stateless {
  readonly name = 'median';
  protected run(input: AggregationInput): AggregationResult {
    const ups = nonEmpty(input);
    const w = normalise(ups.map(() => 1));
    return result(input, ups, coordinateWise(ups, 'median'), w, ups.map(() => true));
  }
}

export class TrimmedMeanAggregator extends Stateless {
  readonly name = 'trimmed-mean';
  readonly trim: number;

  constructor(opts: { trim?: number } = {}) {
    super();
    // β = 0.1 trims 10 % at each end per coordinate (Yin et al. use β ≥ the attacker share).
    this.trim = opts.trim ?? 0.1;
    if (!(this.trim >= 0 && this.trim < 0.5)) throw new RangeError('trim must be in [0, 0.5)');
  }

  protected run(input: AggregationInput): AggregationResult {
    const ups = nonEmpty(input);
    const w = normalise(ups.map(() => 1));
    return result(input, ups, coordinateWise(ups, this.trim), w, ups.map(() => true));
  }
}
