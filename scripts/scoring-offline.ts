// Offline rule evaluation (issue 11): replay a dump of scripts/scoring-dump.ts through an aggregator
// with synthesised attacks and 30 % rotating attackers:
//   npx node scripts/scoring-offline.ts DUMPDIR AGGREGATOR sign-flip|scale|noise|ipm|alie|global|copycat FRACTION [static|rotate] [AGREEMENT-OPTIONS-JSON]

import { createAggregator, type AggregatorName } from '../src/core/aggregation/index.ts';
import { Rng } from '../src/core/random.ts';
import { sha256 } from '../src/core/hash.ts';
import { loadDumps } from './dumps.ts';
const [dir, aggName, attack, fracS, rotateS, optsS] = process.argv.slice(2);
const dumps = loadDumps(dir);
const agg = createAggregator(aggName as AggregatorName, { agreement: optsS ? JSON.parse(optsS) : undefined });
let state = agg.initialState();
const rng = new Rng(9);
const clients = [...new Set(dumps[0].ups.map((u) => u.clientId))];
const k = Math.round(Number(fracS) * clients.length);
let attackers = new Set(rng.shuffle([...clients]).slice(0, k));
const rotate = rotateS !== 'static';
let prevG: Float32Array | undefined;
let lastHonest = new Map<string, Float32Array>();
let D = 0, A = 0, FP = 0, H = 0, late = [0, 0], pay = [0, 0];
for (const d of dumps) {
  const hon = d.ups.filter((u) => !u.attacker);
  const n = hon.length;
  const mean = new Float32Array(d.dim), sq = new Float32Array(d.dim);
  for (const h of hon) for (let j = 0; j < d.dim; j++) { mean[j] += h.delta[j] / n; sq[j] += (h.delta[j] * h.delta[j]) / n; }
  const z = 1.0;
  const updates = hon.map((u) => {
    let v = u.delta;
    const bad = attackers.has(u.clientId);
    if (bad) {
      if (attack === 'sign-flip') v = v.map((x) => -x);
      else if (attack === 'noise') v = v.map(() => 0.001 * rng.normal());
      else if (attack === 'ipm') v = mean.map((x) => -0.5 * x);
      else if (attack === 'alie') v = mean.map((m, j) => m - z * Math.sqrt(Math.max(0, sq[j] - m * m)));
      else if (attack === 'scale') v = v.map((x) => 10 * x);
      else if (attack === 'global') v = prevG ?? v;
      else if (attack === 'copycat') { const others = [...lastHonest.values()]; v = others.length ? others[rng.int(others.length)] : v; }
    }
    return { clientId: u.clientId, digest: sha256(new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength))), delta: v, sampleCount: u.samples, staleness: 0, bad };
  });
  const out = agg.aggregate({ previous: d.previous, updates, baseReward: 100_000_000n }, state);
  state = out.state;
  const r = out.result;
  const byDigest = new Map(updates.map((u) => [Buffer.from(u.digest).toString('hex') + u.clientId, u]));
  let det = 0, att = 0, fp = 0, h = 0;
  const rew = new Map(r.rewards.map((x) => [x.id, Number(x.amount)]));
  for (const e of r.entries) {
    const u = byDigest.get(Buffer.from(e.updateDigest).toString('hex') + e.clientId)!;
    if (u.bad) { att++; if (!e.high) det++; pay[1] += rew.get(e.clientId) ?? 0; } else { h++; if (!e.high) fp++; pay[0] += rew.get(e.clientId) ?? 0; }
  }
  D += det; A += att; FP += fp; H += h;
  if (d.round >= dumps.length - 10) { late[0] += det; late[1] += att; }
  const reasons = [String((r.diagnostics as any).sharedReference ?? "reliable"), ...(r.diagnostics.reasons ?? []).filter(Boolean)];
  if (process.env.VERBOSE) r.entries.forEach((e, i) => { const u = byDigest.get(Buffer.from(e.updateDigest).toString('hex') + e.clientId)!; console.log(`  ${e.clientId} ${u.bad ? 'BAD' : 'ok '} ${e.high ? 'high' : 'low '} ${r.diagnostics.references?.[i]} ${r.diagnostics.similarity?.[i]?.toFixed(3)} ${r.diagnostics.reasons?.[i]}`); });
  console.log(`r${d.round} det ${det}/${att} fp ${fp}/${h} ${reasons.slice(0, 4).join('|')}`);
  for (const u of updates) if (!u.bad) lastHonest.set(u.clientId, u.delta);
  const nextD = dumps[dumps.indexOf(d) + 1];
  prevG = r.model.map((x, j) => x - d.previous[j]);
  if (rotate) for (const e of r.entries) {
    const u = byDigest.get(Buffer.from(e.updateDigest).toString('hex') + e.clientId)!;
    if (u.bad && !e.high) { attackers.delete(u.clientId); const hs = clients.filter((c) => !attackers.has(c) && c !== u.clientId); attackers.add(hs[rng.int(hs.length)]); }
  }
}
console.log(`TOTAL ${aggName} ${attack}: detection ${(D / A).toFixed(3)} fp ${(FP / H).toFixed(3)} last10 ${(late[0] / late[1]).toFixed(3)} attackerPay ${(pay[1] / (pay[0] + pay[1])).toFixed(4)}`);
