import { describe, expect, it } from 'vitest';
import { isBflError } from '../../src/core/errors.ts';
import { HighsWorker, inThreadSolver } from '../../src/qkd/lp.ts';
import { TABLE_II, type Topology, kShortestPaths, linkDevices, loadTopology, poissonScenarios, scalePrices, validateTopology, wavelengthCosts } from '../../src/qkd/model.ts';
import { type PlanInstance, paperInstance, solveEvf, solveRandom, solveSip, uniformReservationCost } from '../../src/qkd/plan.ts';
import { mesh } from '../helpers/qkd.ts';

const line: Topology = {
  name: 'line',
  nodes: ['A', 'B', 'C', 'D'],
  links: [
    { a: 'A', b: 'B', km: 100 },
    { a: 'B', b: 'C', km: 400 },
    { a: 'C', b: 'D', km: 170 },
  ],
};

function instance(t: Topology, requests: [string, string][], demand: number[][], probabilities: number[], o: Partial<PlanInstance> = {}): PlanInstance {
  return {
    topology: t,
    requests: requests.map(([s, d]) => ({ source: s, destination: d })),
    probabilities,
    demand,
    reserved: TABLE_II.reserved,
    onDemand: TABLE_II.onDemand,
    capacity: { km: Infinity, qkd: Infinity },
    routing: 'paths',
    paths: 3,
    ...o,
  };
}

describe('cost model (eqs. 1-6, Table II)', () => {
  it('device counts per link, by hand', () => {
    // 100 km < L: one MDI segment, key managers at both ends, no trusted relay
    expect(linkDevices(100)).toEqual({ tx: 2, rx: 1, km: 2, si: 0, md: 1 });
    // 400 km: ⌈2.5⌉ = 3 segments, ⌈1.5⌉ = 2 relays, ⌈3.5⌉ = 4 key managers
    expect(linkDevices(400)).toEqual({ tx: 6, rx: 3, km: 4, si: 2, md: 5 });
  });

  it('reserved price of one QKD and one KM wavelength, by hand', () => {
    // F: (2·1500 + 2250)/3 + 100·1 = 1850; X: 2·1200 + 1·300 + 100·1 = 2800
    expect(wavelengthCosts(100, TABLE_II.reserved)).toEqual({ F: 1850, X: 2800 });
    // F: (6·1500 + 3·2250)/3 + 400 = 5650; X: 4·1200 + 2·150 + 5·300 + 400 = 7000
    expect(wavelengthCosts(400, TABLE_II.reserved)).toEqual({ F: 5650, X: 7000 });
    // on demand, doubled: (2·12000 + 18000)/3 + 100·8 = 14800
    expect(wavelengthCosts(100, scalePrices(TABLE_II.onDemand, 2)).F).toBe(14_800);
  });

  it('Poisson scenarios of eq. (46): truncated, renormalised, mean ⌊|Ω|/3⌋', () => {
    const s = poissonScenarios(10);
    expect(s.map((x) => x.level)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(s.reduce((a, x) => a + x.probability, 0)).toBeCloseTo(1, 12);
    const z = Array.from({ length: 10 }, (_, k) => Math.exp(-3) * 3 ** k / [1, 1, 2, 6, 24, 120, 720, 5040, 40320, 362880][k]).reduce((a, b) => a + b, 0);
    expect(s[0].probability).toBeCloseTo(Math.exp(-3) / z, 12);
    expect(s[3].probability).toBeCloseTo(s[2].probability, 12); // Poisson(3): p(2) = p(3)
    expect(() => poissonScenarios(0)).toThrow(RangeError);
  });

  it('k shortest paths by km (Yen), on the mesh by hand', () => {
    const km = (p: number[]) => p.reduce((a, e) => a + mesh.links[e].km, 0);
    // the loopless A-D paths: A-E-D 370, A-B-D 530, A-B-C-D 650, and no other
    expect(kShortestPaths(mesh, 'A', 'D', 2).map(km)).toEqual([370, 530]);
    expect(kShortestPaths(mesh, 'A', 'D', 10).map(km)).toEqual([370, 530, 650]);
    // C-D-E 420, C-B-A-E 600, C-B-D-E 600, C-D-B-A-E 1080
    expect(kShortestPaths(mesh, 'C', 'E', 10).map(km)).toEqual([420, 600, 600, 1080]);
  });
});

describe('deterministic IP and SIP, hand-solved', () => {
  it('one request of known demand: reserve exactly what it needs', async () => {
    // A→C over 100 + 400 km with ρ = 2: X^b = 1 and F^b = 6 on both links
    const inst = instance(line, [['A', 'C']], [[2]], [1]);
    const r = await solveSip(inst, inThreadSolver);
    expect(r.status).toBe('optimal');
    expect(r.totalCost).toBeCloseTo(2800 + 6 * 1850 + 7000 + 6 * 5650, 6);
    expect(r.secondStageCost).toBeCloseTo(0, 6);
    expect(r.links.map((l) => [l.reservedKm, l.reservedQkd])).toEqual([[1, 6], [1, 6], [0, 0]]);
  });

  it('capacities off: the SIP separates into per-link newsvendor problems (closed form)', async () => {
    // On a line every request has one route, so each link faces the random load 3ρ(ω)·n_e of
    // its n_e requests: reserve q, pay c_b·q + E[c_o·(D − q)+]. The optimal q is the smallest
    // support point with P(D ≤ q) ≥ 1 − c_b/c_o; the KM load n_e is certain, so X^b = n_e.
    const requests: [string, string][] = [['A', 'C'], ['B', 'D'], ['A', 'D'], ['C', 'D'], ['B', 'C']];
    for (const [scenarios, factor] of [[10, 1], [6, 0.5], [4, 2], [7, 0.3]]) {
      const sc = poissonScenarios(scenarios);
      const onDemand = scalePrices(TABLE_II.onDemand, factor);
      const inst = instance(line, requests, requests.map(() => sc.map((s) => s.level)), sc.map((s) => s.probability), { onDemand });
      const r = await solveSip(inst, inThreadSolver);
      let closed = 0;
      const q: number[] = [];
      line.links.forEach((l, e) => {
        const n = requests.filter(([s, d]) => {
          const [i, j] = [line.nodes.indexOf(s), line.nodes.indexOf(d)].sort();
          return i <= e && e < j;
        }).length;
        const cb = wavelengthCosts(l.km, TABLE_II.reserved);
        const co = wavelengthCosts(l.km, onDemand);
        const X = Math.min(cb.X, co.X) === cb.X ? n : 0;
        closed += X * cb.X + sc.reduce((a, s) => a + s.probability * co.X * Math.max(0, n - X), 0);
        const target = 1 - cb.F / co.F;
        let cdf = 0;
        let qe = 0;
        for (const s of sc) {
          cdf += s.probability;
          qe = 3 * s.level * n;
          if (cdf >= target - 1e-12) break;
        }
        q.push(qe);
        closed += cb.F * qe + sc.reduce((a, s) => a + s.probability * co.F * Math.max(0, 3 * s.level * n - qe), 0);
      });
      expect(r.status).toBe('optimal');
      expect(r.totalCost, `|Ω| = ${scenarios}, factor ${factor}`).toBeCloseTo(closed, 4);
      expect(r.links.map((l) => l.reservedQkd), `|Ω| = ${scenarios}, factor ${factor}`).toEqual(q);
    }
  });

  it('arc-flow routing (eq. 22) and k-shortest candidate paths give the same optimum', async () => {
    const requests: [string, string][] = [['A', 'D'], ['B', 'E'], ['C', 'A'], ['D', 'B'], ['E', 'C'], ['A', 'C']];
    const sc = poissonScenarios(4);
    const base = instance(mesh, requests, requests.map(() => sc.map((s) => s.level)), sc.map((s) => s.probability));
    const arcs = await solveSip({ ...base, routing: 'arcs' }, inThreadSolver);
    const paths = await solveSip({ ...base, paths: 10 }, inThreadSolver);
    expect(arcs.status).toBe('optimal');
    expect(paths.totalCost).toBeCloseTo(arcs.totalCost, 4);
  });

  it('capacity rows (eqs. 28-29) push traffic off the short route, or make the plan infeasible', async () => {
    const requests: [string, string][] = [['A', 'D'], ['A', 'D']];
    const free = await solveSip(instance(mesh, requests, [[1], [1]], [1]), inThreadSolver);
    // both on A-E-D without limits; with one KM wavelength per link they must split
    expect(free.links.find((l) => l.a === 'E' && l.b === 'A')!.reservedKm).toBe(2);
    const tight = await solveSip(instance(mesh, requests, [[1], [1]], [1], { capacity: { km: 1, qkd: 3 } }), inThreadSolver);
    expect(tight.status).toBe('optimal');
    expect(tight.totalCost).toBeGreaterThan(free.totalCost);
    expect(Math.max(...tight.links.map((l) => l.reservedKm))).toBe(1);
    const none = await solveSip(instance(mesh, requests, [[1], [1]], [1], { capacity: { km: 1, qkd: 2 } }), inThreadSolver);
    expect(none.status).toBe('infeasible');
  });

  it('EVF and Random never beat the SIP; EVF equals the SIP when demand is certain', async () => {
    const inst = paperInstance(mesh, { requests: 12, scenarios: 6, seed: 3 });
    const sip = await solveSip(inst, inThreadSolver);
    const evf = await solveEvf(inst, inThreadSolver);
    const rnd = await solveRandom(inst, inThreadSolver, 3);
    expect(evf.totalCost).toBeGreaterThanOrEqual(sip.totalCost - 1e-6);
    expect(rnd.totalCost).toBeGreaterThanOrEqual(sip.totalCost - 1e-6);
    expect(sip.firstStageCost + sip.secondStageCost).toBeCloseTo(sip.totalCost, 6);
    const certain = { ...inst, probabilities: [1], demand: inst.demand.map(() => [2]) };
    expect((await solveEvf(certain, inThreadSolver)).totalCost).toBeCloseTo((await solveSip(certain, inThreadSolver)).totalCost, 6);
  });

  it('Fig. 5 cost structure: first stage grows and second stage shrinks with the reservation', async () => {
    const inst = paperInstance(mesh, { requests: 8, scenarios: 10, seed: 5 });
    const costs = [];
    for (const w of [0, 2, 4, 6, 9]) costs.push(await uniformReservationCost(inst, w, inThreadSolver));
    for (let i = 1; i < costs.length; i++) {
      expect(costs[i].firstStageCost).toBeGreaterThan(costs[i - 1].firstStageCost);
      expect(costs[i].secondStageCost).toBeLessThanOrEqual(costs[i - 1].secondStageCost + 1e-6);
    }
    expect(costs[4].secondStageCost).toBeCloseTo(0, 6); // level 9 covers every scenario
  });

  it('the worker solves like the main thread', async () => {
    const inst = paperInstance(mesh, { requests: 10, scenarios: 5, seed: 2 });
    const w = new HighsWorker();
    try {
      const a = await solveSip(inst, w);
      const b = await solveSip(inst, inThreadSolver);
      expect(a.totalCost).toBe(b.totalCost);
      expect(a.links).toEqual(b.links);
    } finally {
      await w.close();
    }
  });
});

describe('topologies', () => {
  it('built-in NSFNET and USNET load with their sizes and provenance', async () => {
    const n = await loadTopology('nsfnet');
    expect([n.nodes.length, n.links.length]).toEqual([14, 22]);
    const u = await loadTopology('usnet');
    expect([u.nodes.length, u.links.length]).toEqual([24, 43]);
    expect(n.provenance).toMatch(/22 links/);
    expect(u.provenance).toMatch(/reconstruction/);
  });

  it('a bad user topology is a BAD_CONFIG error that says what is wrong', async () => {
    const cases: [unknown, RegExp][] = [
      [[], /not a JSON object|nodes/],
      [{ nodes: ['A'], links: [] }, /at least two/],
      [{ nodes: ['A', 'B'], links: [{ a: 'A', b: 'C', km: 1 }] }, /unknown node/],
      [{ nodes: ['A', 'B'], links: [{ a: 'A', b: 'B', km: 0 }] }, /km/],
      [{ nodes: ['A', 'B'], links: [{ a: 'A', b: 'B', km: 5 }, { a: 'B', b: 'A', km: 6 }] }, /twice/],
      [{ nodes: ['A', 'B', 'C'], links: [{ a: 'A', b: 'B', km: 5 }] }, /do not connect C/],
    ];
    for (const [j, re] of cases) {
      let err: unknown;
      try {
        validateTopology(j, 'my.json');
      } catch (e) {
        err = e;
      }
      expect(isBflError(err, 'BAD_CONFIG'), JSON.stringify(j)).toBe(true);
      expect((err as Error).message).toMatch(re);
    }
    await expect(loadTopology('/nonexistent/topology.json')).rejects.toMatchObject({ code: 'BAD_CONFIG' });
  });
});
