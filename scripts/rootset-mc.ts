// Can the root-set game (scripts/rootset-offline.ts, candidate "logit-avg loss game") scale to
// 100 updates per aggregation? Its Shapley values by permutation sampling (K seeded permutations,
// each prefix's logits the sample-weighted mean of its members'), on a dump of scripts/shapley-dump.ts
// or scripts/scoring-dump.ts: per aggregation the time, and over the run the Spearman correlation of
// each client's cumulative value between two independent seeds and, at n ≤ 12, with the exact values.
//   npx node scripts/rootset-mc.ts DUMPDIR [K]
import { dumpNames, readRound } from './dumps.ts';
import { prepareRootSet, rootLogits, selectRootIndices } from '../src/core/aggregation/rootset.ts';
import { Rng } from '../src/core/random.ts';
import { loadDataset, subset } from '../src/learn/data.ts';
import { shapleyValues, spearman } from '../src/experiments/report.ts';

const [dir, kS] = process.argv.slice(2);
const K = Number(kS ?? 100);
const data = loadDataset('mnist');
const rd = subset(data.test, selectRootIndices(data.test.y, 10, 10, 1));
const prep = prepareRootSet({ x: rd.x, y: rd.y, count: rd.n, dim: 784, classes: 10 }, [784, 200, 10]);
const R = rd.n;
const C = 10;

/** −mean cross-entropy of logits z (R × C) on the root labels. */
function value(z: Float64Array): number {
  let loss = 0;
  for (let s = 0; s < R; s++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) if (z[s * C + c] > m) m = z[s * C + c];
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp(z[s * C + c] - m);
    loss += Math.log(sum) + m - z[s * C + rd.y[s]];
  }
  return -loss / R;
}

function mcShapley(z0: Float64Array, zs: Float64Array[], w: number[], perms: number, seed: number): number[] {
  const n = zs.length;
  const rng = new Rng(seed);
  const phi = new Array<number>(n).fill(0);
  const acc = new Float64Array(z0.length);
  const z = new Float64Array(z0.length);
  const v0 = value(z0);
  for (let p = 0; p < perms; p++) {
    const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
    acc.fill(0);
    let total = 0;
    let prev = v0;
    for (const i of order) {
      total += w[i];
      for (let k = 0; k < acc.length; k++) acc[k] += w[i] * zs[i][k];
      for (let k = 0; k < z.length; k++) z[k] = acc[k] / total;
      const v = value(z);
      phi[i] += (v - prev) / perms;
      prev = v;
    }
  }
  return phi;
}

const cum = [new Map<string, number>(), new Map<string, number>(), new Map<string, number>()];
const add = (m: Map<string, number>, id: string, v: number) => m.set(id, (m.get(id) ?? 0) + v);
let exact = true;
for (const d of dumpNames(dir)) {
  const { meta, deltas: all, previous } = readRound(dir, d);
  const ups: { clientId: string; samples: number }[] = meta.updates;
  const n = ups.length;
  let t = performance.now();
  const z0 = rootLogits(prep, previous).logits;
  const zs = ups.map((_, i) => rootLogits(prep, previous, all.subarray(i * meta.dim, (i + 1) * meta.dim)).logits);
  const tLogits = performance.now() - t;
  const w = ups.map((u) => u.samples);
  t = performance.now();
  const a = mcShapley(z0, zs, w, K, 1);
  const tMc = performance.now() - t;
  const b = mcShapley(z0, zs, w, K, 2);
  ups.forEach((u, i) => {
    add(cum[0], u.clientId, a[i]);
    add(cum[1], u.clientId, b[i]);
  });
  if (n <= 12) {
    const v = new Float64Array(1 << n);
    for (let mask = 0; mask < 1 << n; mask++) {
      const z = new Float64Array(z0.length);
      let total = 0;
      for (let i = 0; i < n; i++) if (mask & (1 << i)) total += w[i];
      if (total === 0) z.set(z0);
      else for (let i = 0; i < n; i++) if (mask & (1 << i)) for (let k = 0; k < z.length; k++) z[k] += (w[i] / total) * zs[i][k];
      v[mask] = value(z);
    }
    shapleyValues(n, v).forEach((x, i) => add(cum[2], ups[i].clientId, x));
  } else exact = false;
  console.log(`${d}: ${n} updates, root-set logits ${tLogits.toFixed(0)} ms, ${K} permutations ${tMc.toFixed(0)} ms`);
}
const ids = [...cum[0].keys()];
const col = (m: Map<string, number>) => ids.map((id) => m.get(id)!);
console.log(`cumulative values, ${ids.length} clients, K = ${K}: Spearman between two permutation seeds ${spearman(col(cum[0]), col(cum[1]))?.toFixed(3)}${exact ? `, with the exact values ${spearman(col(cum[0]), col(cum[2]))?.toFixed(3)} / ${spearman(col(cum[1]), col(cum[2]))?.toFixed(3)}` : ''}`);
