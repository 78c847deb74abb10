// What the per-aggregation Shapley game ranks under label skew (issue 11, docs/experiments.md
// "Sixth look"): each client's label mix in its partition (the simulator's, from the same seed)
// beside its cumulative game value on a dump of scripts/shapley-dump.ts (after
// scripts/shapley-offline.ts has cached the game), and the game's Spearman correlation with the
// mix's entropy, the partition's size, its largest class share and its cosine with the whole
// training set's label counts; and the same for the reward's data × agreement part alone (the rule
// replayed with reward 'agreement': n_i·a_i, a the cosine with the client's last high update).
// The last line is a ceiling for data-free rewards (seventh look): the game against statistics of
// each client's true label mix H and size n (n·H, n·e^H, √n·e^H, log n + H), which a rule could at
// best estimate from the updates.
//   [FIRST=K] npx node scripts/label-mix.ts DUMPDIR PARTITION SEED
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addShapley, dumpNames, firstAggregations, readRound } from './dumps.ts';
import { AgreementAggregator } from '../src/core/aggregation/agreement.ts';
import { fromHex } from '../src/core/bytes.ts';
import { spearman } from '../src/experiments/report.ts';
import { loadDataset } from '../src/learn/data.ts';
import { labelCounts, parsePartition, partition } from '../src/learn/partition.ts';

const args = process.argv.slice(2);
if (args.length === 0 || args.length % 3 !== 0) throw new Error('usage: [FIRST=K] label-mix.ts DUMPDIR PARTITION SEED [DUMPDIR PARTITION SEED ...]');
const data = loadDataset('mnist');
const f = (x: number | null) => (x === null ? '-' : x.toFixed(3));
const studied: { g: number[]; size: number[]; entropy: number[] }[] = [];
for (let a = 0; a < args.length; a += 3) studied.push(study(args[a], args[a + 1], args[a + 2]));

function study(dir: string, part: string, seedS: string): { g: number[]; size: number[]; entropy: number[] } {
  const run = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
  const counts = labelCounts(data.train.y, partition(data.train.y, run.clients, parsePartition(part), Number(seedS)));
  const values = JSON.parse(readFileSync(join(dir, 'values.json'), 'utf8'));
  const game = new Map<string, number>();
  const agreementPaid = new Map<string, number>();
  const agg = new AgreementAggregator({ reward: 'agreement' });
  let state = agg.initialState();
  const names = dumpNames(dir).slice(0, firstAggregations());
  for (const d of names) {
    const r = readRound(dir, d);
    const ups = r.meta.updates;
    const v = values[d].samples ?? values[d].equal;
    addShapley(game, ups.map((u) => u.clientId), v.acc);
    const out = agg.aggregate({ previous: r.previous, updates: ups.map((u, i) => ({ clientId: u.clientId, digest: fromHex(u.digest), sampleCount: u.samples, staleness: 0, delta: r.delta(i) })), baseReward: 100_000_000n }, state);
    state = out.state;
    for (const x of out.result.rewards) agreementPaid.set(x.id, (agreementPaid.get(x.id) ?? 0) + Number(x.amount) / 1e8);
  }
  const na = counts.map((_, c) => agreementPaid.get(`client-${c + 1}`) ?? 0);
  const g = counts.map((_, c) => game.get(`client-${c + 1}`) ?? 0);
  const size = counts.map((h) => h.reduce((a, b) => a + b, 0));
  const entropy = counts.map((h, c) => -h.reduce((s, x) => (x ? s + (x / size[c]) * Math.log(x / size[c]) : s), 0));
  const maxShare = counts.map((h, c) => Math.max(...h) / size[c]);
  const all = counts[0].map((_, k) => counts.reduce((s, h) => s + h[k], 0));
  const cosAll = counts.map((h) => h.reduce((s, x, k) => s + x * all[k], 0) / Math.sqrt(h.reduce((s, x) => s + x * x, 0) * all.reduce((s, x) => s + x * x, 0)));
  console.log(`${dir}: ${part}, seed ${seedS}, ${names.length} aggregations`);
  counts.forEach((h, c) => console.log(`client-${c + 1} game ×100 ${(g[c] * 100).toFixed(1).padStart(7)}  entropy ${entropy[c].toFixed(2)}  samples ${String(size[c]).padStart(5)}  largest class ${maxShare[c].toFixed(2)}  cos with all ${cosAll[c].toFixed(2)}  n·a paid ${na[c].toFixed(2)}  labels ${h.join(',')}`));
  console.log(`game vs entropy ${f(spearman(g, entropy))}, vs samples ${f(spearman(g, size))}, vs −largest class share ${f(spearman(g, maxShare.map((x) => -x)))}, vs cos with all ${f(spearman(g, cosAll))}`);
  console.log(`n·a paid vs entropy ${f(spearman(na, entropy))}, vs samples ${f(spearman(na, size))}, vs the game ${f(spearman(na, g))}`);
  const stats: [string, number[]][] = [
    ['n·H', size.map((n, c) => n * entropy[c])],
    ['n·e^H', size.map((n, c) => n * Math.exp(entropy[c]))],
    ['√n·e^H', size.map((n, c) => Math.sqrt(n) * Math.exp(entropy[c]))],
    ['log n + H', size.map((n, c) => Math.log(n) + entropy[c])],
  ];
  // the best any reward that grows with both n and H can do: the rankings of the clients that put
  // no client below one with fewer samples and a narrower mix (the linear extensions of that
  // partial order; 8! orders at most), the best Spearman with the game among them
  const dominates = (a: number, b: number) => size[a] >= size[b] && entropy[a] >= entropy[b] && (size[a] > size[b] || entropy[a] > entropy[b]);
  let best = -Infinity;
  const order: number[] = [];
  const used = new Array(size.length).fill(false);
  const extend = () => {
    if (order.length === size.length) {
      const rank = new Array(size.length);
      order.forEach((c, i) => (rank[c] = size.length - i)); // first in order: the highest reward
      best = Math.max(best, spearman(g, rank) ?? -Infinity);
      return;
    }
    for (let c = 0; c < size.length; c++) {
      // c comes next only if no client still unplaced dominates it
      if (used[c] || used.some((u, d) => !u && d !== c && dominates(d, c))) continue;
      used[c] = true;
      order.push(c);
      extend();
      order.pop();
      used[c] = false;
    }
  };
  if (size.length <= 10) extend();
  console.log(`ceiling: the game vs ${stats.map(([k, v]) => `${k} ${f(spearman(g, v))}`).join(', ')}; the best reward that grows with both n and H ${f(best)}`);
  return { g, size, entropy };
}

// with several dumps: one reward of the family log n + b·H (b from 0 to 4 by 0.25) for all of them,
// the b whose lowest Spearman with the game over the dumps is highest (tuned on these dumps: an
// optimistic figure for a fixed rule)
if (studied.length > 1) {
  let bestB = 0;
  let bestMin = -Infinity;
  let bestAll: number[] = [];
  for (let q = 0; q <= 16; q++) {
    const b = q / 4;
    const rs = studied.map(({ g, size, entropy }) => spearman(g, size.map((n, c) => Math.log(n) + b * entropy[c])) ?? -Infinity);
    if (Math.min(...rs) > bestMin) [bestB, bestMin, bestAll] = [b, Math.min(...rs), rs];
  }
  console.log(`one rule for all ${studied.length} dumps: log n + ${bestB}·H, Spearman with the game ${bestAll.map(f).join(' / ')} (lowest ${f(bestMin)})`);
}
