// Dump every canonical aggregation of a rewards-quality run (issue 11: the Shapley reference) for
// offline study of the Shapley game and of reward rules, with the aggregator's inputs:
//   npx node scripts/shapley-dump.ts OUTDIR PARTITION CLIENTS AGGREGATIONS quality|sizes SHARES
// e.g. OUTDIR shards 8 12 quality 0,0.2,0.5   or   OUTDIR dirichlet:0.5 8 12 quality 0
// SEED (default 1): the run's seed (partition, streams, clients' training), as --seed.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgreementAggregator } from '../src/core/aggregation/agreement.ts';
import { toHex } from '../src/core/bytes.ts';
import { parsePartition } from '../src/learn/partition.ts';
import { runSimulation } from '../src/sim/harness.ts';
import { attackRound } from '../src/experiments/attacks.ts';

const [out, part, clientsS, aggsS, mode, sharesS] = process.argv.slice(2);
const clients = Number(clientsS);
const shares = sharesS.split(',').map(Number);
const share = (c: number) => shares[c % shares.length];
mkdirSync(out, { recursive: true });
const inputs = new Map<string, { previous: Float32Array; updates: { clientId: string; digest: string; samples: number; delta: Float32Array }[] }>();
const orig = AgreementAggregator.prototype.aggregate;
AgreementAggregator.prototype.aggregate = function (input, state) {
  const key = input.updates.map((u) => toHex(u.digest) + u.clientId).sort().join();
  if (!inputs.has(key)) inputs.set(key, { previous: input.previous, updates: input.updates.map((u) => ({ clientId: u.clientId, digest: toHex(u.digest), samples: u.sampleCount, delta: u.delta })) });
  return orig.call(this, input, state);
};
const t0 = Date.now();
const seed = Number(process.env.SEED ?? 1);
const r = await runSimulation({
  seed, miners: 2, clients, phi: Math.min(clients, 10),
  learning: { N: 100, E: 5, B: 10, lr: 0.01, rate: 10, partition: parsePartition(part) },
  aggregation: { aggregator: 'bfl-mec' }, meanBlockMs: 2000, aggregations: Number(aggsS),
  behaviourOf: (c, _round, honest) =>
    mode === 'sizes' ? { ...attackRound({ kind: 'none' }, honest), sampleShare: share(c) } : attackRound(share(c) > 0 ? { kind: 'noisy-labels', p: share(c) } : { kind: 'none' }, honest),
  onRound: (x) => process.stderr.write(`round ${x.round} acc ${x.accuracy.toFixed(4)} n=${x.updates.length} ${((Date.now() - t0) / 1000).toFixed(0)}s\n`),
});
let n = 0;
for (const x of r.rounds) {
  const key = x.updates.map((u) => u.digest + u.clientId).sort().join();
  const inp = inputs.get(key);
  if (!inp) throw new Error(`round ${x.round}: inputs not captured`);
  const dir = join(out, String(n++).padStart(3, '0'));
  mkdirSync(dir, { recursive: true });
  const dim = inp.previous.length;
  const buf = new Float32Array(dim * inp.updates.length);
  inp.updates.forEach((u, i) => buf.set(u.delta, i * dim));
  writeFileSync(join(dir, 'deltas.f32'), new Uint8Array(buf.buffer));
  writeFileSync(join(dir, 'previous.f32'), new Uint8Array(inp.previous.buffer.slice(inp.previous.byteOffset, inp.previous.byteOffset + inp.previous.byteLength)));
  writeFileSync(join(dir, 'meta.json'), JSON.stringify({ round: x.round, accuracy: x.accuracy, rewards: x.rewards, dim, updates: inp.updates.map((u) => ({ clientId: u.clientId, digest: u.digest, samples: u.samples, share: share(Number(u.clientId.split('-')[1]) - 1) })) }));
}
writeFileSync(join(out, 'run.json'), JSON.stringify({ part, clients, mode, shares, seed, wallSeconds: r.wallSeconds }));
console.log('done', n, 'aggregations dumped', r.wallSeconds.toFixed(1), 's');
