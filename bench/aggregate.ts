/**
 * Scoring + aggregation time (`bfl-node bench aggregate`): n updates of dimension D through
 * the default BFL-MEC (Gram matrix, sketches, agreement, DBSCAN, weights, weighted sum), the median of
 * several runs, and the share taken by the pairwise matrix, which is O(n² · D) and dominates.
 * Default size: 100 updates of the default MLP (784-200-10: 159,010 parameters).
 */
import { createHash } from 'node:crypto';
import { type AggregatorName, createAggregator } from '../src/core/aggregation/index.ts';
import type { UpdateInput } from '../src/core/aggregation/types.ts';
import { mean, pairwise, toFloat64 } from '../src/core/aggregation/vectors.ts';
import { Rng } from '../src/core/random.ts';
import { median } from './stats.ts';

export const DEFAULT_MLP_PARAMS = 784 * 200 + 200 + 200 * 10 + 10;

export interface AggregateBench {
  clients: number;
  dimension: number;
  ms: number; // median total
  pairwiseMs: number; // median of the Gram matrix alone
  pairwiseShare: number;
  runs: number;
}

function updates(n: number, dim: number, seed = 1): UpdateInput[] {
  const rng = new Rng(seed);
  const dir = Float32Array.from({ length: dim }, () => rng.normal());
  return Array.from({ length: n }, (_, i) => {
    const delta = Float32Array.from(dir, (x) => (i % 10 < 8 ? x : -x) * 0.01 + rng.normal() * 0.005);
    return { clientId: `c${i}`, digest: createHash('sha256').update(`${seed}/${i}`).digest(), delta, sampleCount: 100, staleness: 0 };
  });
}

export function benchAggregate(opts: { clients?: number; dim?: number; runs?: number; aggregator?: AggregatorName } = {}): AggregateBench {
  const n = opts.clients ?? 100;
  const dim = opts.dim ?? DEFAULT_MLP_PARAMS;
  const runs = opts.runs ?? 5;
  const ups = updates(n, dim);
  const previous = new Float32Array(dim);
  // the default rule (issue 11) with a state from one earlier aggregation: every client has a
  // history and the momentum exists, the most work a state can ask for
  const agg = createAggregator(opts.aggregator ?? 'bfl-mec');
  const state = agg.aggregate({ previous, updates: updates(n, dim, 2), baseReward: 100_000_000n }, agg.initialState()).state;
  const total: number[] = [];
  const pw: number[] = [];
  for (let r = 0; r < runs + 1; r++) {
    let t = performance.now();
    agg.aggregate({ previous, updates: ups, baseReward: 100_000_000n }, state);
    const totalMs = performance.now() - t;
    const vs = ups.map((u) => toFloat64(u.delta));
    const points = [...vs, mean(vs)];
    t = performance.now();
    pairwise(points, 'dot');
    const pwMs = performance.now() - t;
    if (r === 0) continue; // warm-up
    total.push(totalMs);
    pw.push(pwMs);
  }
  const ms = median(total);
  const pairwiseMs = median(pw);
  return { clients: n, dimension: dim, ms: Number(ms.toFixed(1)), pairwiseMs: Number(pairwiseMs.toFixed(1)), pairwiseShare: Number((pairwiseMs / ms).toFixed(3)), runs };
}
