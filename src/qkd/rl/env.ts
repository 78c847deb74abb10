/**
 * The POMDP of the QKD paper's §V-A over the planner's model (plan.ts). Each request keeps its
 * shortest path, so the expected cost separates per link: link e with n_e requests reserves
 * its n_e KM wavelengths (a certain demand) and F_e QKD wavelengths, and pays on demand for
 * what scenario ω needs beyond F_e: C_e(F_e) = c^b_X n_e + c^b_F F_e + Σ_ω p(ω) c^o_F (3ρ(ω)n_e − F_e)⁺.
 * Its minimum (a newsvendor, closed form) summed over links is the fixed-routing optimum; the
 * SIP with re-routing is HiGHS's and is the reference line of Fig. 9.
 *
 * Agents are the QKD controllers: one per node, deciding for the links it is the first
 * endpoint of; some controllers are also managers (they see rewards). An action is, per link,
 * a ∈ (−1, 1) mapped to a demand level w = (a + 1)/2 · (ρ_max + 1), reserving F_e = round(3 w n_e).
 * A link's observation: its last l levels (scaled to [−1, 1]) and three fixed features
 * (requests on it, length, reserved/on-demand price ratio). The reward of manager m is the
 * normalised cost of its links, Σ C*_e / Σ C_e(F_e) ∈ (0, 1] (§V-A-4); controllers get none.
 */
import { wavelengthCosts } from '../model.ts';
import { type PlanInstance, candidatePaths } from '../plan.ts';

export interface LinkModel {
  link: number;
  requests: number;
  reservedX: number;
  reservedF: number;
  onDemandF: number;
  /** The link's fixed observation features: log(1 + n_e) scaled, km scaled, c^b_F / c^o_F. */
  features: number[];
}

export class QkdEnv {
  readonly links: LinkModel[];
  readonly history: number;
  readonly maxLevel: number;
  private readonly levels: number[];
  private readonly probs: number[];
  /** Agent a's link indexes (into `links`). */
  readonly agents: number[][];
  readonly optimalCost: number;
  private readonly optimalLink: number[];

  constructor(inst: PlanInstance, history = 4) {
    this.history = history;
    // one demand level per scenario for every request (eq. 46)
    this.levels = inst.demand[0];
    this.probs = inst.probabilities;
    this.maxLevel = Math.max(...this.levels);
    const n = inst.topology.links.map(() => 0);
    for (const c of candidatePaths({ ...inst, paths: 1, routing: 'paths' })) for (const e of c[0]) n[e]++;
    const maxN = Math.max(...n);
    const maxKm = Math.max(...inst.topology.links.map((l) => l.km));
    this.links = [];
    inst.topology.links.forEach((l, e) => {
      if (n[e] === 0) return;
      const r = wavelengthCosts(l.km, inst.reserved);
      const o = wavelengthCosts(l.km, inst.onDemand);
      this.links.push({ link: e, requests: n[e], reservedX: r.X, reservedF: r.F, onDemandF: o.F, features: [Math.log1p(n[e]) / Math.log1p(maxN), l.km / maxKm, r.F / o.F] });
    });
    const nodeOf = new Map(inst.topology.nodes.map((v, i) => [v, i]));
    const byNode = new Map<number, number[]>();
    this.links.forEach((L, i) => {
      const l = inst.topology.links[L.link];
      const owner = Math.min(nodeOf.get(l.a)!, nodeOf.get(l.b)!);
      byNode.set(owner, [...(byNode.get(owner) ?? []), i]);
    });
    this.agents = [...byNode.keys()].sort((a, b) => a - b).map((k) => byNode.get(k)!);
    this.optimalLink = this.links.map((L) => {
      let best = Infinity;
      for (const lv of this.levels) best = Math.min(best, this.linkCost(L, 3 * lv * L.requests));
      return best;
    });
    this.optimalCost = this.optimalLink.reduce((a, b) => a + b, 0);
  }

  get obsSize(): number {
    return this.history + 3;
  }

  /** Level w ∈ [0, ρ_max + 1] of an action in (−1, 1). */
  level(a: number): number {
    return ((a + 1) / 2) * (this.maxLevel + 1);
  }

  linkCost(L: LinkModel, F: number): number {
    let c = L.reservedX * L.requests + L.reservedF * F;
    for (let s = 0; s < this.levels.length; s++) c += this.probs[s] * L.onDemandF * Math.max(0, 3 * this.levels[s] * L.requests - F);
    return c;
  }

  /** Per-link costs of per-link actions. */
  costs(actions: ArrayLike<number>): number[] {
    return this.links.map((L, i) => this.linkCost(L, Math.round(3 * this.level(actions[i]) * L.requests)));
  }

  /** Manager reward: Σ optimal / Σ current over its links. */
  reward(agent: number, costs: number[]): number {
    let opt = 0;
    let cur = 0;
    for (const i of this.agents[agent]) {
      opt += this.optimalLink[i];
      cur += costs[i];
    }
    return opt / cur;
  }

  /** Observation of link i given its level history (most recent last, each in [−1, 1]). */
  observe(i: number, hist: number[]): number[] {
    return [...hist, ...this.links[i].features];
  }

  initialHistory(): number[][] {
    return this.links.map(() => new Array(this.history).fill(-1));
  }

  /** Scaled level of an action for the history: the level itself in [−1, 1]. */
  static shift(hist: number[], a: number): number[] {
    return [...hist.slice(1), a];
  }
}
