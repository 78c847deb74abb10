/**
 * The QKD resource planner: the deterministic integer program (eqs. 8-18) and the two-stage
 * stochastic integer program (eqs. 21-31) of the paper, built on sip.ts and solved with HiGHS,
 * plus the baselines of §VI-D (QBN-EVF: plan for the expected demand; QBN-Random: random
 * reservations) and the fixed per-request reservations of the cost-structure study (Fig. 5).
 *
 * Decision variables per link e (undirected: both directions share the fibre's wavelengths):
 * X^b_e, F^b_e reserved KM and QKD wavelengths (integers, first stage); per scenario ω the
 * on-demand X^o_e(ω), F^o_e(ω) and the routing of every request. A request r routed over e takes
 * one KM wavelength and 3ρ_r(ω) QKD wavelengths there (eq. 25).
 *
 * Routing (eq. 22) is either arc-flow, as in the paper (binary x^r_a(ω) on both directions of
 * every link, flow conservation at every node), or, the default, a choice among the k shortest
 * candidate paths of each request (the arc-path form of the same constraint: every candidate is
 * a loopless s-d path, so flow conservation holds by construction; with k = all paths the two
 * are equal, which a test checks). The per-wavelength indices p ∈ κ, q ∈ σ of eqs. (26)-(27),
 * (30)-(31) are not modelled: capacity (28)-(29) bounds the wavelength count per link, and no
 * wavelength-continuity assignment is made (docs/decisions.md).
 */
import { type LpSolution, type LpSolver, type SolveOptions } from './lp.ts';
import { type Path, type Prices, type Request, type Topology, TABLE_II, kShortestPaths, poissonScenarios, randomRequests, scalePrices, wavelengthCosts } from './model.ts';
import { type DeterministicEquivalent, type TwoStageProblem, buildDeterministicEquivalent, firstStageCost } from './sip.ts';
import { Rng } from '../core/random.ts';

export interface PlanInstance {
  topology: Topology;
  requests: Request[];
  /** Scenario probabilities p(ω). */
  probabilities: number[];
  /** ρ_r(ω): demand[r][ω], concurrent QKD links request r needs in scenario ω (integers). */
  demand: number[][];
  reserved: Prices;
  onDemand: Prices;
  /** |κ| and |σ|: KM and QKD wavelengths a link can carry (Infinity: no capacity rows). */
  capacity: { km: number; qkd: number };
  routing: 'paths' | 'arcs';
  /** Candidate paths per request with routing 'paths'. */
  paths: number;
}

export interface InstanceOptions {
  requests: number;
  scenarios: number;
  onDemandFactor: number;
  seed: number;
  capacity: { km: number; qkd: number };
  routing: 'paths' | 'arcs';
  paths: number;
}

export const defaultInstanceOptions: InstanceOptions = {
  // §VI-A: |R| = 100 on NSFNET (200 on USNET), |Ω| = 10, Table II prices as given (factor 1).
  requests: 100,
  scenarios: 10,
  onDemandFactor: 1,
  seed: 1,
  // The paper gives no |κ|, |σ|; with 3ρ QKD wavelengths per request and ρ up to 9 any fixed
  // C-band count makes the high-demand scenarios infeasible, so capacities are off by default.
  capacity: { km: Infinity, qkd: Infinity },
  routing: 'paths',
  // 3 candidates: on NSFNET the optimum never used a 4th in our runs (docs/experiments.md), and
  // the MIP stays small enough to solve |R| = 100 in seconds.
  paths: 3,
};

/** The paper's instance (§VI-A): |R| random requests, Poisson scenarios (eq. 46). */
export function paperInstance(topology: Topology, o: Partial<InstanceOptions> = {}): PlanInstance {
  const opts = { ...defaultInstanceOptions, ...o };
  const requests = randomRequests(topology, opts.requests, opts.seed);
  const sc = poissonScenarios(opts.scenarios);
  return {
    topology,
    requests,
    probabilities: sc.map((s) => s.probability),
    demand: requests.map(() => sc.map((s) => s.level)),
    reserved: TABLE_II.reserved,
    onDemand: scalePrices(TABLE_II.onDemand, opts.onDemandFactor),
    capacity: opts.capacity,
    routing: opts.routing,
    paths: opts.paths,
  };
}

interface FirstStage {
  X: number[]; // column of X^b_e
  F: number[]; // column of F^b_e
  candidates: Path[][];
  /** Filled by the second stage: the on-demand columns of each link, per scenario. */
  recourse: { link: number; xo: number; fo: number }[][];
}

/** Candidate paths of every request (k shortest by km). */
export function candidatePaths(inst: PlanInstance): Path[][] {
  const cache = new Map<string, Path[]>();
  return inst.requests.map((r) => {
    const key = `${r.source}\u0000${r.destination}`;
    if (!cache.has(key)) cache.set(key, kShortestPaths(inst.topology, r.source, r.destination, inst.routing === 'paths' ? inst.paths : 1));
    return cache.get(key)!;
  });
}

/** The two-stage SIP of eqs. (21)-(31) for this instance. */
export function sipProblem(inst: PlanInstance): TwoStageProblem<FirstStage> {
  const E = inst.topology.links.length;
  const reserved = inst.topology.links.map((l) => wavelengthCosts(l.km, inst.reserved));
  const onDemand = inst.topology.links.map((l) => wavelengthCosts(l.km, inst.onDemand));
  const candidates = candidatePaths(inst);
  const nodeIdx = new Map(inst.topology.nodes.map((n, i) => [n, i]));
  return {
    probabilities: inst.probabilities,
    firstStage(b) {
      const X: number[] = [];
      const F: number[] = [];
      for (let e = 0; e < E; e++) {
        X.push(b.addVar(reserved[e].X, { integer: true }));
        F.push(b.addVar(reserved[e].F, { integer: true }));
      }
      return { X, F, candidates, recourse: [] };
    },
    secondStage(b, first, s) {
      // Per-link loads as terms: km[e] counts requests (one KM wavelength each), qkd[e] 3ρ each.
      const kmLoad: [number, number][][] = Array.from({ length: E }, () => []);
      const qkdLoad: [number, number][][] = Array.from({ length: E }, () => []);
      inst.requests.forEach((r, ri) => {
        const rho = inst.demand[ri][s];
        if (inst.routing === 'paths') {
          const ys = first.candidates[ri].map(() => b.addVar(0, { integer: true, ub: 1 }));
          b.addRow(ys.map((y) => [y, 1]), 1, 1); // route on exactly one candidate
          first.candidates[ri].forEach((p, k) => {
            for (const e of p) {
              kmLoad[e].push([ys[k], 1]);
              if (rho > 0) qkdLoad[e].push([ys[k], 3 * rho]);
            }
          });
        } else {
          // eq. (22): one unit of flow from s_r to d_r over directed arcs (2 per link)
          const fwd = inst.topology.links.map(() => b.addVar(0, { integer: true, ub: 1 }));
          const bwd = inst.topology.links.map(() => b.addVar(0, { integer: true, ub: 1 }));
          const src = nodeIdx.get(r.source)!;
          const dst = nodeIdx.get(r.destination)!;
          inst.topology.nodes.forEach((_, v) => {
            const terms: [number, number][] = [];
            inst.topology.links.forEach((l, e) => {
              const a = nodeIdx.get(l.a)!;
              const c = nodeIdx.get(l.b)!;
              if (a === v) terms.push([fwd[e], 1], [bwd[e], -1]);
              if (c === v) terms.push([bwd[e], 1], [fwd[e], -1]);
            });
            const rhs = v === src ? 1 : v === dst ? -1 : 0;
            b.addRow(terms, rhs, rhs);
          });
          for (let e = 0; e < E; e++) {
            kmLoad[e].push([fwd[e], 1], [bwd[e], 1]);
            if (rho > 0) qkdLoad[e].push([fwd[e], 3 * rho], [bwd[e], 3 * rho]);
          }
        }
      });
      first.recourse[s] = [];
      for (let e = 0; e < E; e++) {
        if (kmLoad[e].length === 0) continue;
        // On-demand counts are continuous: with integer reservations and integral loads their
        // optimum max(0, load − reserved) is integral anyway, and HiGHS branches less.
        const xo = b.addVar(onDemand[e].X);
        const fo = b.addVar(onDemand[e].F);
        first.recourse[s].push({ link: e, xo, fo });
        // eqs. (23)-(24): reserved + on-demand cover the realised load
        b.addRow([[first.X[e], 1], [xo, 1], ...kmLoad[e].map(([c, v]) => [c, -v] as [number, number])], 0, Infinity);
        b.addRow([[first.F[e], 1], [fo, 1], ...qkdLoad[e].map(([c, v]) => [c, -v] as [number, number])], 0, Infinity);
        // eqs. (28)-(29): wavelength capacity
        if (Number.isFinite(inst.capacity.km)) b.addRow(kmLoad[e], -Infinity, inst.capacity.km);
        if (Number.isFinite(inst.capacity.qkd) && qkdLoad[e].length) b.addRow(qkdLoad[e], -Infinity, inst.capacity.qkd);
      }
    },
  };
}

export interface LinkPlan {
  a: string;
  b: string;
  km: number;
  /** Reserved KM and QKD wavelengths (first stage). */
  reservedKm: number;
  reservedQkd: number;
  /** Expected on-demand wavelengths over the scenarios (second stage). */
  expectedOnDemandKm: number;
  expectedOnDemandQkd: number;
}

export interface PlanResult {
  method: string;
  status: LpSolution['status'];
  firstStageCost: number;
  secondStageCost: number;
  totalCost: number;
  /** Relative gap between the cost and HiGHS's bound (0 when optimal). */
  gap: number;
  solveMs: number;
  links: LinkPlan[];
}

/** Expected cost of a given first stage: the recourse problem with X^b, F^b fixed. */
async function evaluate(inst: PlanInstance, method: string, reservation: { X: number[]; F: number[] }, solver: LpSolver, so: Partial<SolveOptions>, extraMs = 0): Promise<PlanResult> {
  const fix: number[] = [];
  for (let e = 0; e < inst.topology.links.length; e++) fix.push(reservation.X[e], reservation.F[e]);
  const de = buildDeterministicEquivalent(sipProblem(inst), { fixFirst: fix });
  const sol = await solver.solve(de.model, so);
  return summarize(inst, method, de, sol, extraMs);
}

function summarize(inst: PlanInstance, method: string, de: DeterministicEquivalent<FirstStage>, sol: LpSolution, extraMs = 0): PlanResult {
  if (sol.status !== 'optimal' && sol.status !== 'time-limit') {
    return { method, status: sol.status, firstStageCost: NaN, secondStageCost: NaN, totalCost: NaN, gap: NaN, solveMs: sol.ms + extraMs, links: [] };
  }
  const first = firstStageCost(de, sol.x);
  const links = inst.topology.links.map((l, e) => ({ a: l.a, b: l.b, km: l.km, reservedKm: Math.round(sol.x[de.first.X[e]]), reservedQkd: Math.round(sol.x[de.first.F[e]]), expectedOnDemandKm: 0, expectedOnDemandQkd: 0 }));
  de.first.recourse.forEach((cols, s) => {
    const p = inst.probabilities[s];
    for (const c of cols) {
      links[c.link].expectedOnDemandKm += p * sol.x[c.xo];
      links[c.link].expectedOnDemandQkd += p * sol.x[c.fo];
    }
  });
  const total = sol.objective;
  return {
    method,
    status: sol.status,
    firstStageCost: first,
    secondStageCost: total - first,
    totalCost: total,
    gap: sol.status === 'optimal' ? 0 : Math.abs(total - sol.bound) / Math.max(1, Math.abs(total)),
    solveMs: sol.ms + extraMs,
    links,
  };
}

/** SIP: the two-stage stochastic program solved to optimality (or the time limit). */
export async function solveSip(inst: PlanInstance, solver: LpSolver, so: Partial<SolveOptions> = {}): Promise<PlanResult> {
  const de = buildDeterministicEquivalent(sipProblem(inst));
  return summarize(inst, 'sip', de, await solver.solve(de.model, so));
}

/** The deterministic integer program (eqs. 8-18) for one known demand vector ρ_r. */
export function deterministicInstance(inst: PlanInstance, rho: number[]): PlanInstance {
  return { ...inst, probabilities: [1], demand: rho.map((v) => [v]) };
}

/**
 * QBN-EVF (§VI-D): reserve what the deterministic program (eqs. 8-18) reserves for the expected
 * demand ⌈E[ρ_r]⌉, then pay on demand for what each scenario needs beyond it (the EEV of the
 * stochastic-programming textbooks). Its solve time includes both solves.
 */
export async function solveEvf(inst: PlanInstance, solver: LpSolver, so: Partial<SolveOptions> = {}): Promise<PlanResult> {
  // ρ is a whole number of QKD links by definition (ρ_r = ⌈k_r / K_L⌉, §III-B): the expected
  // demand becomes ⌈E[ρ_r]⌉. A fractional mean also makes the mean-value program a hard
  // rounding problem (HiGHS hit a 120 s limit on USNET with E[ρ] = 0.95).
  const mean = inst.demand.map((row) => Math.ceil(row.reduce((a, v, s) => a + v * inst.probabilities[s], 0) - 1e-9));
  const det = deterministicInstance(inst, mean);
  const de = buildDeterministicEquivalent(sipProblem(det));
  const sol = await solver.solve(de.model, so);
  if (sol.status !== 'optimal' && sol.status !== 'time-limit') return summarize(det, 'evf', de, sol);
  const X = de.first.X.map((c) => Math.round(sol.x[c]));
  const F = de.first.F.map((c) => Math.round(sol.x[c]));
  return evaluate(inst, 'evf', { X, F }, solver, so, sol.ms);
}

/**
 * QBN-Random (§VI-D: "the values of the decision variables are generated uniformly from zero
 * to |Ω|"): each link e draws a demand level w_e uniformly from {0, …, |Ω|} (in general
 * {0, …, max ρ + 1}) and reserves for every request whose shortest path crosses it one KM
 * wavelength and 3·w_e QKD wavelengths; the recourse then covers each realisation.
 */
export async function solveRandom(inst: PlanInstance, solver: LpSolver, seed: number, so: Partial<SolveOptions> = {}): Promise<PlanResult> {
  const rng = new Rng(seed ^ 0x5eed);
  const top = Math.max(...inst.demand.flat()) + 1;
  const w = inst.topology.links.map(() => rng.int(top + 1));
  const { X } = perRequestReservation(inst, inst.requests.map(() => 0));
  return evaluate(inst, 'random', { X, F: X.map((n, e) => 3 * w[e] * n) }, solver, so);
}

/** Reservations for given per-request demand levels on each request's shortest path. */
export function perRequestReservation(inst: PlanInstance, rho: number[]): { X: number[]; F: number[] } {
  const X = inst.topology.links.map(() => 0);
  const F = inst.topology.links.map(() => 0);
  candidatePaths(inst).forEach((c, r) => {
    for (const e of c[0]) {
      X[e] += 1;
      F[e] += Math.ceil(3 * rho[r]);
    }
  });
  return { X, F };
}

/**
 * Fig. 5: the same number w of QKD links reserved for every request on its shortest path
 * (F^b = 3w per request and link, X^b one per request), and the resulting first-stage,
 * expected second-stage and total cost.
 */
export async function uniformReservationCost(inst: PlanInstance, w: number, solver: LpSolver, so: Partial<SolveOptions> = {}): Promise<PlanResult> {
  return evaluate(inst, `reserve-${w}`, perRequestReservation(inst, inst.requests.map(() => w)), solver, so);
}

export const METHODS = ['sip', 'evf', 'random'] as const;
export type Method = (typeof METHODS)[number];

export async function solveMethod(m: Method, inst: PlanInstance, solver: LpSolver, seed: number, so: Partial<SolveOptions> = {}): Promise<PlanResult> {
  if (m === 'sip') return solveSip(inst, solver, so);
  if (m === 'evf') return solveEvf(inst, solver, so);
  return solveRandom(inst, solver, seed, so);
}
