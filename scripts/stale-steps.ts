/**
 * The testnet's learning replayed offline, to see what stale updates do to the global model
 * (docs/decisions.md, "Stale updates take a shorter step"): 6 IID clients of the embedded MNIST,
 * ϕ = 6, each update E epochs of SGD (batch B, rate η) on the client's next N samples, trained
 * from the global model τ aggregations old, τ drawn from the testnet's measured mix (τ = 0, 1, 2,
 * 3: 21 / 57 / 21 / 1 % of 546 aggregated updates in eight `bfl-node testnet` runs); equal
 * weights, as the agreement rule gave every honest update there. The step is damped as
 * core/aggregation/damping.ts does (σ = mean of (1 + τ)^(−a)), or `fresh` trains every update on
 * the current model.
 *
 *   [STALE_MIX=p0,p1,p2,p3] [STALE_LR=η] [STALE_E=E] node scripts/stale-steps.ts A [SEEDS] [ROUNDS] [fresh]
 *
 * Prints each seed's accuracy per aggregation, then the spread over aggregations 10..ROUNDS of
 * all seeds (the testnet stops at 10-13).
 */
import { Rng } from '../src/core/random.ts';
import { stalenessWeight } from '../src/core/aggregation/common.ts';
import { loadDataset, subset } from '../src/learn/data.ts';
import { initParams } from '../src/learn/model.ts';
import { partition } from '../src/learn/partition.ts';
import { ModelRuntime } from '../src/learn/runtime.ts';
import { evaluate, trainLocal } from '../src/learn/train.ts';
import { testnetDefaults } from '../src/node/testnet.ts';
import { defaultLearningConfig } from '../src/config/network.ts';

const a = Number(process.argv[2] ?? 0);
const seeds = Number(process.argv[3] ?? 30);
const rounds = Number(process.argv[4] ?? 13);
const fresh = process.argv[5] === 'fresh';
const CLIENTS = 6;
// STALE_LR and STALE_E: another η or E than the testnet's (does a gentler step do what damping does?)
const { N, B } = defaultLearningConfig;
const E = Number(process.env.STALE_E ?? defaultLearningConfig.E);
const lr = Number(process.env.STALE_LR ?? testnetDefaults.lr);
// P(τ = 0, 1, 2, 3); STALE_MIX=p0,p1,p2,p3 another (a loaded machine's runs are staler)
const MIX = (process.env.STALE_MIX ?? '0.21,0.57,0.21,0.01').split(',').map(Number);
if (MIX.length !== 4 || Math.abs(MIX.reduce((x, y) => x + y, 0) - 1) > 1e-9) throw new Error('STALE_MIX: four probabilities summing to 1');

const spec = { kind: 'mlp' as const, layers: defaultLearningConfig.layers };
const rt = await ModelRuntime.create(spec);
const data = loadDataset('mnist');
const parts = partition(data.train.y, CLIENTS, { kind: 'iid' }, 1);
const late: number[] = [];
for (let seed = 1; seed <= seeds; seed++) {
  const rng = new Rng(seed * 7777);
  const models: Float32Array[] = [initParams(spec, defaultLearningConfig.modelSeed)];
  const orders = parts.map((p) => {
    const o = [...p];
    for (let i = o.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [o[i], o[j]] = [o[j], o[i]];
    }
    return o;
  });
  const pos = parts.map(() => 0);
  const accs: number[] = [];
  for (let r = 1; r <= rounds; r++) {
    const prev = models[r - 1];
    const g = new Float64Array(prev.length);
    let sigma = 0;
    for (let c = 0; c < CLIENTS; c++) {
      const u = rng.float();
      // no update is older than the genesis model: the chain's τ is at most r − 1 (chain/aggregation.ts)
      const tau = Math.min(r - 1, fresh ? 0 : u < MIX[0] ? 0 : u < MIX[0] + MIX[1] ? 1 : u < 1 - MIX[3] ? 2 : 3);
      sigma += stalenessWeight(tau, a) / CLIENTS;
      pos[c] += N + rng.int(30); // the stream moves on while the client trains and uploads
      const idx = Array.from({ length: N }, (_, k) => orders[c][(pos[c] - N + k) % orders[c].length]);
      const lu = await trainLocal(rt, models[r - 1 - tau], subset(data.train, idx), { epochs: E, batchSize: B, lr, mu: 0, seed: seed * 1000 + r * 10 + c });
      for (let k = 0; k < g.length; k++) g[k] += lu.delta[k] / CLIENTS;
    }
    models.push(Float32Array.from(prev, (p, k) => p + sigma * g[k]));
    accs.push((await evaluate(rt, models[r], data.test)).accuracy);
  }
  late.push(...accs.slice(9));
  console.log(`seed ${seed}: ${accs.map((x) => x.toFixed(3)).join(' ')}`);
}
late.sort((x, y) => x - y);
const q = (f: number) => late[Math.min(late.length - 1, Math.floor(late.length * f))].toFixed(3);
console.log(`a ${a}${fresh ? ' fresh' : ` mix ${MIX.join('/')}`} η ${lr} E ${E}: aggregations 10-${rounds} of ${seeds} seeds: min ${q(0)} p10 ${q(0.1)} median ${q(0.5)} max ${late.at(-1)!.toFixed(3)}; below 0.85: ${late.filter((x) => x < 0.85).length}/${late.length}`);
process.exit(0);
