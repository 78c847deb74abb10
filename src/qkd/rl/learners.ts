/**
 * FedSAC (the QKD paper's Algorithm 1), DecSAC and DecPPO on the POMDP of env.ts.
 *
 * Every agent decides for its own links with one shared-shape policy (a link's observation
 * in, μ and raw log σ out), so policies can be averaged (eq. 39) and a controller can use a
 * manager's Q-networks on its own links.
 *  - FedSAC: managers run SAC on their replay (twin Q with the min-double-Q target, eq. 35;
 *    policy by eq. 36; soft target updates); controllers, which see no reward, store (s, a, s′),
 *    borrow their manager's Q-networks and improve their own policies on their own states
 *    (eq. 38); after each epoch all policies are averaged weighted by experience counts (eq. 39)
 *    and every agent continues from the average.
 *  - DecSAC: managers run SAC on their own replay only; each controller acts with its manager's
 *    current policy (it cannot learn without rewards) and its experience is never used.
 *  - DecPPO: the same split with PPO (clipped surrogate, value baseline) for the managers.
 */
import { Rng } from '../../core/random.ts';
import { LOG_STD, initMlp, mlpLayout } from './graphs.ts';
import { Adam, NetRuntime } from './nets.ts';
import { QkdEnv } from './env.ts';

export interface RlOptions {
  epochs: number;
  /** Decision slots per epoch. */
  slots: number;
  /** Gradient updates per slot for each learning agent. */
  updatesPerSlot: number;
  batch: number;
  hidden: number;
  /** §VI-A: learning rates 0.003 (Q) and 0.0001 (policy), temperature τ 0.01, discount 0.95,
   * target update 0.01, replay 20,000; all as the paper except the policy rate (see below). */
  lrQ: number;
  lrPolicy: number;
  temperature: number;
  gamma: number;
  targetUpdate: number;
  replay: number;
  /** PPO: clip range, passes over each epoch's batch, value learning rate. */
  ppoClip: number;
  ppoPasses: number;
  /** Demand level the untrained policies start at (their mean action): 1, an operator that
   * reserves little before it has learnt (0.5 would be the paper-free middle, already within
   * 5 % of the optimum on NSFNET, which makes convergence meaningless). */
  initialLevel: number;
  seed: number;
}

export const defaultRlOptions: RlOptions = {
  epochs: 100,
  slots: 10,
  // 2 updates per slot per agent: what keeps a 100-epoch run at minutes on 2 cores
  updatesPerSlot: 2,
  batch: 64,
  hidden: 64,
  lrQ: 0.003,
  // 10× the paper's 0.0001: with its rate the policies barely moved in 20 epochs here
  // (docs/experiments.md); every method gets the same rate
  lrPolicy: 0.001,
  temperature: 0.01,
  gamma: 0.95,
  targetUpdate: 0.01,
  replay: 20_000,
  ppoClip: 0.2,
  ppoPasses: 8,
  initialLevel: 1,
  seed: 1,
};

export type RlMethod = 'fedsac' | 'decsac' | 'decppo';
export const RL_METHODS: RlMethod[] = ['fedsac', 'decsac', 'decppo'];

type F32 = Float32Array;

class Replay {
  readonly s: number[][] = [];
  readonly a: number[] = [];
  readonly r: number[] = [];
  readonly s2: number[][] = [];
  private next = 0;
  private readonly cap: number;
  constructor(cap: number) {
    this.cap = cap;
  }
  get size(): number {
    return this.s.length;
  }
  add(s: number[], a: number, r: number, s2: number[]): void {
    if (this.s.length < this.cap) {
      this.s.push(s);
      this.a.push(a);
      this.r.push(r);
      this.s2.push(s2);
    } else {
      this.s[this.next] = s;
      this.a[this.next] = a;
      this.r[this.next] = r;
      this.s2[this.next] = s2;
      this.next = (this.next + 1) % this.cap;
    }
  }
  sample(rng: Rng, n: number): number[] {
    return Array.from({ length: n }, () => rng.int(this.s.length));
  }
}

interface Critic {
  q: F32[];
  target: F32[];
  opt: Adam[];
}

interface Agent {
  links: number[];
  manager: boolean;
  /** Index of the manager whose Q-networks (FedSAC) or policy (Dec*) a controller uses. */
  borrow: number;
  policy: F32;
  policyOpt: Adam;
  critic?: Critic;
  value?: F32;
  valueOpt?: Adam;
  replay: Replay;
  hist: number[][];
}

export interface EpochReport {
  epoch: number;
  cost: number;
  ratioToSip: number;
}

export interface RlRun {
  method: RlMethod;
  curve: EpochReport[];
  epochsToConverge: number | null;
  finalCostRatioToSip: number;
  seconds: number;
}

const flat = (rows: number[][]): F32 => Float32Array.from(rows.flat());
const withAction = (s: number[], a: number) => [...s, a];

/** σ of the policy head: log σ = lo + (hi − lo)(tanh(raw) + 1)/2 (graphs.ts). */
const stdOf = (raw: number) => Math.exp(LOG_STD.lo + ((LOG_STD.hi - LOG_STD.lo) * (Math.tanh(raw) + 1)) / 2);

export async function runRl(env: QkdEnv, method: RlMethod, sipCost: number, o: RlOptions, onEpoch?: (r: EpochReport) => void): Promise<RlRun> {
  const t0 = performance.now();
  const rng = new Rng(o.seed * 7919 + RL_METHODS.indexOf(method));
  const S = env.obsSize;
  const pi = new NetRuntime({ layers: [S, o.hidden, o.hidden, 2] }, 'float', 1);
  const qn = new NetRuntime({ layers: [S + 1, o.hidden, o.hidden, 1] });
  const vn = new NetRuntime({ layers: [S, o.hidden, o.hidden, 1] });
  try {
    // the same initial policy everywhere (a federation starts from one model)
    const policy0 = initMlp(pi.shape, o.seed, 0.01);
    const lastBias = mlpLayout(pi.shape).at(-1)!;
    policy0[lastBias.offset] = Math.atanh((2 * o.initialLevel) / (env.maxLevel + 1) - 1);
    const agents: Agent[] = env.agents.map((links, i) => {
      const manager = i % 2 === 0;
      const a: Agent = { links, manager, borrow: i - (i % 2), policy: Float32Array.from(policy0), policyOpt: new Adam(pi.size, o.lrPolicy), replay: new Replay(o.replay), hist: links.map(() => new Array(env.history).fill(-1)) };
      if (manager && method !== 'decppo') {
        const q = [initMlp(qn.shape, o.seed * 31 + i * 2), initMlp(qn.shape, o.seed * 31 + i * 2 + 1)];
        a.critic = { q, target: q.map((x) => Float32Array.from(x)), opt: q.map(() => new Adam(qn.size, o.lrQ)) };
      }
      if (manager && method === 'decppo') {
        a.value = initMlp(vn.shape, o.seed * 37 + i);
        a.valueOpt = new Adam(vn.size, o.lrQ);
      }
      return a;
    });
    const actingPolicy = (a: Agent) => (a.manager || method === 'fedsac' ? a.policy : agents[a.borrow].policy);

    /** Means and stds of a policy at a batch of observations. */
    const head = async (p: F32, obs: number[][]) => {
      const out = await pi.forward(p, flat(obs), obs.length);
      return obs.map((_, k) => ({ mu: out[2 * k], std: stdOf(out[2 * k + 1]) }));
    };

    const curve: EpochReport[] = [];
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const ppoData: { s: number[]; u: number; r: number; link: number; slot: number }[][] = agents.map(() => []);
      for (const a of agents) a.hist = a.links.map(() => new Array(env.history).fill(-1));
      for (let slot = 0; slot < o.slots; slot++) {
        const actions = new Array<number>(env.links.length);
        const pre = new Array<number>(env.links.length);
        const obs: number[][][] = [];
        for (const a of agents) {
          const os = a.links.map((l, k) => env.observe(l, a.hist[k]));
          obs.push(os);
          const h = await head(actingPolicy(a), os);
          a.links.forEach((l, k) => {
            const u = h[k].mu + h[k].std * rng.normal();
            pre[l] = u;
            actions[l] = Math.tanh(u);
          });
        }
        const costs = env.costs(actions);
        for (let i = 0; i < agents.length; i++) {
          const a = agents[i];
          const r = a.manager ? env.reward(i, costs) : 0;
          a.links.forEach((l, k) => {
            const next = QkdEnv.shift(a.hist[k], actions[l]);
            const s2 = env.observe(l, next);
            // controllers keep (s, a, s′) only: their reward column is never read
            if (method !== 'decppo' && (a.manager || method === 'fedsac')) a.replay.add(obs[i][k], actions[l], r, s2);
            if (method === 'decppo' && a.manager) ppoData[i].push({ s: obs[i][k], u: pre[l], r, link: k, slot });
            a.hist[k] = next;
          });
        }
        if (method !== 'decppo') {
          for (const a of agents) {
            if (!a.manager || a.replay.size < o.batch) continue;
            for (let u = 0; u < o.updatesPerSlot; u++) await sacUpdate(a, a.critic!, true);
          }
        }
      }
      if (method === 'fedsac') {
        // controllers: policy improvement with the borrowed Q-networks (eq. 38), then FedAvg (eq. 39)
        for (const a of agents) {
          if (a.manager || a.replay.size < o.batch) continue;
          for (let u = 0; u < o.updatesPerSlot * o.slots; u++) await sacUpdate(a, agents[a.borrow].critic!, false);
        }
        const total = agents.reduce((t, a) => t + a.replay.size, 0);
        const avg = new Float32Array(pi.size);
        for (const a of agents) for (let j = 0; j < avg.length; j++) avg[j] += (a.replay.size / total) * a.policy[j];
        for (const a of agents) a.policy.set(avg);
      }
      if (method === 'decppo') for (let i = 0; i < agents.length; i++) if (agents[i].manager) await ppoUpdate(agents[i], ppoData[i]);

      // evaluation: the deterministic action tanh(μ) of every link's acting policy
      const det = new Array<number>(env.links.length);
      for (const a of agents) {
        const hist = a.links.map(() => new Array(env.history).fill(-1));
        // roll the history forward to the stationary point of the deterministic policy
        for (let step = 0; step < env.history; step++) {
          const h = await head(actingPolicy(a), a.links.map((l, k) => env.observe(l, hist[k])));
          a.links.forEach((l, k) => {
            det[l] = Math.tanh(h[k].mu);
            hist[k] = QkdEnv.shift(hist[k], det[l]);
          });
        }
      }
      const cost = env.costs(det).reduce((x, y) => x + y, 0);
      const rep = { epoch, cost, ratioToSip: cost / sipCost };
      curve.push(rep);
      onEpoch?.(rep);
    }
    let conv: number | null = null;
    for (let e = curve.length - 1; e >= 0 && curve[e].ratioToSip <= 1.05; e--) conv = curve[e].epoch;
    return { method, curve, epochsToConverge: conv, finalCostRatioToSip: curve[curve.length - 1].ratioToSip, seconds: (performance.now() - t0) / 1000 };

    async function sacUpdate(a: Agent, c: Critic, trainCritic: boolean): Promise<void> {
      const B = o.batch;
      const idx = a.replay.sample(rng, B);
      const s = idx.map((j) => a.replay.s[j]);
      if (trainCritic) {
        const s2 = idx.map((j) => a.replay.s2[j]);
        const h2 = await head(a.policy, s2);
        const y = new Float32Array(B);
        const x2: number[][] = [];
        const logp2: number[] = [];
        for (let k = 0; k < B; k++) {
          const xi = rng.normal();
          const u = h2[k].mu + h2[k].std * xi;
          const act = Math.tanh(u);
          x2.push(withAction(s2[k], act));
          logp2.push(-0.5 * xi * xi - Math.log(h2[k].std) - 0.5 * Math.log(2 * Math.PI) - Math.log(1 - act * act + 1e-6));
        }
        const t1 = await qn.forward(c.target[0], flat(x2), B);
        const t2 = await qn.forward(c.target[1], flat(x2), B);
        // eq. (35): y = R + γ (min_i Q_targ,i(s′, ã′) − τ log π(ã′|s′))
        for (let k = 0; k < B; k++) y[k] = a.replay.r[idx[k]] + o.gamma * (Math.min(t1[k], t2[k]) - o.temperature * logp2[k]);
        const x = flat(idx.map((j) => withAction(a.replay.s[j], a.replay.a[j])));
        for (let i = 0; i < 2; i++) {
          const g = new Float32Array(qn.size);
          await qn.mse(c.q[i], x, y, B, g);
          c.opt[i].step(c.q[i], g);
          for (let j = 0; j < qn.size; j++) c.target[i][j] += o.targetUpdate * (c.q[i][j] - c.target[i][j]);
        }
      }
      // eq. (36)/(38): minimise mean(τ log π(ã|s) − min_i Q_i(s, ã)), ã reparameterised
      const xi = Float32Array.from({ length: B }, () => rng.normal());
      const sFlat = flat(s);
      const g = new Float32Array(pi.size);
      const first = await pi.sac(a.policy, sFlat, xi, new Float32Array(B), 0, B, g);
      const xa = flat(s.map((row, k) => withAction(row, first.action[k])));
      const q1 = await qn.inputGrad(c.q[0], xa, B);
      const q2 = await qn.inputGrad(c.q[1], xa, B);
      const gA = new Float32Array(B);
      for (let k = 0; k < B; k++) gA[k] = -(q1.y[k] <= q2.y[k] ? q1.dx[k * (S + 1) + S] : q2.dx[k * (S + 1) + S]) / B;
      await pi.sac(a.policy, sFlat, xi, gA, o.temperature / B, B, g);
      a.policyOpt.step(a.policy, g);
    }

    async function ppoUpdate(a: Agent, data: { s: number[]; u: number; r: number; link: number; slot: number }[]): Promise<void> {
      if (data.length === 0) return;
      // returns per link over the epoch's slots, bootstrapped with V at the last state
      const B = data.length;
      const sFlat = flat(data.map((d) => d.s));
      const v = await vn.forward(a.value!, sFlat, B);
      const ret = new Float32Array(B);
      const byLink = new Map<number, number[]>();
      data.forEach((d, k) => byLink.set(d.link, [...(byLink.get(d.link) ?? []), k]));
      for (const ks of byLink.values()) {
        let G = v[ks[ks.length - 1]];
        for (let j = ks.length - 1; j >= 0; j--) {
          G = data[ks[j]].r + o.gamma * G;
          ret[ks[j]] = G;
        }
      }
      const adv = Float32Array.from(ret, (G, k) => G - v[k]);
      const mean = adv.reduce((x, y) => x + y, 0) / B;
      const sd = Math.sqrt(adv.reduce((x, y) => x + (y - mean) ** 2, 0) / B) || 1;
      for (let k = 0; k < B; k++) adv[k] = (adv[k] - mean) / sd;
      const u = Float32Array.from(data.map((d) => d.u));
      const g = new Float32Array(pi.size);
      const old = await pi.ppo(a.policy, sFlat, u, new Float32Array(B), new Float32Array(B), o.ppoClip, 0, B, g);
      const logpOld = Float32Array.from(old.logp);
      for (let pass = 0; pass < o.ppoPasses; pass++) {
        await pi.ppo(a.policy, sFlat, u, logpOld, adv, o.ppoClip, 0, B, g);
        a.policyOpt.step(a.policy, g);
        const gv = new Float32Array(vn.size);
        await vn.mse(a.value!, sFlat, ret, B, gv);
        a.valueOpt!.step(a.value!, gv);
      }
    }
  } finally {
    await pi.close();
    await qn.close();
    await vn.close();
  }
}
