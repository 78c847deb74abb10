// What the per-aggregation Shapley game ranks under label skew (issue 11, docs/experiments.md
// "Sixth look"): each client's label mix in its partition (the simulator's, from the same seed)
// beside its cumulative game value on a dump of scripts/shapley-dump.ts (after
// scripts/shapley-offline.ts has cached the game), and the game's Spearman correlation with the
// mix's entropy, the partition's size, its largest class share and its cosine with the whole
// training set's label counts; and the same for the reward's data × agreement part alone (the rule
// replayed with reward 'agreement': n_i·a_i, a the cosine with the client's last high update):
//   npx node scripts/label-mix.ts DUMPDIR PARTITION SEED
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addShapley, dumpNames, readRound } from './dumps.ts';
import { AgreementAggregator } from '../src/core/aggregation/agreement.ts';
import { fromHex } from '../src/core/bytes.ts';
import { spearman } from '../src/experiments/report.ts';
import { loadDataset } from '../src/learn/data.ts';
import { labelCounts, parsePartition, partition } from '../src/learn/partition.ts';

const [dir, part, seedS] = process.argv.slice(2);
const run = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
const data = loadDataset('mnist');
const counts = labelCounts(data.train.y, partition(data.train.y, run.clients, parsePartition(part), Number(seedS)));
const values = JSON.parse(readFileSync(join(dir, 'values.json'), 'utf8'));
const game = new Map<string, number>();
const agreementPaid = new Map<string, number>();
const agg = new AgreementAggregator({ reward: 'agreement' });
let state = agg.initialState();
for (const d of dumpNames(dir)) {
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
console.log(`${dir}: ${part}, seed ${seedS}, ${dumpNames(dir).length} aggregations`);
counts.forEach((h, c) => console.log(`client-${c + 1} game ×100 ${(g[c] * 100).toFixed(1).padStart(7)}  entropy ${entropy[c].toFixed(2)}  samples ${String(size[c]).padStart(5)}  largest class ${maxShare[c].toFixed(2)}  cos with all ${cosAll[c].toFixed(2)}  n·a paid ${na[c].toFixed(2)}  labels ${h.join(',')}`));
const f = (x: number | null) => (x === null ? '-' : x.toFixed(3));
console.log(`game vs entropy ${f(spearman(g, entropy))}, vs samples ${f(spearman(g, size))}, vs −largest class share ${f(spearman(g, maxShare.map((x) => -x)))}, vs cos with all ${f(spearman(g, cosAll))}`);
console.log(`n·a paid vs entropy ${f(spearman(na, entropy))}, vs samples ${f(spearman(na, size))}, vs the game ${f(spearman(na, g))}`);
