// Dump every aggregation's real updates of a short simulator run for offline rule evaluation (issue 11):
//   npx node scripts/scoring-dump.ts OUTDIR iid|shards CLIENTS AGGREGATIONS [ATTACK FRACTION]
// Dump every aggregation's real updates of a short simulator run (offline rule evaluation).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FedAvgAggregator } from '../src/core/aggregation/baselines.ts';
import { toHex } from '../src/core/bytes.ts';
import { runSimulation } from '../src/sim/harness.ts';
import { parseAttack } from '../src/experiments/attacks.ts';
import { attacksOf } from '../src/experiments/setup.ts';

const [out, part, clientsS, aggsS, attackS, fracS] = process.argv.slice(2);
const clients = Number(clientsS), aggs = Number(aggsS);
const attack = parseAttack(attackS ?? 'none');
const k = Math.round(Number(fracS ?? 0) * clients);
mkdirSync(out, { recursive: true });
const seen = new Set<string>();
let n = 0;
const orig = FedAvgAggregator.prototype.aggregate;
FedAvgAggregator.prototype.aggregate = function (input, state) {
  const key = input.updates.map((u) => toHex(u.digest) + u.clientId).sort().join();
  if (!seen.has(key)) {
    seen.add(key);
    const dir = join(out, String(n++).padStart(3, '0'));
    mkdirSync(dir);
    const dim = input.previous.length;
    const buf = new Float32Array(dim * input.updates.length);
    input.updates.forEach((u, i) => buf.set(u.delta, i * dim));
    writeFileSync(join(dir, 'deltas.f32'), new Uint8Array(buf.buffer));
    writeFileSync(join(dir, 'previous.f32'), new Uint8Array(input.previous.buffer.slice(0)));
    writeFileSync(join(dir, 'meta.json'), JSON.stringify({ dim, updates: input.updates.map((u) => ({ clientId: u.clientId, digest: toHex(u.digest), samples: u.sampleCount, staleness: u.staleness, attacker: Number(u.clientId.split('-')[1]) <= k })) }));
  }
  return orig.call(this, input, state);
};
const t0 = Date.now();
const r = await runSimulation({
  seed: 1, miners: 2, clients, phi: Math.min(clients, 10),
  learning: { N: 100, E: 5, B: 10, lr: 0.01, rate: 10, partition: part === 'iid' ? { kind: 'iid' } : { kind: 'shards', shardsPerClient: 2 } },
  aggregation: { aggregator: 'fedavg' }, meanBlockMs: 2000, aggregations: aggs,
  behaviourOf: attacksOf((c) => (c < k ? attack : { kind: 'none' })),
  onRound: (x) => process.stderr.write(`round ${x.round} acc ${x.accuracy.toFixed(4)} n=${x.updates.length} ${((Date.now() - t0) / 1000).toFixed(0)}s\n`),
});
writeFileSync(join(out, 'rounds.json'), JSON.stringify(r.rounds.map((x) => ({ round: x.round, accuracy: x.accuracy, digests: x.updates.map((u) => u.digest) }))));
console.log('done', n, 'aggregations dumped', r.wallSeconds.toFixed(1), 's');
