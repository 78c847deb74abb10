/**
 * BFL-MEC contribution identification and fair aggregation (the paper's Algorithm 4 and
 * Eq. II.4; docs/architecture.md, "Aggregation"):
 *  0. length check (ours, off with maxNormRatio null): an update longer than maxNormRatio × the
 *     median update length is low and takes no part in steps 1-2 (cosine distance cannot see
 *     length, so a scaled update would otherwise pass and dominate ḡ; docs/decisions.md);
 *  1. ḡ = mean(Δ_i) of the remaining updates, appended to the set as point n;
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
import { cosineFromGram, dot, mean, referenceGramKernel, toFloat64, weightedSum, type GramKernel } from './vectors.ts';

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
  /** Updates longer than this × the median update length are low; null = no length check. */
  maxNormRatio: number | null;
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
  // Honest updates measured at most 1.54 × the median length (20 clients, IID and two-shard
  // non-IID, η 0.01 and 0.05, 21 aggregations each); scaled, noise and label-flipped updates are
  // 2-30 × (docs/experiments.md). 2 leaves a margin on both sides.
  maxNormRatio: 2,
};

export function minPtsFor(opt: BflMecOptions['minPts'], points: number): number {
  return opt === 'majority' ? Math.floor(points / 2) + 1 : opt;
}

export class BflMecAggregator implements Aggregator<null> {
  readonly name: string;
  readonly options: BflMecOptions;
  /** Computes the pairwise matrices; any kernel gives the reference's bits (src/kernels/gram.ts). */
  kernel: GramKernel = referenceGramKernel;

  constructor(options: Partial<BflMecOptions> = {}, name = 'bfl-mec-dbscan') {
    this.name = name;
    // undefined must not override a default (e.g. createAggregator passing an unset flag)
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    this.options = { ...defaultBflMecOptions, ...given };
    const { eps, epsFactor, minPts, stalenessExponent, maxNormRatio } = this.options;
    if (eps !== 'auto' && !(eps >= 0)) throw new RangeError(`eps must be >= 0 or "auto", got ${eps}`);
    if (!(epsFactor > 0)) throw new RangeError(`epsFactor must be > 0, got ${epsFactor}`);
    if (minPts !== 'majority' && !(Number.isInteger(minPts) && minPts >= 1)) throw new RangeError(`minPts must be an integer >= 1 or "majority", got ${minPts}`);
    if (!(stalenessExponent >= 0)) throw new RangeError(`stalenessExponent must be >= 0, got ${stalenessExponent}`);
    if (maxNormRatio !== null && !(maxNormRatio >= 1)) throw new RangeError(`maxNormRatio must be >= 1 or null, got ${maxNormRatio}`);
  }

  initialState(): null {
    return null;
  }

  aggregate(input: AggregationInput, state: null): { result: AggregationResult; state: null } {
    return { result: scoreAndAggregate(input, this.options, this.kernel), state };
  }
}

export function scoreAndAggregate(input: AggregationInput, o: BflMecOptions, kernel: GramKernel = referenceGramKernel): AggregationResult {
  const ups = canonical(input.updates);
  const n = ups.length;
  if (n === 0) throw new RangeError('nothing to aggregate');
  const vs = ups.map((u) => toFloat64(u.delta));
  const norms = vs.map((v) => Math.sqrt(dot(v, v)));
  const medianNorm = median(norms);
  const bound = o.maxNormRatio === null ? Infinity : o.maxNormRatio * medianNorm;
  // A median of 0 (most updates empty) gives nothing to measure against: no length check.
  const admitted = ups.map((_, i) => !(bound > 0) || norms[i] <= bound);
  const idx = ups.map((_, i) => i).filter((i) => admitted[i]); // never empty: the median one passes
  const gbar = mean(idx.map((i) => vs[i]));
  const points = [...vs, gbar];
  const m = n + 1;

  // Gram matrix of all points; cosine similarities come from it.
  const gram = kernel.pairwise(points, 'dot');
  const cos = cosineFromGram(gram, m);
  // DBSCAN over the admitted updates and ḡ (sub-indices: idx, then ḡ last).
  const sub = [...idx, n];
  const k = sub.length;
  const dist = new Float64Array(k * k);
  const sq = o.metric === 'euclidean' ? kernel.pairwise(points, 'sqdist') : undefined;
  for (let a = 0; a < k; a++) {
    for (let b = 0; b < k; b++) {
      const ij = sub[a] * m + sub[b];
      dist[a * k + b] = a === b ? 0 : sq ? Math.sqrt(sq[ij]) : Math.min(2, Math.max(0, 1 - cos[ij]));
    }
  }
  const eps = o.eps === 'auto' ? o.epsFactor * medianDistanceToMean(dist, k - 1) : o.eps;
  const { labels } = dbscan(dist, k, eps, minPtsFor(o.minPts, k));
  const meanLabel = labels[k - 1];
  const high = ups.map(() => false);
  const clusterLabels = ups.map(() => -1);
  idx.forEach((i, a) => (clusterLabels[i] = labels[a]));
  let note = idx.length < n ? `${n - idx.length} update(s) longer than ${o.maxNormRatio} × the median length` : undefined;
  if (meanLabel !== -1) {
    idx.forEach((i, a) => (high[i] = labels[a] === meanLabel));
  } else {
    // ḡ is noise: no cluster around the mean. Fall back to the mean's own neighbourhood, and
    // to every admitted update if even that is empty (no basis to single anyone out).
    const near = idx.filter((_, a) => dist[a * k + k - 1] <= eps);
    const chosen = near.length > 0 ? near : idx;
    for (const i of chosen) high[i] = true;
    note = [note, near.length > 0 ? 'mean is noise: high = neighbourhood of the mean' : 'mean is noise with an empty neighbourhood: all admitted updates kept'].filter(Boolean).join('; ');
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
    diagnostics: { similarity, clusterLabels: [...clusterLabels, meanLabel], eps, lengthRatio: norms.map((x) => x / medianNorm), note },
  };
}

/** Median of the n updates' distances to ḡ (point n). */
function medianDistanceToMean(dist: Float64Array, n: number): number {
  const m = n + 1;
  return median(Array.from({ length: n }, (_, i) => dist[i * m + n]));
}

/** The middle value; the mean of the two middle ones for an even count. */
function median(xs: number[]): number {
  const d = [...xs].sort((a, b) => a - b);
  const n = d.length;
  return n % 2 ? d[(n - 1) / 2] : (d[n / 2 - 1] + d[n / 2]) / 2;
}
