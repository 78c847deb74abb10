import { afterAll, describe, expect, it, vi } from 'vitest';
import { Rng } from '../../src/core/random.ts';
import { initMlp } from '../../src/qkd/rl/graphs.ts';
import { Adam, NetRuntime } from '../../src/qkd/rl/nets.ts';
import { inThreadSolver } from '../../src/qkd/lp.ts';
import { paperInstance, solveSip } from '../../src/qkd/plan.ts';
import { QkdEnv } from '../../src/qkd/rl/env.ts';
import { defaultRlOptions, runRl } from '../../src/qkd/rl/learners.ts';
import { main } from '../../src/cli/main.ts';
import { mesh } from '../helpers/qkd.ts';

/** Central differences of f at p along every coordinate (double precision). */
async function numericGrad(p: Float64Array, f: (q: Float64Array) => Promise<number>, h = 1e-6): Promise<Float64Array> {
  const g = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) {
    const q = Float64Array.from(p);
    q[i] = p[i] + h;
    const up = await f(q);
    q[i] = p[i] - h;
    g[i] = (up - (await f(q))) / (2 * h);
  }
  return g;
}

const rand = (rng: Rng, n: number, scale = 1) => Float64Array.from({ length: n }, () => (2 * rng.float() - 1) * scale);
const maxRel = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(1e-3, Math.abs(a[i]) + Math.abs(b[i])));
  return m;
};

const nets: NetRuntime[] = [];
const net = (layers: number[], actions = 0) => {
  const n = new NetRuntime({ layers }, 'double', actions);
  nets.push(n);
  return n;
};
afterAll(async () => {
  for (const n of nets) await n.close();
});

describe('RL graphs: gradients against finite differences', () => {
  const B = 5;
  it('critic regression (½ MSE)', async () => {
    const rng = new Rng(1);
    const q = net([4, 6, 5, 1]);
    const p = Float64Array.from(initMlp(q.shape, 2));
    const x = rand(rng, B * 4);
    const t = rand(rng, B);
    const g = new Float64Array(q.size);
    await q.mse(p, x, t, B, g);
    const num = await numericGrad(p, (pp) => q.mse(pp, x, t, B, new Float64Array(q.size)));
    expect(maxRel(g, num)).toBeLessThan(1e-5);
  });

  it('dQ/da: the critic\'s input gradient', async () => {
    const rng = new Rng(3);
    const q = net([3, 7, 1]);
    const p = Float64Array.from(initMlp(q.shape, 4));
    const x = rand(rng, B * 3);
    const { dx } = await q.inputGrad(p, x, B);
    const num = await numericGrad(x, async (xx) => {
      const y = await q.forward(p, xx, B);
      let sum = 0;
      for (const v of y) sum += v;
      return sum;
    });
    expect(maxRel(dx, num)).toBeLessThan(1e-5);
  });

  it('SAC actor loss coef·Σ log π + Σ gA·ã through the reparameterised squashed Gaussian', async () => {
    const rng = new Rng(5);
    const A = 2;
    const pi = net([3, 8, 2 * A], A);
    const p = Float64Array.from(initMlp(pi.shape, 6));
    const s = rand(rng, B * 3);
    const xi = rand(rng, B * A, 1.5);
    const gA = rand(rng, B * A, 0.7);
    const g = new Float64Array(pi.size);
    const r = await pi.sac(p, s, xi, gA, 0.3, B, g);
    expect(r.action.every((a) => Math.abs(a) < 1)).toBe(true);
    const num = await numericGrad(p, async (pp) => (await pi.sac(pp, s, xi, gA, 0.3, B, new Float64Array(pi.size))).loss);
    expect(maxRel(g, num)).toBeLessThan(1e-5);
  });

  it('PPO clipped surrogate with entropy bonus', async () => {
    const rng = new Rng(7);
    const A = 1;
    const pi = net([4, 6, 2 * A], A);
    const p = Float64Array.from(initMlp(pi.shape, 8));
    const s = rand(rng, B * 4);
    const u = rand(rng, B * A);
    const adv = rand(rng, B);
    const first = await pi.ppo(p, s, u, new Float64Array(B), adv, 0.2, 0.01, B, new Float64Array(pi.size));
    // old log-probabilities near the current ones, some ratios inside and some outside the clip range
    const logpOld = Float64Array.from(first.logp, (v, i) => v + [0.05, -0.5, 0.3, -0.02, 0.6][i]);
    const g = new Float64Array(pi.size);
    await pi.ppo(p, s, u, logpOld, adv, 0.2, 0.01, B, g);
    const num = await numericGrad(p, async (pp) => (await pi.ppo(pp, s, u, logpOld, adv, 0.2, 0.01, B, new Float64Array(pi.size))).loss);
    expect(maxRel(g, num)).toBeLessThan(1e-5);
  });
});

describe('the POMDP of §V-A', () => {
  it('its optimum is the SIP optimum with every request on its shortest path', async () => {
    const inst = paperInstance(mesh, { requests: 15, scenarios: 8, seed: 4 });
    const env = new QkdEnv(inst);
    const fixed = await solveSip({ ...inst, paths: 1 }, inThreadSolver);
    expect(env.optimalCost).toBeCloseTo(fixed.totalCost, 4);
    // every link is decided by exactly one controller
    expect(env.agents.flat().sort((a, b) => a - b)).toEqual(env.links.map((_, i) => i));
  });

  it('rewards are normalised costs in (0, 1], 1 at the optimal reservation', () => {
    const inst = paperInstance(mesh, { requests: 15, scenarios: 8, seed: 4 });
    const env = new QkdEnv(inst);
    const low = env.costs(env.links.map(() => -1));
    for (let m = 0; m < env.agents.length; m++) {
      const r = env.reward(m, low);
      expect(r).toBeGreaterThan(0);
      expect(r).toBeLessThanOrEqual(1);
    }
    // the action whose level is the newsvendor optimum of each link gives reward 1
    const best = env.links.map((L) => {
      let a = -1;
      let c = Infinity;
      for (let lv = 0; lv <= env.maxLevel; lv++) {
        const cost = env.linkCost(L, 3 * lv * L.requests);
        if (cost < c) [c, a] = [cost, (2 * lv) / (env.maxLevel + 1) - 1];
      }
      return a;
    });
    const opt = env.costs(best);
    for (let m = 0; m < env.agents.length; m++) expect(env.reward(m, opt)).toBeCloseTo(1, 9);
  });
});

describe('learners', () => {
  it('Adam finds the minimum of a quadratic', () => {
    const p = Float32Array.of(3, -2);
    const opt = new Adam(2, 0.1);
    for (let i = 0; i < 500; i++) opt.step(p, Float32Array.of(2 * (p[0] - 1), 2 * (p[1] + 0.5)));
    expect(p[0]).toBeCloseTo(1, 2);
    expect(p[1]).toBeCloseTo(-0.5, 2);
  });

  it('FedSAC, DecSAC and DecPPO run seeded: the same seed gives the same curve', async () => {
    const inst = paperInstance(mesh, { requests: 10, scenarios: 6, seed: 2 });
    const env = new QkdEnv(inst);
    const sip = (await solveSip(inst, inThreadSolver)).totalCost;
    const o = { ...defaultRlOptions, epochs: 2, slots: 4, batch: 8, hidden: 8 };
    for (const m of ['fedsac', 'decsac', 'decppo'] as const) {
      const a = await runRl(env, m, sip, o);
      const b = await runRl(env, m, sip, o);
      expect(a.curve).toHaveLength(2);
      expect(a.curve.map((c) => c.cost)).toEqual(b.curve.map((c) => c.cost));
      for (const c of a.curve) expect(c.ratioToSip).toBeGreaterThanOrEqual(1 - 1e-9);
    }
  });

  it('experiment fedsac: bad flags are usage errors', async () => {
    const e = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await main(['experiment', 'fedsac', '--topology', 'mars'])).toBe(2);
      expect(await main(['experiment', 'fedsac', '--methods', 'fedsac,dqn'])).toBe(2);
    } finally {
      e.mockRestore();
    }
  });
});
