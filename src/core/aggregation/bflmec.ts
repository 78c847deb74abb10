/**
 * BFL-MEC contribution identification and fair aggregation (the paper's Algorithm 4 and
 * Eq. II.4; DESIGN.md §5):
 *  1. ḡ = mean(Δ_i), appended to the set as point n;
 *  2. DBSCAN over the n + 1 points; the cluster holding ḡ is the high-contribution set H,
 *     everything else (other clusters, noise) is low;
 *  3. θ_i = max(0, cos(Δ_i, ḡ)) · s(τ_i) for i in H, p_i = θ_i / Σ_H θ_k;
 *  4. reward_i = base · p_i for i in H, 0 otherwise;
 *  5. g = Σ_H p_i Δ_i (strategy `discard`), or with `keep` the low updates stay in, weighted by
 *     their clamped similarity too (rewards still go to H only); model = previous + g.
 * The paper calls θ a "cosine distance" but weights clients closer to ḡ more: the intended
 * quantity is the similarity.
 */
import { canonical, applyUpdate, normalise, rewardsFor, stalenessWeight } from './common.ts';
import { dbscan } from './dbscan.ts';
import type { AggregationInput, AggregationResult, Aggregator } from './types.ts';
import { cosineFromGram, mean, pairwise, toFloat64, weightedSum } from './vectors.ts';

export interface BflMecOptions {
  metric: 'cosine' | 'euclidean';
  /** DBSCAN radius: a cosine distance (1 − cos) or Euclidean distance, or 'auto':
   * epsFactor × the median distance of the updates to ḡ (scale-free; with minPts 'majority'
   * ḡ is then always a core point, since at least half of the updates are that close). */
  eps: number | 'auto';
  /** With eps 'auto': the factor on the median distance. */
  epsFactor: number;
  /** DBSCAN core threshold; 'majority' = ⌊(n + 1) / 2⌋ + 1 of the n + 1 points. */
  minPts: number | 'majority';
  strategy: 'discard' | 'keep';
  /** a in s(τ) = (1 + τ)^(−a); 0 = no staleness weighting. */
  stalenessExponent: number;
}

export const defaultBflMecOptions: BflMecOptions = {
  // Cosine: the direction of an update is what says whether it helps; its length depends on
  // the client's data and learning rate.
  metric: 'cosine',
  // 1.5 × the median distance of the updates to ḡ. A fixed radius does not survive training:
  // as updates become noise-dominated, cos(Δ_i, ḡ) of honest updates drifts towards 1/√n, and a
  // fixed cosine radius of 0.5 labelled up to 26 of 27 honest updates low (100 clients), or every
  // honest one under a noise attack (docs/experiments.md). 'auto' measured 0 false positives.
  eps: 'auto',
  epsFactor: 1.5,
  // With a majority threshold, ḡ is core only when most points are near it, so a cluster
  // of attackers can never be the cluster of the mean unless they are the majority.
  minPts: 'majority',
  strategy: 'discard',
  stalenessExponent: 0,
};

export function minPtsFor(opt: BflMecOptions['minPts'], points: number): number {
  return opt === 'majority' ? Math.floor(points / 2) + 1 : opt;
}

export class BflMecAggregator implements Aggregator<null> {
  readonly name = 'bfl-mec';
  readonly options: BflMecOptions;

  constructor(options: Partial<BflMecOptions> = {}) {
    // undefined must not override a default (e.g. createAggregator passing an unset flag)
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    this.options = { ...defaultBflMecOptions, ...given };
    const { eps, epsFactor, minPts, stalenessExponent } = this.options;
    if (eps !== 'auto' && !(eps >= 0)) throw new RangeError(`eps must be >= 0 or "auto", got ${eps}`);
    if (!(epsFactor > 0)) throw new RangeError(`epsFactor must be > 0, got ${epsFactor}`);
    if (minPts !== 'majority' && !(Number.isInteger(minPts) && minPts >= 1)) throw new RangeError(`minPts must be an integer >= 1 or "majority", got ${minPts}`);
    if (!(stalenessExponent >= 0)) throw new RangeError(`stalenessExponent must be >= 0, got ${stalenessExponent}`);
  }

  initialState(): null {
    return null;
  }

  aggregate(input: AggregationInput, state: null): { result: AggregationResult; state: null } {
    return { result: scoreAndAggregate(input, this.options), state };
  }
}

export function scoreAndAggregate(input: AggregationInput, o: BflMecOptions): AggregationResult {
  const ups = canonical(input.updates);
  const n = ups.length;
  if (n === 0) throw new RangeError('nothing to aggregate');
  const vs = ups.map((u) => toFloat64(u.delta));
  const gbar = mean(vs);
  const points = [...vs, gbar];
  const m = n + 1;

  // Gram matrix of all points; cosine similarities come from it.
  const gram = pairwise(points, 'dot');
  const cos = cosineFromGram(gram, m);
  let dist: Float64Array;
  if (o.metric === 'cosine') {
    dist = new Float64Array(m * m);
    for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) dist[i * m + j] = i === j ? 0 : Math.min(2, Math.max(0, 1 - cos[i * m + j]));
  } else {
    dist = pairwise(points, 'sqdist').map(Math.sqrt);
  }
  const eps = o.eps === 'auto' ? o.epsFactor * medianDistanceToMean(dist, n) : o.eps;
  const { labels } = dbscan(dist, m, eps, minPtsFor(o.minPts, m));
  const meanLabel = labels[n];
  let high: boolean[];
  let note: string | undefined;
  if (meanLabel !== -1) {
    high = ups.map((_, i) => labels[i] === meanLabel);
  } else {
    // ḡ is noise: no cluster around the mean. Fall back to the mean's own neighbourhood, and
    // to everyone if even that is empty (no basis to single anyone out).
    high = ups.map((_, i) => dist[i * m + n] <= eps);
    note = 'mean is noise: high = neighbourhood of the mean';
    if (!high.some(Boolean)) {
      high = ups.map(() => true);
      note = 'mean is noise with an empty neighbourhood: all updates kept';
    }
  }

  const similarity = ups.map((_, i) => cos[i * m + n]);
  const theta = ups.map((u, i) => Math.max(0, similarity[i]) * stalenessWeight(u.staleness, o.stalenessExponent));
  const pHigh = normalise(theta, high);
  // Aggregation weights: `discard` uses p over H; `keep` normalises θ over every update.
  const w = o.strategy === 'discard' ? pHigh : normalise(theta);
  const g = weightedSum(vs, w);

  const entries = ups.map((u, i) => ({ clientId: u.clientId, updateDigest: u.digest, high: high[i], weight: w[i] }));
  return {
    model: applyUpdate(input.previous, g),
    entries,
    rewards: rewardsFor(
      ups.map((u, i) => ({ clientId: u.clientId, weight: pHigh[i], rewarded: high[i] })),
      input.baseReward,
    ),
    diagnostics: { similarity, clusterLabels: Array.from(labels), eps, note },
  };
}

/** Median of the n updates' distances to ḡ (point n); the mean of the two middle ones for even n. */
function medianDistanceToMean(dist: Float64Array, n: number): number {
  const m = n + 1;
  const d = Array.from({ length: n }, (_, i) => dist[i * m + n]).sort((a, b) => a - b);
  return n % 2 ? d[(n - 1) / 2] : (d[n / 2 - 1] + d[n / 2]) / 2;
}
