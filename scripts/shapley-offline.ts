// Offline study of the Shapley reference and of reward rules (issue 11) on a dump of
// scripts/shapley-dump.ts: every aggregation's exact Shapley values under several games
// (coalition model = previous + equal mean | sample-weighted mean | fixed 1/n share of its members'
// updates; utility = test accuracy | −test cross-entropy), cached in DUMP/values-*.json, and the
// Spearman correlation of each game's cumulative values with the rewards of the aggregator replayed
// over the same inputs (AGREEMENT-OPTIONS-JSON: options of the default rule to try):
//   [FIRST=K] npx node scripts/shapley-offline.ts DUMPDIR [AGREEMENT-OPTIONS-JSON]
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgreementAggregator } from '../src/core/aggregation/agreement.ts';
import { fromHex } from '../src/core/bytes.ts';
import { loadDataset } from '../src/learn/data.ts';
import { ModelRuntime } from '../src/learn/runtime.ts';
import { evaluate } from '../src/learn/train.ts';
import { spearman } from '../src/experiments/report.ts';
import { addShapley, firstAggregations } from './dumps.ts';

const [dir, optsS] = process.argv.slice(2);
const first = firstAggregations();
const rounds = readdirSync(dir).filter((d) => /^\d+$/.test(d)).sort().slice(0, first).map((d) => {
  const meta = JSON.parse(readFileSync(join(dir, d, 'meta.json'), 'utf8'));
  const raw = readFileSync(join(dir, d, 'deltas.f32'));
  const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const prevRaw = readFileSync(join(dir, d, 'previous.f32'));
  const previous = new Float32Array(prevRaw.buffer.slice(prevRaw.byteOffset, prevRaw.byteOffset + prevRaw.byteLength));
  const ups = meta.updates.map((u: { clientId: string; digest: string; samples: number; share: number }, i: number) => ({ ...u, delta: all.slice(i * meta.dim, (i + 1) * meta.dim) }));
  return { name: d, meta, previous, ups };
});
const data = loadDataset('mnist');
// GAMES=equal,samples,fixed (default equal,samples: the fixed-share game is slow and was studied once)
const games = (process.env.GAMES ?? 'equal,samples').split(',') as ('equal' | 'samples' | 'fixed')[];
const cache = join(dir, 'values.json');
type Values = Record<string, Record<string, { acc: number[]; loss: number[] }>>; // round → game → per mask
const values: Values = existsSync(cache) ? JSON.parse(readFileSync(cache, 'utf8')) : {};
let runtime: ModelRuntime | undefined;
for (const r of rounds) {
  values[r.name] ??= {};
  const n = r.ups.length;
  const dim = r.previous.length;
  const total = r.ups.reduce((s: number, u: { samples: number }) => s + u.samples, 0);
  for (const game of games) {
    if (values[r.name][game]) continue;
    if (game === 'samples' && r.ups.every((u: { samples: number }) => u.samples === r.ups[0].samples)) {
      values[r.name][game] = values[r.name].equal;
      continue;
    }
    runtime ??= await ModelRuntime.create({ kind: 'mlp', layers: [784, 200, 10] }, { threads: 1 });
    const acc: number[] = [];
    const loss: number[] = [];
    for (let mask = 0; mask < 1 << n; mask++) {
      const members = r.ups.filter((_: unknown, i: number) => mask & (1 << i));
      const w = members.map((u: { samples: number }) => (game === 'equal' ? 1 / members.length : game === 'samples' ? u.samples / members.reduce((s: number, m: { samples: number }) => s + m.samples, 0) : u.samples / total));
      const model = Float32Array.from(r.previous);
      if (members.length) {
        const sum = new Float64Array(dim);
        members.forEach((u: { delta: Float32Array }, m: number) => {
          for (let k = 0; k < dim; k++) sum[k] += w[m] * u.delta[k];
        });
        for (let k = 0; k < dim; k++) model[k] = r.previous[k] + sum[k];
      }
      const ev = await evaluate(runtime, model, data.test);
      acc.push(ev.accuracy);
      loss.push(-ev.loss);
    }
    values[r.name][game] = { acc, loss };
    writeFileSync(cache, JSON.stringify(values));
    process.stderr.write(`${r.name} ${game} done\n`);
  }
}
await runtime?.close();

// replay the default rule over the same inputs: rewards per client (aggregations with and without the first)
const agg = new AgreementAggregator(optsS ? JSON.parse(optsS) : {});
let state = agg.initialState();
const reward = new Map<string, number>();
const rewardLater = new Map<string, number>();
const shap = new Map<string, number>();
let mismatch = 0;
const ids = [...new Set(rounds.flatMap((r) => r.ups.map((u: { clientId: string }) => u.clientId)))].sort((a, b) => Number(a.split('-')[1]) - Number(b.split('-')[1]));
const shareOf = new Map<string, number>(rounds.flatMap((r) => r.ups.map((u: { clientId: string; share: number }) => [u.clientId, u.share] as [string, number])));
for (const [t, r] of rounds.entries()) {
  const out = agg.aggregate({ previous: r.previous, updates: r.ups.map((u: { clientId: string; digest: string; samples: number; delta: Float32Array }) => ({ clientId: u.clientId, digest: fromHex(u.digest), sampleCount: u.samples, staleness: 0, delta: u.delta })), baseReward: 100_000_000n }, state);
  state = out.state;
  for (const x of out.result.rewards) {
    reward.set(x.id, (reward.get(x.id) ?? 0) + Number(x.amount) / 1e6);
    if (t > 0) rewardLater.set(x.id, (rewardLater.get(x.id) ?? 0) + Number(x.amount) / 1e6);
    if (!optsS && String(x.amount) !== r.meta.rewards[x.id]) mismatch++;
  }
  if (process.env.VERBOSE) console.log(r.name, out.result.entries.map((e, i) => `${e.clientId}:${e.high ? 'H' : 'L'}:${out.result.diagnostics.similarity?.[i]?.toFixed(2)}`).join(' '));
}
if (!optsS) console.log(`replay: ${mismatch} reward entries differ from the closed loop`);
const row = (name: string, xs: Map<string, number>) => console.log(`${name.padEnd(22)} ${ids.map((id) => (xs.get(id) ?? 0).toFixed(3).padStart(8)).join(' ')}`);
console.log(`${'client'.padEnd(22)} ${ids.map((id) => id.padStart(8)).join(' ')}`);
console.log(`${'share'.padEnd(22)} ${ids.map((id) => String(shareOf.get(id)).padStart(8)).join(' ')}`);
row('reward', reward);
for (const game of games) {
  for (const u of ['acc', 'loss'] as const) {
    for (const from of [0, 1]) {
      if (!rounds.every((r) => values[r.name][game])) continue;
      shap.clear();
      for (const r of rounds.slice(from)) {
        const v = values[r.name][game][u];
        addShapley(shap, r.ups.map((u: { clientId: string }) => u.clientId), v);
      }
      const rw = from ? rewardLater : reward;
      const rho = spearman(ids.map((id) => shap.get(id) ?? 0), ids.map((id) => rw.get(id) ?? 0));
      const q = spearman(ids.map((id) => shap.get(id) ?? 0), ids.map((id) => shareOf.get(id) ?? 0));
      row(`${game}/${u}${from ? '/2+' : ''} ρ=${rho?.toFixed(2)}`, new Map([...shap].map(([k, v]) => [k, v * (u === 'acc' ? 100 : 1)])));
      if (from === 0) console.log(`   ↑ Spearman with rewards ${rho?.toFixed(3)}, with share ${q?.toFixed(3)}`);
    }
  }
}
// How reliable is the reference itself? Its cumulative values over the first and the second half
// of the aggregations, rank-correlated (split-half), and over consecutive blocks of 12.
{
  const game = games.includes('samples') ? 'samples' : games[0];
  const cum = (rs: typeof rounds) => {
    const m = new Map<string, number>();
    for (const r of rs) addShapley(m, r.ups.map((u: { clientId: string }) => u.clientId), values[r.name][game].acc);
    return ids.map((id) => m.get(id) ?? 0);
  };
  const h = Math.floor(rounds.length / 2);
  console.log(`reference split-half: ρ(game over aggregations 1-${h}, over ${h + 1}-${rounds.length}) = ${spearman(cum(rounds.slice(0, h)), cum(rounds.slice(h)))?.toFixed(3)}`);
  const blocks: number[][] = [];
  for (let b = 0; b + 12 <= rounds.length; b += 12) blocks.push(cum(rounds.slice(b, b + 12)));
  if (blocks.length > 1) console.log(`reference over blocks of 12, each against the next: ${blocks.slice(1).map((x, b) => spearman(blocks[b], x)?.toFixed(3)).join(' ')}; first 12 against all: ${spearman(blocks[0], cum(rounds))?.toFixed(3)}`);
}
