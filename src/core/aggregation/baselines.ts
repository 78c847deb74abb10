/**
 * Baselines behind the same interface (docs/architecture.md, "Aggregation"), for the comparisons a reviewer asks for.
 * All deterministic: canonical order, float64, ties broken by digest order.
 *   FedAvg (McMahan et al. 2017): sample-count weighted mean.
 *   FedProx-style straggler drop (Li et al. 2020): drop the given fraction of updates, the
 *     stalest first (in an asynchronous network the stragglers are the stale ones), then FedAvg.
 *     The proximal term μ itself lives in local training.
 *   Multi-Krum (Blanchard et al. 2017): score_i = sum of the n − f − 2 smallest squared
 *     distances to the others; average the m best.
 *   Coordinate-wise median and trimmed mean (Yin et al. 2018).
 *   FLAME (Nguyen et al. 2022) and FoolsGold (Fung et al. 2020), below.
 * Labels: an update a rule leaves out (dropped, not selected) is low; rewards follow the
 * aggregation weights of the high ones.
 */
import { decodeAgreementState, encodeAgreementState, sketch } from './agreement.ts';
import { applyUpdate, canonical, normalise, rewardsFor, stalenessWeight } from './common.ts';
import type { AggregationInput, AggregationResult, Aggregator, UpdateInput } from './types.ts';
import { cosineFromGram, pairwise, toFloat64, weightedSum } from './vectors.ts';

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

/**
 * FLAME (Nguyen et al., USENIX Security 2022), the detection and clipping parts:
 *  1. cosine distances between the updates; HDBSCAN with min_cluster_size = ⌊n/2⌋ + 1 admits the
 *     majority cluster, everything else is an outlier (low). With that minimum size the condensed
 *     tree holds one cluster per level; we take the points still in the majority component of
 *     the mutual-reachability minimum spanning tree at the finest level where it keeps a
 *     majority (the points that fall out of it before are HDBSCAN's outliers);
 *  2. clipping to the median update length S = median |Δ_i| (over all updates): Δ_i·min(1, S/|Δ_i|);
 *  3. the mean of the clipped admitted updates. FLAME's adaptive Gaussian noise (λ·S, against
 *     backdoors) is left out: it would need randomness every miner agrees on, and backdoors are not
 *     among our attacks.
 * Rewards follow the (equal) weights of the admitted updates.
 */
export class FlameAggregator extends Stateless {
  readonly name = 'flame';

  protected run(input: AggregationInput): AggregationResult {
    const ups = nonEmpty(input);
    const n = ups.length;
    const vs = ups.map((u) => toFloat64(u.delta));
    const gram = pairwise(vs, 'dot');
    const cos = cosineFromGram(gram, n);
    const norms = vs.map((_, i) => Math.sqrt(gram[i * n + i]));
    const dist = (i: number, j: number) => (i === j ? 0 : Math.min(2, Math.max(0, 1 - cos[i * n + j])));
    const minSize = Math.floor(n / 2) + 1;
    const admitted = majorityCluster(n, dist, minSize);
    const S = medianOf(norms);
    const scale = norms.map((x) => (x > S && x > 0 ? S / x : 1));
    // weights on the unclipped updates: w_i = scale_i / |A|, so Σ w_i Δ_i is the mean of the clipped
    const count = admitted.filter(Boolean).length;
    const weights = ups.map((_, i) => (admitted[i] ? scale[i] / count : 0));
    return result(input, ups, weightedSum(vs, weights), weights, admitted, admitted.includes(false) ? `${n - count} outlier(s)` : undefined);
  }
}

/** HDBSCAN's majority cluster (see FlameAggregator): core distance = distance to the
 * (minSize − 1)-th nearest other point, mutual reachability, Prim's MST, then the MST edges are
 * cut from the longest down while the component that holds a majority keeps one. */
export function majorityCluster(n: number, dist: (i: number, j: number) => number, minSize: number): boolean[] {
  if (n <= 2) return Array.from({ length: n }, () => true);
  // FLAME runs HDBSCAN with min_samples = 1: the core distance is the nearest neighbour's
  const k = 1;
  const core = Array.from({ length: n }, (_, i) => {
    const d = Array.from({ length: n }, (_, j) => dist(i, j)).filter((_, j) => j !== i).sort((a, b) => a - b);
    return d[k - 1];
  });
  const mr = (i: number, j: number) => Math.max(core[i], core[j], dist(i, j));
  // Prim's algorithm from point 0; ties by index, so the tree is the same on every machine
  const inTree = new Array(n).fill(false);
  const best = new Array(n).fill(Infinity);
  const parent = new Array(n).fill(-1);
  best[0] = 0;
  const edges: [number, number, number][] = [];
  for (let step = 0; step < n; step++) {
    let u = -1;
    for (let i = 0; i < n; i++) if (!inTree[i] && (u === -1 || best[i] < best[u])) u = i;
    inTree[u] = true;
    if (parent[u] >= 0) edges.push([mr(u, parent[u]), Math.min(u, parent[u]), Math.max(u, parent[u])]);
    for (let v = 0; v < n; v++) {
      if (inTree[v]) continue;
      const d = mr(u, v);
      if (d < best[v]) {
        best[v] = d;
        parent[v] = u;
      }
    }
  }
  edges.sort((a, b) => b[0] - a[0] || a[1] - b[1] || a[2] - b[2]);
  let members = Array.from({ length: n }, () => true);
  // remove the longest edges one at a time; keep the majority component while there is one
  for (let cut = 1; cut <= edges.length; cut++) {
    const kept = edges.slice(cut);
    const comp = components(n, kept);
    const sizes = new Map<number, number>();
    for (const c of comp) sizes.set(c, (sizes.get(c) ?? 0) + 1);
    const big = [...sizes].find(([, s]) => s >= minSize);
    if (!big) break;
    members = comp.map((c) => c === big[0]);
  }
  return members;
}

function components(n: number, edges: [number, number, number][]): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  const find = (x: number): number => (p[x] === x ? x : (p[x] = find(p[x])));
  for (const [, a, b] of edges) p[find(a)] = find(b);
  return p.map((_, i) => find(i));
}

function medianOf(xs: number[]): number {
  const d = [...xs].sort((a, b) => a - b);
  const n = d.length;
  return n % 2 ? d[(n - 1) / 2] : (d[n / 2 - 1] + d[n / 2]) / 2;
}

/**
 * FoolsGold (Fung et al., RAID 2020): sybils that push the same objective have similar update
 * histories. State: each client's summed history of updates as a count sketch of 4096 buckets
 * (agreement.ts's `sketch`; the full histories would be a model per client in every block's
 * stored state; the sketch keeps cosines within ~0.02). Per aggregation, with cs_ij = cos(H_i, H_j): v_i = max_j cs_ij; pardoning
 * cs_ij·v_i/v_j when v_j > v_i; α_i = 1 − max_j cs_ij, clipped to [0, 1], divided by max α (1 → 0.99),
 * then the logit α_i = κ(ln(α_i/(1 − α_i)) + 0.5) with κ = 1, clipped to [0, 1]. Weights α_i ·
 * sample share, normalised; α_i = 0 is low.
 */
export type FoolsGoldState = Map<string, Float64Array>;

const FOOLSGOLD_SKETCH = 4096;

export class FoolsGoldAggregator implements Aggregator<FoolsGoldState> {
  readonly name = 'foolsgold';

  initialState(): FoolsGoldState {
    return new Map();
  }

  encodeState(state: FoolsGoldState): Uint8Array {
    return encodeAgreementState({ momentum: null, references: state, lastGlobal: null });
  }

  decodeState(bytes: Uint8Array): FoolsGoldState {
    return decodeAgreementState(bytes, FOOLSGOLD_SKETCH).references;
  }

  aggregate(input: AggregationInput, state: FoolsGoldState): { result: AggregationResult; state: FoolsGoldState } {
    const ups = nonEmpty(input);
    const n = ups.length;
    const vs = ups.map((u) => toFloat64(u.delta));
    const next = new Map(state);
    for (let i = 0; i < n; i++) {
      const s = sketch(vs[i], FOOLSGOLD_SKETCH);
      const h = Float64Array.from(next.get(ups[i].clientId) ?? new Float64Array(FOOLSGOLD_SKETCH));
      for (let k = 0; k < h.length; k++) h[k] += s[k];
      next.set(ups[i].clientId, h);
    }
    // one history per update (a client with two updates in one aggregation shares its history)
    const hs = ups.map((u) => next.get(u.clientId)!);
    const cs = cosineFromGram(pairwise(hs, 'dot'), n);
    const sim = (i: number, j: number) => (i === j || ups[i].clientId === ups[j].clientId ? -Infinity : cs[i * n + j]);
    const v = ups.map((_, i) => Math.max(...ups.map((__, j) => sim(i, j)), -1));
    const alpha = ups.map((_, i) => {
      let m = -1;
      for (let j = 0; j < n; j++) {
        let c = sim(i, j);
        if (c === -Infinity) continue;
        if (v[j] > v[i]) c = (c * v[i]) / v[j];
        m = Math.max(m, c);
      }
      return Math.min(1, Math.max(0, 1 - m));
    });
    const top = Math.max(...alpha);
    const wv = alpha.map((a) => {
      let x = top > 0 ? a / top : 0;
      if (x === 1) x = 0.99;
      if (x <= 0) return 0;
      return Math.min(1, Math.max(0, Math.log(x / (1 - x)) + 0.5));
    });
    const high = wv.map((x) => x > 0);
    const w = normalise(ups.map((u, i) => wv[i] * u.sampleCount), high);
    const sorted = new Map([...next].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    return { result: result(input, ups, weightedSum(vs, w), w, high), state: sorted };
  }
}
