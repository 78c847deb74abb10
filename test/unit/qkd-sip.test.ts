import { describe, expect, it } from 'vitest';
import { LpBuilder, solveInThread } from '../../src/qkd/lp.ts';
import { type TwoStageProblem, buildDeterministicEquivalent, firstStageCost } from '../../src/qkd/sip.ts';

/**
 * The farmer problem of Birge & Louveaux, Introduction to Stochastic Programming (2nd ed.,
 * §1.1): 500 acres of wheat, corn and sugar beets; yields 20 % above, at or below average with
 * probability 1/3 each. Known: the stochastic solution (170, 80, 250) acres with expected
 * profit 108,390; the mean-value solution (120, 80, 300) with profit 118,600 at mean yields and
 * an expected profit of 107,240 (EEV) across the scenarios; VSS = 1,150.
 */
const YIELDS = [
  [3, 3.6, 24],
  [2.5, 3, 20],
  [2, 2.4, 16],
];

function farmer(yields: number[][], probabilities: number[]): TwoStageProblem<number[]> {
  return {
    probabilities,
    firstStage(b: LpBuilder) {
      const x = [150, 230, 260].map((c) => b.addVar(c));
      b.addRow(x.map((j) => [j, 1]), -Infinity, 500);
      return x;
    },
    secondStage(b, x, s) {
      const t = yields[s];
      const y1 = b.addVar(238); // buy wheat
      const y2 = b.addVar(210); // buy corn
      const w1 = b.addVar(-170); // sell wheat
      const w2 = b.addVar(-150); // sell corn
      const w3 = b.addVar(-36, { ub: 6000 }); // beets within the quota
      const w4 = b.addVar(-10); // beets above it
      b.addRow([[x[0], t[0]], [y1, 1], [w1, -1]], 200, Infinity);
      b.addRow([[x[1], t[1]], [y2, 1], [w2, -1]], 240, Infinity);
      b.addRow([[w3, 1], [w4, 1], [x[2], -t[2]]], -Infinity, 0);
    },
  };
}

describe('two-stage builder: the farmer problem', () => {
  it('recourse problem: optimum -108,390 at (170, 80, 250)', async () => {
    const de = buildDeterministicEquivalent(farmer(YIELDS, [1 / 3, 1 / 3, 1 / 3]));
    const s = await solveInThread(de.model);
    expect(s.status).toBe('optimal');
    expect(s.objective).toBeCloseTo(-108_390, 4);
    expect([...s.x.slice(0, 3)].map((v) => Math.round(v * 1e6) / 1e6)).toEqual([170, 80, 250]);
    expect(firstStageCost(de, s.x)).toBeCloseTo(170 * 150 + 80 * 230 + 250 * 260, 6);
  });

  it('mean-value problem, EEV and VSS = 1,150', async () => {
    const mean = [0, 1, 2].map((k) => YIELDS.reduce((a, y) => a + y[k], 0) / 3);
    const ev = await solveInThread(buildDeterministicEquivalent(farmer([mean], [1])).model);
    expect(ev.objective).toBeCloseTo(-118_600, 4);
    const xEv = [...ev.x.slice(0, 3)];
    expect(xEv.map((v) => Math.round(v))).toEqual([120, 80, 300]);
    const eev = await solveInThread(buildDeterministicEquivalent(farmer(YIELDS, [1 / 3, 1 / 3, 1 / 3]), { fixFirst: xEv }).model);
    expect(eev.objective).toBeCloseTo(-107_240, 4);
    const rp = await solveInThread(buildDeterministicEquivalent(farmer(YIELDS, [1 / 3, 1 / 3, 1 / 3])).model);
    expect(eev.objective - rp.objective).toBeCloseTo(1_150, 4);
  });

  it('rejects probabilities that do not sum to 1', () => {
    expect(() => buildDeterministicEquivalent(farmer(YIELDS, [0.5, 0.5, 0.5]))).toThrow(RangeError);
  });
});

describe('LpBuilder + HiGHS: a small integer program', () => {
  it('max 30a + 50b s.t. a + 2b <= 40, 2a + b <= 50, integers: 1100 at (20, 10)', async () => {
    const b = new LpBuilder();
    const a = b.addVar(-30, { integer: true });
    const c = b.addVar(-50, { integer: true });
    b.addRow([[a, 1], [c, 2]], -Infinity, 40);
    b.addRow([[a, 2], [c, 1]], -Infinity, 50);
    const s = await solveInThread(b.build());
    expect(s.objective).toBeCloseTo(-1100, 6);
    expect([...s.x]).toEqual([20, 10]);
  });

  it('reports infeasibility', async () => {
    const b = new LpBuilder();
    const a = b.addVar(1, { ub: 1 });
    b.addRow([[a, 1]], 2, Infinity);
    expect((await solveInThread(b.build())).status).toBe('infeasible');
  });
});
