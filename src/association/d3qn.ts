/**
 * The multi-agent D3QN scheduler of the DT paper (section V, Algorithm 2): each client is an
 * agent choosing a (server, channel) pair, trained in the twin with dueling heads, double-Q
 * targets, experience replay, ε-greedy exploration and RMSProp, and shipped as an ONNX file.
 *
 * Exactly as the paper states it (fingerprint state, one team reward, ε → 0.1) it learns
 * nothing better than random (issue 17; measured again in docs/experiments.md). The defaults
 * differ from the paper in six named ways (docs/experiments.md, "Which miner, which channel"):
 * 1. state 'sinr-dl': the agent's own uplink and downlink spectral efficiency on every
 *    (server, channel) given the clients already placed, the seconds it would take from them,
 *    and the miners' loads;
 * 2. reward 'marginal': per agent, its own −log cost minus the log-cost rise it causes others;
 * 3. one network shared by all agents, queried one agent at a time, weakest first, with the
 *    pairs already taken masked out (which also enforces the one-to-one constraint (19f)),
 *    then the two slowest agents once more (`revise`);
 * 4. ε decayed to 0.01, and the network distilled from a hand-written rule over the same
 *    state (`ruleValues`): the rule's values of every free pair are the loss (22)'s targets
 *    (`distilShare`), on states the rule (`expert: 'rule'`) or the ε-greedy network acted in;
 * 5. targets 'all' (after distillation, `distilShare` < 1): the twin scores every free pair the
 *    agent could have taken, not only the taken one (the loss (22) summed over them);
 * 6. γ = 0 (see `defaultD3qnOptions`).
 * `state: 'fingerprint'`, `reward: 'team'`, `targets: 'taken'`, `gamma: 0.99`, `epsilonStart: 1`, `epsilonEnd: 0.1`,
 * `expertStart: 0`, `expertEnd: 0`, `distilShare: 0`, `passes: 1`, `queryPasses: 1`
 * give the paper's variant back.
 */
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ort } from '../learn/ort.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import { Rng } from '../core/random.ts';
import { type ElemType } from '../learn/onnx.ts';
import { type QNetSpec, buildQGradGraph, buildQGraph, buildQRmspropGraph, initQnet, qnetLayout, qnetParamCount } from './qnet.ts';
import { type Scheduler, swapScheduler } from './schedulers.ts';
import { type Assignment, type RoundCost, type TwinParams, Twin, type TwinState, dbmToW, emptyAssignment, roundCost } from './twin.ts';

type Arr = Float32Array | Float64Array;

export type StateKind = 'sinr-dl' | 'sinr' | 'gains' | 'fingerprint';

/** The states built as clients are placed one by one (`SinrStates`). */
export const isSinr = (kind: StateKind): kind is 'sinr' | 'sinr-dl' => kind === 'sinr' || kind === 'sinr-dl';
export type RewardKind = 'marginal' | 'own' | 'team' | 'team-diff';

/**
 * The agents' observation. Every kind starts with the paper's (section V-A 1): the fingerprint
 * (previous round's clients per server and per channel, over N) and the two budget ratios.
 * - 'fingerprint': that only (the paper).
 * - 'gains': plus the agent's own interference-free spectral efficiency log2(1 + P_n h/σ²)/8
 *   on each (server, channel) (the recipe).
 * - 'sinr': plus, on each pair, the spectral efficiency given the interference of the clients
 *   already placed this round (0 for a taken pair), the spectral efficiency the placed
 *   co-channel clients would lose to this agent (its harm), the clients placed per server over
 *   K, and the share of clients placed: what the twin knows when the agent is queried.
 * - 'sinr-dl': 'sinr' with, on each pair, the agent's downlink spectral efficiency given the
 *   placed clients' miners transmitting on the channel (eq. 15), and log(1 + the seconds the
 *   placed co-channel clients would lose to it, uplink and downlink)/8, capped at 1, in place
 *   of the spectral efficiency they lose: layout fingerprint, budgets, uplink efficiency, clients
 *   per server, share placed, downlink efficiency, lost seconds. The downlink is what 'sinr'
 *   lacks: a client near a miner that serves a co-channel client gets that miner's 33 dBm,
 *   which made the rare rounds in the thousands (docs/experiments.md, "Fifth attempt").
 *   Seconds rather than spectral efficiency for the harm: a placed client pushed from 0.02 to
 *   0.01 bit/s/Hz loses little efficiency and 600 s; the log keeps the input bounded.
 * Spectral efficiency rather than dB gain: it is what the rate (9) sees, and bounded, ~[0, 2].
 */
export function stateSize(p: TwinParams, kind: StateKind): number {
  const base = p.servers + p.channels + 2;
  if (kind === 'fingerprint') return base;
  if (kind === 'gains') return base + p.servers * p.channels;
  // 'sinr': uplink efficiency and harm per pair; 'sinr-dl': uplink and downlink efficiency and lost seconds
  return base + (kind === 'sinr' ? 2 : 3) * p.servers * p.channels + p.servers + 1;
}

/** Rows of `agents`' states into `x`, given the clients already `placed` (server −1: not yet). */
export function agentStates(s: TwinState, kind: StateKind, agents: ArrayLike<number>, placed: Assignment, x: Float32Array): void {
  const p = s.params;
  const S = stateSize(p, kind);
  if (isSinr(kind)) {
    const b = new SinrStates(p, kind);
    for (let o = 0; o < p.clients; o++) if (placed.server[o] >= 0) b.place(s, o, placed.server[o] * p.channels + placed.channel[o]);
    for (let r = 0; r < agents.length; r++) b.write(s, agents[r], x, r * S);
    return;
  }
  const pn = dbmToW(p.clientPowerDbm);
  const noise = dbmToW(p.noiseDbm);
  const A = p.servers * p.channels;
  for (let r = 0; r < agents.length; r++) {
    const n = agents[r];
    const i = baseState(s, n, x, r * S);
    if (kind === 'gains') for (let j = 0; j < A; j++) x[i + j] = Math.log2(1 + (pn * s.gain[n * A + j]) / noise) / 8;
  }
}

/**
 * The 'sinr' state of the agents in a round as clients are placed one by one: the interference
 * at every (server, channel) (10), the taken pairs, the clients per server, kept up to date by
 * `place`, so that the query's state of each agent costs O(M·K + placed) with no allocation
 * (the query builds one per agent, N per round; `agentStates` rebuilt the interference from
 * every placed client for each).
 */
export class SinrStates {
  readonly p: TwinParams;
  readonly kind: 'sinr' | 'sinr-dl';
  private readonly pn: number;
  private readonly pm: number;
  private readonly noise: number;
  private readonly inter: Float64Array;
  private readonly taken: Uint8Array;
  private readonly load: Float64Array;
  private readonly harmK: Float64Array;
  /** Per placed client, what does not depend on the agent asking (updated when a client joins
   * its channel): its uplink signal, noise + interference and spectral efficiency, and
   * ('sinr-dl') 1/that efficiency (the upload time is D·ξ/G times it, eq. 12) and its downlink
   * interference (eq. 15). */
  private readonly sigUp: Float64Array;
  private readonly iUp: Float64Array;
  private readonly seUp: Float64Array;
  private readonly invUp: Float64Array;
  private readonly dlInter: Float64Array;
  /** 'sinr-dl': per pair, the downlink seconds the placed clients would lose if its miner
   * transmitted on its channel (the same for every agent); per channel, scratch for the agent's
   * downlink interference and the uplink seconds it takes. */
  private readonly dlTime: Float64Array;
  private readonly dlK: Float64Array;
  private readonly upTimeK: Float64Array;
  /** Seconds per unit of 1/(spectral efficiency) up and down: D·ξ/G (eqs. 12, 16). */
  private readonly secUp: number;
  private readonly secDown: number;
  /** The placed clients in placement order, and each one's pair. */
  private readonly placedList: Int32Array;
  private readonly pairOf: Int32Array;
  private count = 0;

  constructor(p: TwinParams, kind: 'sinr' | 'sinr-dl' = 'sinr') {
    const { clients: N, servers: M, channels: K } = p;
    this.p = p;
    this.kind = kind;
    this.pn = dbmToW(p.clientPowerDbm);
    this.pm = dbmToW(p.serverPowerDbm);
    this.noise = dbmToW(p.noiseDbm);
    this.inter = new Float64Array(M * K);
    this.taken = new Uint8Array(M * K);
    this.load = new Float64Array(M);
    this.harmK = new Float64Array(K);
    this.sigUp = new Float64Array(N);
    this.iUp = new Float64Array(N);
    this.seUp = new Float64Array(N);
    this.invUp = new Float64Array(N);
    this.dlInter = new Float64Array(N);
    this.dlTime = new Float64Array(M * K);
    this.dlK = new Float64Array(K);
    this.upTimeK = new Float64Array(K);
    this.secUp = (p.samplesPerRound * p.bitsUpPerSample) / p.bandwidthHz;
    this.secDown = (p.samplesPerRound * p.bitsDownPerSample) / p.bandwidthHz;
    this.placedList = new Int32Array(N);
    this.pairOf = new Int32Array(N);
  }

  private shadow?: { live: (Float64Array | Uint8Array | Int32Array)[]; copy: (Float64Array | Uint8Array | Int32Array)[]; count: number };

  /** Remembers the builder's state for `restore` (speculative placements). */
  save(): void {
    if (!this.shadow) {
      const live = [this.inter, this.taken, this.load, this.sigUp, this.iUp, this.seUp, this.invUp, this.dlInter, this.dlTime, this.placedList, this.pairOf];
      this.shadow = { live, copy: live.map((a) => a.slice()), count: 0 };
    }
    this.shadow.live.forEach((a, i) => this.shadow!.copy[i].set(a));
    this.shadow.count = this.count;
  }

  restore(): void {
    this.shadow!.copy.forEach((a, i) => this.shadow!.live[i].set(a));
    this.count = this.shadow!.count;
  }

  /** Built for this twin's parameters and this state kind. */
  fits(p: TwinParams, kind: StateKind): boolean {
    return p === this.p && kind === this.kind;
  }

  reset(): void {
    this.inter.fill(0);
    this.taken.fill(0);
    this.load.fill(0);
    this.dlTime.fill(0);
    this.count = 0;
  }

  /** Client n takes `pair` (server · K + channel); it is heard on that channel at every server,
   * and its server is heard on it at every other co-channel client (and theirs at n). */
  place(s: TwinState, n: number, pair: number): void {
    const { servers: M, channels: K } = this.p;
    const A = M * K;
    const { pn, pm, noise } = this;
    const g = s.gain;
    const k = pair % K;
    const m = Math.floor(pair / K);
    this.taken[pair] = 1;
    this.load[m]++;
    this.placedList[this.count++] = n;
    this.pairOf[n] = pair;
    for (let j = 0; j < M; j++) this.inter[j * K + k] += pn * g[(n * M + j) * K + k];
    const dl = this.kind === 'sinr-dl';
    if (dl) {
      let own = 0;
      for (let r = 0; r < this.count - 1; r++) {
        const o = this.placedList[r];
        const jo = this.pairOf[o];
        if (jo % K !== k) continue;
        this.dlInter[o] += pm * g[o * A + pair];
        own += pm * g[n * A + jo];
      }
      this.dlInter[n] = own;
      for (let j = 0; j < M; j++) this.dlTime[j * K + k] = 0;
    }
    // the clients on channel k (n among them) have new interference
    for (let r = 0; r < this.count; r++) {
      const o = this.placedList[r];
      const jo = this.pairOf[o];
      if (jo % K !== k) continue;
      const sig = pn * g[o * A + jo];
      this.sigUp[o] = sig;
      this.iUp[o] = noise + this.inter[jo] - sig;
      this.seUp[o] = Math.log2(1 + sig / this.iUp[o]);
      if (!dl) continue;
      this.invUp[o] = 1 / Math.max(this.seUp[o], SE_FLOOR);
      // eq. (16): o's download time grows if miner j also transmits on k
      const sigD = pm * g[o * A + jo];
      const before = 1 / seFloor(sigD / (noise + this.dlInter[o]));
      for (let j = 0; j < M; j++) if (j * K + k !== jo) this.dlTime[j * K + k] += this.secDown * (1 / seFloor(sigD / (noise + this.dlInter[o] + pm * g[o * A + j * K + k])) - before);
    }
  }

  /** Agent n's state, given the clients placed so far, into x from i (`agentStates`' layout). */
  write(s: TwinState, n: number, x: Float32Array, i: number): void {
    const { clients: N, servers: M, channels: K } = this.p;
    const A = M * K;
    const { pn, noise, inter, taken, harmK } = this;
    const g = s.gain;
    i = baseState(s, n, x, i);
    for (let j = 0; j < A; j++) x[i + j] = taken[j] ? 0 : Math.log2(1 + (pn * g[n * A + j]) / (noise + inter[j])) / 8;
    i += A;
    if (this.kind === 'sinr-dl') {
      for (let m = 0; m < M; m++) x[i++] = this.load[m] / K;
      x[i++] = this.count / N;
      this.writeDownlink(s, n, x, i);
      return;
    }
    // harm: Σ over placed co-channel clients o of their uplink spectral-efficiency loss
    harmK.fill(0);
    for (let r = 0; r < this.count; r++) {
      const o = this.placedList[r];
      const jo = this.pairOf[o];
      harmK[jo % K] += this.seUp[o] - Math.log2(1 + this.sigUp[o] / (this.iUp[o] + pn * g[n * A + jo]));
    }
    // bounded like the other inputs: beyond 8 bit/s/Hz lost, a pair is simply bad
    for (let j = 0; j < A; j++) x[i + j] = taken[j] ? 0 : Math.min(harmK[j % K], 8) / 8;
    i += A;
    for (let m = 0; m < M; m++) x[i++] = this.load[m] / K;
    x[i] = this.count / N;
  }

  /** The 'sinr-dl' part: downlink spectral efficiency, then log(1 + seconds taken from others)/8. */
  private writeDownlink(s: TwinState, n: number, x: Float32Array, i: number): void {
    const { servers: M, channels: K } = this.p;
    const A = M * K;
    const { pn, pm, noise, taken, dlK, upTimeK, dlTime, secUp } = this;
    const g = s.gain;
    dlK.fill(0);
    upTimeK.fill(0);
    for (let r = 0; r < this.count; r++) {
      const o = this.placedList[r];
      const jo = this.pairOf[o];
      const k = jo % K;
      // eq. (15): o's miner transmits on k at 33 dBm, heard by this agent
      dlK[k] += pm * g[n * A + jo];
      // uplink (eq. 12): this agent on k is heard at o's miner, the same whichever miner it picks
      upTimeK[k] += secUp * (1 / seFloor(this.sigUp[o] / (this.iUp[o] + pn * g[n * A + jo])) - this.invUp[o]);
    }
    for (let j = 0; j < A; j++) x[i + j] = taken[j] ? 0 : Math.log2(1 + (pm * g[n * A + j]) / (noise + dlK[j % K])) / 8;
    i += A;
    for (let j = 0; j < A; j++) x[i + j] = taken[j] ? 0 : Math.min(Math.log1p(upTimeK[j % K] + dlTime[j]), 8) / 8;
  }
}

/** log2(1 + sinr), at least 1e-9 bit/s/Hz: a gain drawn as exactly 0 would make the seconds
 * above ∞ − ∞. */
const SE_FLOOR = 1e-9;
const seFloor = (sinr: number) => Math.max(Math.log2(1 + sinr), SE_FLOOR);

/** The paper's part of agent n's state (the fingerprint and the budget ratios) into x from i;
 * returns the index after it. */
function baseState(s: TwinState, n: number, x: Float32Array, i: number): number {
  const p = s.params;
  for (let m = 0; m < p.servers; m++) x[i++] = s.prevServerLoad[m] / p.clients;
  for (let k = 0; k < p.channels; k++) x[i++] = s.prevChannelLoad[k] / p.clients;
  x[i++] = s.usedEnergyJ[n] / p.energyBudgetJ;
  x[i++] = s.usedTimeS / p.latencyBudgetS;
  return i;
}

/** Agents weakest first: ascending best interference-free channel gain (the likely straggler
 * of eq. (17) chooses first). */
export function agentOrder(s: TwinState): number[] {
  const { clients: N, servers: M, channels: K } = s.params;
  const best = new Float64Array(N);
  for (let n = 0; n < N; n++) for (let j = 0; j < M * K; j++) best[n] = Math.max(best[n], s.gain[n * M * K + j]);
  return Array.from({ length: N }, (_, n) => n).sort((x, y) => best[x] - best[y] || x - y);
}

/** One agent's choice in a round: its state, the pair it took, and who was placed then. */
export interface Decision {
  agent: number;
  x: Float32Array;
  act: number;
  placed: Assignment;
}

/** How `runAgents` queries beyond the passes: see `D3qnOptions.revise`, `reviseBatch`. */
export interface QueryOptions {
  /** Keep every decision with its state (training); the scheduler does not. */
  record?: boolean;
  revise?: number;
  reviseBatch?: boolean;
  /** A state builder to reuse across rounds (the scheduler's), if it fits the round's twin. */
  states?: SinrStates;
  /**
   * Speculative batching of the first pass (a speed-up with the same choices; greedy queries
   * only, not recorded): one network call takes `depth` agents in order, the states of the later
   * ones built as if those before took the rule's choice (`ruleValues`, the network's teacher);
   * the network's choices are then made in order, and rows whose premise failed are asked
   * again in the next call. onnxruntime costs the same for 1 to 3 rows (the weights' memory
   * traffic, not the rows, sets the cost of a 512-256-128 network), so fewer calls is faster.
   */
  speculate?: { depth: number; rule: Pick<D3qnOptions, 'state' | 'ruleHarm' | 'ruleHarmTime'> };
}

/**
 * The sequential masked query (the paper's "sequential resource requests"): agents weakest
 * first; each takes its best pair not yet taken, or with probability ε a random free one. In
 * the first pass, groups of `group` agents share one batched inference (their state computed
 * after the earlier groups are placed); in later passes each agent, its own pair freed, is
 * queried alone with everybody else placed, and may move (one round of best responses); with
 * `revise` < N only the slowest agents do (`D3qnOptions.revise`, `reviseBatch`).
 * Returns the actions and, with `record`, every decision with the state it was made in.
 */
export async function runAgents(s: TwinState, kind: StateKind, group: number, passes: number, q: (x: Float32Array<ArrayBuffer>, rows: number) => Promise<Arr>, epsilon = 0, rng?: Rng, forced?: Int32Array, o: QueryOptions = {}): Promise<{ act: Int32Array; x: Float32Array; decisions: Decision[] }> {
  const { record = true, revise = Infinity, reviseBatch = false } = o;
  const p = s.params;
  const N = p.clients;
  const A = p.servers * p.channels;
  const S = stateSize(p, kind);
  // static states (no 'sinr'): one query for everybody
  const first = isSinr(kind) ? Math.min(N, Math.max(1, group)) : N;
  const order = agentOrder(s);
  const placed = emptyAssignment(N);
  const taken = new Uint8Array(A);
  const act = new Int32Array(N);
  const seen = new Float32Array(record ? N * S : 0);
  const xg = new Float32Array(N * S);
  const decisions: Decision[] = [];
  // one agent at a time in the first pass: its state from the incremental builder
  const inc = isSinr(kind) && first === 1 ? (o.states?.fits(p, kind) ? o.states : new SinrStates(p, kind)) : undefined;
  inc?.reset();
  // a reviser's state, everybody else placed: the builder rebuilt (no allocation)
  const rebuilt = (n: number, r: number) => {
    if (!inc) return agentStates(s, kind, [n], placed, xg.subarray(r * S));
    inc.reset();
    for (let c = 0; c < N; c++) if (c !== n && placed.server[c] >= 0) inc.place(s, c, placed.server[c] * p.channels + placed.channel[c]);
    inc.write(s, n, xg, r * S);
  };
  // later passes (state 'sinr' only): each group, its own pairs freed, chooses again knowing
  // where everybody else is (one round of best responses)
  const rounds = isSinr(kind) ? Math.max(1, passes) : 1;
  let passOrder = order;
  const spec = o.speculate && o.speculate.depth > 1 && inc && !record && !forced && !(epsilon > 0 && rng) ? o.speculate : undefined;
  if (spec && inc) await speculativePass(s, inc, order, taken, placed, act, xg, q, spec);
  for (let pass = spec ? 1 : 0; pass < rounds; pass++) {
    // `revise` < N: only the slowest agents of the assignment so far revise, slowest first
    // (the straggler of eq. (17) sets the round's time)
    if (pass > 0 && revise < N) {
      const t = roundCost(s, placed).clientTimeS;
      passOrder = Array.from({ length: N }, (_, n) => n).sort((x, y) => t[y] - t[x] || x - y).slice(0, revise);
    }
    // `reviseBatch`: the revisers share one query, each state with only itself moved out
    const batched = pass > 0 && revise < N && reviseBatch;
    for (let g0 = 0, size = pass === 0 ? first : batched ? passOrder.length : 1; g0 < passOrder.length; g0 += size) {
      const agents = passOrder.slice(g0, g0 + size);
      if (batched) for (let r = 0; r < agents.length; r++) rebuilt(agents[r], r);
      for (const n of batched ? [] : agents) {
        if (placed.server[n] >= 0) taken[placed.server[n] * p.channels + placed.channel[n]] = 0;
        placed.server[n] = -1;
        placed.channel[n] = -1;
      }
      if (batched) {
        // states written above
      } else if (inc && pass === 0) inc.write(s, agents[0], xg, 0);
      else if (inc) rebuilt(agents[0], 0);
      else agentStates(s, kind, agents, placed, xg);
      // forced (the expert's rounds in training): the states are recorded, the network not asked
      const qs = forced ? undefined : await q(xg.subarray(0, agents.length * S) as Float32Array<ArrayBuffer>, agents.length);
      // batched revisers chose on the placement before any of them moved
      const premise = batched && record ? { server: Int32Array.from(placed.server), channel: Int32Array.from(placed.channel) } : undefined;
      for (let r = 0; r < agents.length; r++) {
        const n = agents[r];
        if (batched) {
          taken[placed.server[n] * p.channels + placed.channel[n]] = 0;
          placed.server[n] = placed.channel[n] = -1;
        }
        if (record) seen.set(xg.subarray(r * S, (r + 1) * S), n * S);
        let pick = -1;
        if (forced) pick = forced[n];
        else if (epsilon > 0 && rng && rng.float() < epsilon) {
          const free: number[] = [];
          for (let a = 0; a < A; a++) if (!taken[a]) free.push(a);
          pick = free[rng.int(free.length)];
        } else {
          let v = -Infinity;
          for (let a = 0; a < A; a++) if (!taken[a] && qs![r * A + a] > v) [v, pick] = [qs![r * A + a], a];
        }
        taken[pick] = 1;
        act[n] = pick;
        // the clients placed when n's state was built (its context), n not among them
        if (record) {
          const ctx = premise ? { server: Int32Array.from(premise.server), channel: Int32Array.from(premise.channel) } : { server: Int32Array.from(placed.server), channel: Int32Array.from(placed.channel) };
          ctx.server[n] = ctx.channel[n] = -1;
          decisions.push({ agent: n, x: xg.slice(r * S, (r + 1) * S), act: pick, placed: ctx });
        }
        placed.server[n] = Math.floor(pick / p.channels);
        placed.channel[n] = pick % p.channels;
        if (inc && pass === 0) inc.place(s, n, pick);
      }
    }
  }
  return { act, x: seen, decisions };
}

/** `QueryOptions.speculate`: the first pass of `runAgents`, the same choices in fewer calls. */
async function speculativePass(s: TwinState, inc: SinrStates, order: number[], taken: Uint8Array, placed: Assignment, act: Int32Array, xg: Float32Array, q: (x: Float32Array<ArrayBuffer>, rows: number) => Promise<Arr>, spec: NonNullable<QueryOptions['speculate']>): Promise<void> {
  const p = s.params;
  const N = p.clients;
  const A = p.servers * p.channels;
  const S = stateSize(p, inc.kind);
  const rv = new Float32Array(A);
  const guess = new Int32Array(spec.depth);
  const free0 = p.servers + p.channels + 2; // the uplink efficiencies: 0 on taken pairs
  for (let g0 = 0; g0 < N; ) {
    const rows = Math.min(spec.depth, N - g0);
    inc.save();
    inc.write(s, order[g0], xg, 0);
    for (let r = 1; r < rows; r++) {
      ruleValues(p, spec.rule, xg.subarray((r - 1) * S, r * S), 1, rv);
      let v = -Infinity;
      for (let a = 0; a < A; a++) if (xg[(r - 1) * S + free0 + a] > 0 && rv[a] > v) [v, guess[r - 1]] = [rv[a], a];
      inc.place(s, order[g0 + r - 1], guess[r - 1]);
      inc.write(s, order[g0 + r], xg, r * S);
    }
    const qs = await q(xg.subarray(0, rows * S) as Float32Array<ArrayBuffer>, rows);
    inc.restore();
    for (let r = 0; r < rows; r++) {
      const n = order[g0++];
      let pick = -1;
      let v = -Infinity;
      for (let a = 0; a < A; a++) if (!taken[a] && qs[r * A + a] > v) [v, pick] = [qs[r * A + a], a];
      taken[pick] = 1;
      act[n] = pick;
      placed.server[n] = Math.floor(pick / p.channels);
      placed.channel[n] = pick % p.channels;
      inc.place(s, n, pick);
      // the next row's state assumed the guess
      if (pick !== guess[r]) break;
    }
  }
}

export function assignmentToActions(p: TwinParams, a: Assignment): Int32Array {
  return Int32Array.from(a.server, (m, n) => m * p.channels + a.channel[n]);
}

export function actionsToAssignment(p: TwinParams, act: Int32Array): Assignment {
  const a = emptyAssignment(p.clients);
  for (let n = 0; n < p.clients; n++) {
    a.server[n] = Math.floor(act[n] / p.channels);
    a.channel[n] = act[n] % p.channels;
  }
  return a;
}

/** One thread: the machine (or the edge device) is shared, as in src/learn/runtime.ts. */
const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' };

/** onnxruntime sessions for one Q-network: Q values, gradients (tests), the RMSProp step. */
export class QNetRuntime {
  readonly spec: QNetSpec;
  readonly elem: ElemType;
  private readonly so: ort.InferenceSession.SessionOptions;
  private readonly qs: ort.InferenceSession;
  private gradS?: Promise<ort.InferenceSession>;
  private rmsS?: Promise<ort.InferenceSession>;
  private readonly layout;

  private constructor(spec: QNetSpec, elem: ElemType, qs: ort.InferenceSession, so: ort.InferenceSession.SessionOptions) {
    this.spec = spec;
    this.elem = elem;
    this.qs = qs;
    this.so = so;
    this.layout = qnetLayout(spec);
  }

  static async create(spec: QNetSpec, opts: { elem?: ElemType; threads?: number } = {}): Promise<QNetRuntime> {
    const elem = opts.elem ?? 'float';
    // one thread: the machine (or the edge device) is shared, as in src/learn/runtime.ts
    const so: ort.InferenceSession.SessionOptions = { intraOpNumThreads: opts.threads ?? 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' };
    return new QNetRuntime(spec, elem, await ort.InferenceSession.create(buildQGraph(spec, elem), so), so);
  }

  private t(data: Arr, dims: number[]): ort.Tensor {
    return new ort.Tensor(this.elem === 'double' ? 'float64' : 'float32', data, dims);
  }

  private scalar(v: number): ort.Tensor {
    return this.t(this.elem === 'double' ? Float64Array.of(v) : Float32Array.of(v), []);
  }

  private feeds(params: Arr, prefix = ''): Record<string, ort.Tensor> {
    if (params.length !== qnetParamCount(this.spec)) throw new RangeError(`expected ${qnetParamCount(this.spec)} parameters, got ${params.length}`);
    const f: Record<string, ort.Tensor> = {};
    for (const s of this.layout) f[prefix + s.name] = this.t(params.subarray(s.offset, s.offset + s.size), s.shape);
    return f;
  }

  async q(params: Arr, x: Arr, batch: number): Promise<Arr> {
    const out = await this.qs.run({ ...this.feeds(params), x: this.t(x, [batch, this.spec.inputs]) });
    return out.q.data as Arr;
  }

  /** Loss (22) and its gradient into `grads`. */
  async grad(params: Arr, x: Arr, act: Arr, y: Arr, batch: number, grads: Arr): Promise<number> {
    const session = await (this.gradS ??= ort.InferenceSession.create(buildQGradGraph(this.spec, this.elem), this.so));
    const fetches: Record<string, ort.Tensor | null> = { loss: null };
    for (const s of this.layout) fetches[`g${s.name}`] = this.t(grads.subarray(s.offset, s.offset + s.size), s.shape);
    const out = await session.run({ ...this.feeds(params), x: this.t(x, [batch, this.spec.inputs]), act: this.t(act, [batch, this.spec.actions]), y: this.t(y, [batch, this.spec.actions]) }, fetches);
    return Number((out.loss.data as Arr)[0]);
  }

  /** One RMSProp step; writes the new parameters and mean squares into `next`, `sqNext`. */
  async rmsprop(params: Arr, sq: Arr, x: Arr, act: Arr, y: Arr, batch: number, o: { lr: number; alpha: number; eps: number }, next: Arr, sqNext: Arr): Promise<number> {
    const session = await (this.rmsS ??= ort.InferenceSession.create(buildQRmspropGraph(this.spec, this.elem), this.so));
    const feeds = { ...this.feeds(params), ...this.feeds(sq, 's_'), x: this.t(x, [batch, this.spec.inputs]), act: this.t(act, [batch, this.spec.actions]), y: this.t(y, [batch, this.spec.actions]), lr: this.scalar(o.lr), alpha: this.scalar(o.alpha), eps: this.scalar(o.eps) };
    const fetches: Record<string, ort.Tensor | null> = { loss: null };
    for (const s of this.layout) {
      fetches[`${s.name}_new`] = this.t(next.subarray(s.offset, s.offset + s.size), s.shape);
      fetches[`s_${s.name}_new`] = this.t(sqNext.subarray(s.offset, s.offset + s.size), s.shape);
    }
    const out = await session.run(feeds, fetches);
    return Number((out.loss.data as Arr)[0]);
  }

  async close(): Promise<void> {
    const extra = await Promise.all([this.gradS, this.rmsS].filter((s) => s !== undefined));
    await Promise.all([this.qs, ...extra].map((s) => s.release()));
  }
}

export interface D3qnOptions {
  hidden: number[];
  episodes: number;
  roundsPerEpisode: number;
  replaySize: number;
  batch: number;
  gamma: number;
  lr: number;
  rmsAlpha: number;
  rmsEps: number;
  epsilonStart: number;
  epsilonEnd: number;
  /** Share of all training rounds over which ε falls linearly to `epsilonEnd`. */
  epsilonDecay: number;
  /** Online updates between target-network copies (r^t of Algorithm 2). */
  targetEvery: number;
  /**
   * 'taken': eq. (22) as stated, the loss on the taken action only. 'all': the twin also
   * scores every other free pair the agent could have taken (everybody else where they are)
   * and the loss covers them all: the digital twin's counterfactuals as a dense signal.
   * 'placed': the same dense counterfactuals, but scored with only the clients placed before
   * the agent chose (what its state describes), not those placed after: the target is then
   * nearly a function of the state, not of later agents' choices it cannot see.
   */
  targets: 'taken' | 'all' | 'placed';
  /**
   * Distillation phase (DQfD-style pretraining, a deviation): during the first
   * `distilShare` of the episodes the targets are the hand-written rule's values
   * (`ruleValues`) on every free pair of the state the agent saw, not the twin's
   * counterfactuals; the replay memory is emptied when the phase ends and `targets` takes over
   * (Q-learning fine-tuning). 0: no distillation; 1: distillation only.
   */
  distilShare: number;
  /** Distillation targets more than `distilSpan` below the state's best free pair weigh
   * `distilLowWeight` in the loss (span 0: all weigh 1): the policy needs the order near the
   * top, and the network's capacity is spent there; the rest keep their (low) targets, so a deep
   * fade stays far below (raising them to best − span instead let one round in a few hundred
   * put a client in a deep fade: docs/experiments.md). */
  distilSpan: number;
  distilLowWeight: number;
  /** State 'sinr': weight of the rule's harm term (bit/s/Hz taken from placed co-channel
   * clients, in cost units per bit/s/Hz); see `ruleValues`. */
  ruleHarm: number;
  /** State 'sinr-dl': weight of the seconds the agent would take from the placed co-channel
   * clients, up and down (in units of λ, so 1 counts them as if each were the round's
   * straggler); see `ruleValues`. */
  ruleHarmTime: number;
  /** Learning rate at the end of training: η falls linearly from `lr` to `lrEnd`. */
  lrEnd: number;
  /** Minibatch updates per round (r^o = 1 of Algorithm 2, and more than one per round). */
  updatesPerRound: number;
  /** Rounds of pure exploration before the first update. */
  warmupRounds: number;
  state: StateKind;
  /** Agents per batched query in the first pass with the 'sinr' state (1: fully sequential,
   * N: one query). */
  group: number;
  /** Passes over the agents with the 'sinr' state; from the second, each revises its choice
   * alone, knowing where everybody else is. */
  passes: number;
  /** Passes of the shipped policy's query (d3qnScheduler); training acts with `passes`. The
   * revising passes let an agent placed early, which chose without knowing who came after,
   * move once everybody is placed; each pass costs N more network queries. The committed
   * policy is trained for, and queried with, one pass (docs/experiments.md). */
  queryPasses: number;
  /** Agents that revise in each pass after the first (training and query): the slowest of the
   * assignment so far by the twin's time, slowest first; N or more: all, in the first pass's
   * order. Two cost 2 network queries where a full pass costs N (docs/experiments.md, "Fifth
   * attempt"). */
  revise: number;
  /** The revisers of a pass share one network query (a batch of `revise` rows), each state
   * with only itself moved out and the others where they are; they then choose in turn,
   * slowest first, each among the pairs still free. Measured with the rule on seed 5's 600
   * rounds: 4.105 against 4.102 one by one, for one call instead of `revise`. */
  reviseBatch: boolean;
  reward: RewardKind;
  /**
   * Imitation warm start (a deviation from the paper, which explores from scratch): the
   * probability that a training round is acted by the `expert` instead of the agents, falling
   * linearly from `expertStart` to `expertEnd` over the ε schedule. With swap matching the
   * agents record the states they would have seen placing themselves (weakest first) into
   * swap's pairs, and the counterfactual targets are scored around swap's near-optimal
   * assignment; the rule places them one by one on their own states. 0 and 0: the agents'
   * own ε-greedy rounds only.
   */
  expertStart: number;
  expertEnd: number;
  /** Who acts in the expert's rounds: 'swap' (swap matching's pairs) or 'rule' (the
   * hand-written rule, sequentially, weakest first, on the agents' own states). */
  expert: 'swap' | 'rule';
  seed: number;
}

/**
 * Section VI and Table I where given (512-256-128 ReLU, RMSProp, replay 2^17); the rest are our
 * choices (docs/decisions.md):
 * - γ = 0: the twin's rounds are independent (positions and fading redrawn), so no action
 *   changes the next state (budgets never bind by default) and the best policy is myopic for
 *   every γ; γ = 0.99 (Table I) would only add the variance of bootstrapping a value 100× the
 *   reward. The double-Q target (23) is used when γ > 0.
 * - η = 3·10⁻⁴ instead of the paper's 10⁻³: with the dense targets and before the reward
 *   floor, 100 episodes at 10⁻³ gave a policy of mean cost 19.5 against 9.0 at 3·10⁻⁴; with
 *   a floor, 3·10⁻⁴ and 10⁻⁴ ended alike (4.92, 4.91).
 * - distillation (a deviation; docs/experiments.md, "Fourth attempt"): the targets are the
 *   hand-written rule's values of the free pairs (`ruleValues`, the same state), raised to
 *   2 below the best (`distilSpan`); the rule acts in every training round at first and in a
 *   fifth of them at the end of the ε schedule, the network (ε from 0.3 to 0.01 over 60 % of
 *   training) in the others, so that it also learns the rule's choice in the states its own
 *   mistakes lead to (DAgger). On the 200 rounds of twin seed 5 with one query pass: 4.61,
 *   against 5.19 for the swap-imitating policy before it (swap 4.14, the rule itself 4.38).
 *   Q-learning on the twin's targets after it (`distilShare` < 1) did not help (4.78).
 * - state 'sinr-dl' and its rule (`ruleHarmTime` 1, chosen on seed 5's 600 rounds: 0.5, 1, 2
 *   gave 4.390, 4.367, 4.402 with one pass; the 'sinr' rule 14.26), and a second pass in which
 *   the 2 slowest agents revise (`passes`, `queryPasses`, `revise`, `reviseBatch`: the rule
 *   4.367 → 4.105, swap 4.136), trained with the revising pass so that its states are learnt
 *   too (docs/experiments.md, "Fifth attempt").
 * - η from 3·10⁻⁴ (the paper: 10⁻³; with the twin's targets 10⁻³ diverged to a policy of cost
 *   19.5 against 9.0) falling linearly to 3·10⁻⁵ (`lrEnd`): the rule's targets are exact, so
 *   what remains at the end is the network's fit near the best pairs.
 * - 640 episodes of 25 rounds (one data epoch of section VI each) × 18 decisions = 288,000
 *   decisions, 4 updates of 128 per round: 13.5 minutes on one core shared with 5 engineers'
 *   jobs (load 6-10). 320 episodes (the fourth attempt's) gave 4.322 on seed 5's 600 rounds,
 *   640 gave 4.243 (swap 4.136).
 * - a target copy every 100 updates, RMSProp α = 0.99, ε = 1e-8 (PyTorch's defaults).
 */
export const defaultD3qnOptions: D3qnOptions = {
  hidden: [512, 256, 128],
  episodes: 640,
  roundsPerEpisode: 25,
  replaySize: 2 ** 17,
  batch: 128,
  gamma: 0,
  lr: 3e-4,
  rmsAlpha: 0.99,
  rmsEps: 1e-8,
  epsilonStart: 0.3,
  epsilonEnd: 0.01,
  epsilonDecay: 0.6,
  targetEvery: 100,
  targets: 'all',
  updatesPerRound: 4,
  warmupRounds: 20,
  state: 'sinr-dl',
  group: 1,
  passes: 2,
  queryPasses: 2,
  revise: 2,
  reviseBatch: true,
  reward: 'marginal',
  expertStart: 1,
  expertEnd: 0.2,
  expert: 'rule',
  distilShare: 1,
  distilSpan: 2,
  distilLowWeight: 0.2,
  ruleHarm: 0.3,
  ruleHarmTime: 1,
  lrEnd: 3e-5,
  seed: 1,
};

export interface TrainResult {
  spec: QNetSpec;
  params: Float32Array;
  options: D3qnOptions;
  /** Mean loss (22) per episode, and the mean round cost the exploring agents achieved. */
  episodes: { episode: number; loss: number; cost: number; epsilon: number }[];
  seconds: number;
}

/** The paper's ρ: slightly above the reciprocal of the least cost a batch of random rounds reaches. */
async function teamRho(p: TwinParams, seed: number): Promise<number> {
  const twin = new Twin(p, seed);
  const rng = new Rng(seed + 1);
  let least = Infinity;
  for (let r = 0; r < 50; r++) {
    const s = twin.next();
    const { act } = await runAgents(s, 'fingerprint', p.clients, 1, async (_x, rows) => new Float32Array(rows * p.servers * p.channels), 1, rng);
    least = Math.min(least, roundCost(s, actionsToAssignment(p, act)).cost);
  }
  return 1.05 / least;
}

/**
 * Each agent's reward for a round. 'team' is eq. (20): ρ + 1/cost for everybody while the
 * budgets hold. 'own': −log c_n, c_n = λ·T_n + μ·E_n the agent's own time and energy.
 * 'marginal' (default): −log c_n minus the rise in log cost it causes the others (through
 * interference and server load), Σ_{o≠n} log c_o − log c_o without n: a difference reward
 * (Wolpert & Tumer) for Σ_n log c_n. Not the max-based team cost: with that, one exploring
 * agent's deep fade sets everybody's reward and drowns every other agent's signal.
 */
export function agentRewards(s: TwinState, a: Assignment, cost: RoundCost, kind: RewardKind, rho = 0): Float64Array {
  const p = s.params;
  const own = (c: RoundCost, n: number) => p.lambda * c.clientTimeS[n] + p.mu * c.clientEnergyJ[n];
  const r = new Float64Array(p.clients);
  for (let n = 0; n < p.clients; n++) {
    if (kind === 'team') r[n] = cost.withinBudget ? rho + 1 / cost.cost : 0;
    else if (kind === 'own') r[n] = -Math.log(own(cost, n));
    else if (kind === 'team-diff') {
      const without = { server: Int32Array.from(a.server), channel: Int32Array.from(a.channel) };
      without.server[n] = -1;
      without.channel[n] = -1;
      r[n] = teamDiff(p.clients, roundCost(s, without).cost, cost.cost);
    }
    else {
      const without = { server: Int32Array.from(a.server), channel: Int32Array.from(a.channel) };
      without.server[n] = -1;
      without.channel[n] = -1;
      const c = roundCost(s, without);
      r[n] = -Math.log(own(cost, n));
      for (let o = 0; o < p.clients; o++) if (o !== n) r[n] -= Math.log(own(cost, o)) - Math.log(own(c, o));
    }
    if (kind !== 'team') r[n] = Math.max(r[n], REWARD_FLOOR);
  }
  return r;
}

/**
 * 'team-diff': the difference reward (Wolpert & Tumer) of the team's own objective (19a), the
 * log of the round cost without agent n minus with it, times N so that a typical agent's share
 * (a few per cent of the cost) is of order 1. Unlike 'marginal' it weighs harm by what it does
 * to λ·max T + μ·ΣE, so slowing the straggler counts and slowing a fast client barely does; and
 * around an exchange-stable matching (swap's) the taken pair is the argmax of these targets.
 */
function teamDiff(N: number, withoutCost: number, withCost: number): number {
  return N * (Math.log(withoutCost) - Math.log(withCost));
}

/**
 * Log rewards below this are clipped (own cost above e^8 ≈ 3000 s-and-J, 1000 × a
 * typical client's): unbounded targets of pairs in deep fades would dominate the squared loss.
 * At −5 (own cost 150) the network stopped telling bad from catastrophic: 2 rounds in 1000
 * cost 190 and 900 (swap: 4-6); at −8 none above 17, for a 5 % higher median
 * (docs/experiments.md).
 */
const REWARD_FLOOR = -8;

/**
 * The hand-written rule over the 'sinr' state, as values for every pair (higher is better;
 * taken pairs, whose spectral efficiency the state zeroes, get `REWARD_FLOOR` and weight 0):
 * −log of the agent's estimated own λ·T_n + μ·E_n plus `harm` × the spectral efficiency it
 * takes from the placed co-channel clients. T_n from the state alone: upload at the pair's
 * spectral efficiency, download at the SINR 10 dB higher (33 against 23 dBm, the same gain:
 * Table I's powers), edge time at the miner's placed load plus this agent, plus the edge time
 * it adds to each client already there (eq. (7) shares the GPU). A function of the state only,
 * so a network can represent it exactly: the distillation phase's teacher and the expert of
 * `expert: 'rule'`. Its harm weight 0.3 was chosen on 200 rounds of twin seed 5 (0 to 1:
 * 4.82 to 4.38 to 4.49; swap 4.14 there), never on the experiment's rounds.
 * Over the 'sinr-dl' state the download time uses the state's downlink spectral efficiency
 * (the placed clients' miners as interference, eq. 15) instead of the 10 dB rule, and
 * `ruleHarmTime` × λ × the seconds the placed co-channel clients would lose is added to the
 * cost (docs/experiments.md, "Fifth attempt").
 */
export function ruleValues(p: TwinParams, rule: Pick<D3qnOptions, 'state' | 'ruleHarm' | 'ruleHarmTime'>, x: ArrayLike<number>, rows: number, out: Float32Array, weight?: Float32Array, span = 0, lowWeight = 1): void {
  const { servers: M, channels: K } = p;
  const A = M * K;
  const S = stateSize(p, rule.state);
  const dl = rule.state === 'sinr-dl';
  const harm = rule.ruleHarm;
  const D = p.samplesPerRound;
  const down = dbmToW(p.serverPowerDbm) / dbmToW(p.clientPowerDbm);
  const pn = dbmToW(p.clientPowerDbm);
  const edge = (p.serverFlopsPerSample * D) / p.serverFlops;
  for (let r = 0; r < rows; r++) {
    const se0 = r * S + M + K + 2;
    // 'sinr': uplink efficiency, harm, loads; 'sinr-dl': uplink efficiency, loads, count,
    // downlink efficiency, lost seconds
    const h0 = se0 + A;
    const l0 = dl ? se0 + A : h0 + A;
    const dl0 = l0 + M + 1;
    const ht0 = dl0 + A;
    for (let j = 0; j < A; j++) {
      const se = x[se0 + j] * 8;
      if (weight) weight[r * A + j] = se > 0 ? 1 : 0;
      if (!(se > 0)) {
        out[r * A + j] = REWARD_FLOOR;
        continue;
      }
      const load = x[l0 + Math.floor(j / K)] * K;
      const tUp = (D * p.bitsUpPerSample) / (p.bandwidthHz * se);
      const tDown = (D * p.bitsDownPerSample) / (p.bandwidthHz * (dl ? x[dl0 + j] * 8 : Math.log2(1 + down * (2 ** se - 1))));
      const own = p.lambda * (tUp + tDown + edge * (2 * load + 1)) + p.mu * pn * tUp;
      const others = dl ? rule.ruleHarmTime * p.lambda * Math.expm1(8 * x[ht0 + j]) : harm * 8 * x[h0 + j];
      out[r * A + j] = Math.max(-Math.log(own + others), REWARD_FLOOR);
    }
    if (span > 0 && weight) {
      // the order near the top decides; far below it the value only has to stay low
      let best = -Infinity;
      for (let j = 0; j < A; j++) if (x[se0 + j] > 0) best = Math.max(best, out[r * A + j]);
      for (let j = 0; j < A; j++) if (weight[r * A + j] && out[r * A + j] < best - span) weight[r * A + j] = lowWeight;
    }
  }
}

/** Agent n's reward (as `agentRewards`) had it taken `pair` with everybody else where they are. */
function counterfactualRewards(s: TwinState, a: Assignment, n: number, kind: RewardKind, rho: number, out: Float32Array, weight: Float32Array): void {
  const p = s.params;
  const K = p.channels;
  const own = (c: RoundCost, i: number) => p.lambda * c.clientTimeS[i] + p.mu * c.clientEnergyJ[i];
  const b = { server: Int32Array.from(a.server), channel: Int32Array.from(a.channel) };
  b.server[n] = -1;
  b.channel[n] = -1;
  const without = kind === 'marginal' || kind === 'team-diff' ? roundCost(s, b) : undefined;
  const taken = new Uint8Array(p.servers * K);
  for (let o = 0; o < p.clients; o++) if (o !== n && a.server[o] >= 0) taken[a.server[o] * K + a.channel[o]] = 1;
  for (let pair = 0; pair < p.servers * K; pair++) {
    weight[pair] = taken[pair] ? 0 : 1;
    out[pair] = 0;
    if (taken[pair]) continue;
    b.server[n] = Math.floor(pair / K);
    b.channel[n] = pair % K;
    const c = roundCost(s, b);
    if (kind === 'team') out[pair] = c.withinBudget ? rho + 1 / c.cost : 0;
    else if (kind === 'team-diff') out[pair] = Math.max(teamDiff(p.clients, without!.cost, c.cost), REWARD_FLOOR);
    else {
      let r = -Math.log(own(c, n));
      // (clients not placed yet, with targets 'placed', neither cost nor gain)
      if (kind === 'marginal') for (let o = 0; o < p.clients; o++) if (o !== n && b.server[o] >= 0) r -= Math.log(own(c, o)) - Math.log(own(without!, o));
      out[pair] = Math.max(r, REWARD_FLOOR);
    }
  }
}

/** Algorithm 2 with one shared network (parameter sharing over the agents, see above). */
/** `onEpisode` also receives the network's parameters after the episode (for checkpoints). */
export async function trainD3qn(p: TwinParams, opts: D3qnOptions, onEpisode?: (e: TrainResult['episodes'][number], params: Float32Array) => void): Promise<TrainResult> {
  const started = performance.now();
  const N = p.clients;
  const A = p.servers * p.channels;
  const S = stateSize(p, opts.state);
  const spec: QNetSpec = { inputs: S, hidden: opts.hidden, actions: A };
  const rt = await QNetRuntime.create(spec);
  const P = qnetParamCount(spec);
  let w: Float32Array = initQnet(spec, opts.seed);
  let wNext: Float32Array = new Float32Array(P);
  let sq: Float32Array = new Float32Array(P);
  let sqNext: Float32Array = new Float32Array(P);
  let target = Float32Array.from(w);
  const rng = new Rng(opts.seed + 7);
  const rho = opts.reward === 'team' ? await teamRho(p, opts.seed + 3) : 0;
  const expert = (opts.expertStart > 0 || opts.expertEnd > 0) && opts.expert === 'swap' ? swapScheduler(opts.seed + 5) : undefined;
  if ((opts.expert === 'rule' || opts.distilShare > 0) && !isSinr(opts.state)) throw new BflError(ErrorCode.BAD_CONFIG, `the D3QN's rule (expert 'rule', distilShare > 0) reads the 'sinr' or 'sinr-dl' state, not '${opts.state}'`);
  const ruleOut = new Float32Array(N * A);
  const distilEpisodes = Math.round(opts.distilShare * opts.episodes);
  // replay memory: a ring of (s, a, r, s', done)
  const cap = opts.replaySize;
  const rs = new Float32Array(cap * S);
  const rs2 = new Float32Array(cap * S);
  // per transition: the target of every action (taken only: the reward in every column) and
  // the loss weight of every action (taken only: its one-hot)
  const ry = new Float32Array(cap * A);
  const rw = new Float32Array(cap * A);
  const rdone = new Uint8Array(cap);
  let size = 0;
  let head = 0;
  const B = opts.batch;
  const xb = new Float32Array(B * S);
  const x2b = new Float32Array(B * S);
  const ab = new Float32Array(B * A);
  const yb = new Float32Array(B * A);
  const totalRounds = opts.episodes * opts.roundsPerEpisode;
  let round = 0;
  let updates = 0;
  const episodes: TrainResult['episodes'] = [];
  try {
    for (let ep = 0; ep < opts.episodes; ep++) {
      // fine-tuning starts from the distilled network, with a memory of its own targets only
      if (ep === distilEpisodes && ep > 0) size = head = 0;
      const twin = new Twin(p, opts.seed * 1_000_003 + ep); // Algorithm 2 line 3: a fresh DT per episode
      let s = twin.next();
      let lossSum = 0;
      let lossN = 0;
      let costSum = 0;
      let epsilon = 0;
      for (let r = 0; r < opts.roundsPerEpisode; r++, round++) {
        epsilon = Math.max(opts.epsilonEnd, opts.epsilonStart - ((opts.epsilonStart - opts.epsilonEnd) * round) / (opts.epsilonDecay * totalRounds));
        const share = Math.min(1, round / (opts.epsilonDecay * totalRounds));
        const expertP = opts.expertStart + (opts.expertEnd - opts.expertStart) * share;
        const expertRound = expertP > 0 && rng.float() < expertP;
        const forced = expertRound && expert ? assignmentToActions(p, (await expert.assign(s)) as Assignment) : undefined;
        // the rule acts as a greedy Q function over the states the agents see
        const q = expertRound && opts.expert === 'rule' ? async (xg: Float32Array, rows: number) => (ruleValues(p, opts, xg, rows, ruleOut), ruleOut) : (xg: Float32Array<ArrayBuffer>, rows: number) => rt.q(w, xg, rows);
        const { act, decisions } = await runAgents(s, opts.state, opts.group, opts.passes, q, expertRound ? 0 : round < opts.warmupRounds ? 1 : epsilon, rng, forced, { revise: opts.revise ?? Infinity, reviseBatch: opts.reviseBatch ?? false });
        const a = actionsToAssignment(p, act);
        const cost = roundCost(s, a);
        costSum += cost.cost;
        twin.record(a, cost);
        const last = r === opts.roundsPerEpisode - 1 || !cost.withinBudget;
        const s2 = twin.next();
        // s' of eq. (23): the agent's state at the start of the next round (nobody placed yet)
        const x2 = new Float32Array(N * S);
        agentStates(s2, opts.state, Array.from({ length: N }, (_, n) => n), emptyAssignment(N), x2);
        const rewards = agentRewards(s, a, cost, opts.reward, rho);
        for (const d of decisions) {
          const n = d.agent;
          rs.set(d.x, head * S);
          rs2.set(x2.subarray(n * S, (n + 1) * S), head * S);
          const yRow = ry.subarray(head * A, (head + 1) * A);
          const wRow = rw.subarray(head * A, (head + 1) * A);
          if (ep < distilEpisodes) ruleValues(p, opts, d.x, 1, yRow, wRow, opts.distilSpan, opts.distilLowWeight);
          else if (opts.targets === 'all') counterfactualRewards(s, a, n, opts.reward, rho, yRow, wRow);
          else if (opts.targets === 'placed') counterfactualRewards(s, d.placed, n, opts.reward, rho, yRow, wRow);
          else {
            yRow.fill(rewards[n]);
            wRow.fill(0);
            wRow[d.act] = 1;
          }
          rdone[head] = last ? 1 : 0;
          head = (head + 1) % cap;
          size = Math.min(size + 1, cap);
        }
        for (let u = 0; u < opts.updatesPerRound && round >= opts.warmupRounds && size >= B; u++) {
          const idx = Array.from({ length: B }, () => rng.int(size));
          for (let i = 0; i < B; i++) {
            xb.set(rs.subarray(idx[i] * S, (idx[i] + 1) * S), i * S);
            x2b.set(rs2.subarray(idx[i] * S, (idx[i] + 1) * S), i * S);
            ab.set(rw.subarray(idx[i] * A, (idx[i] + 1) * A), i * A);
            yb.set(ry.subarray(idx[i] * A, (idx[i] + 1) * A), i * A);
          }
          if (opts.gamma > 0) {
            // eq. (23) as double DQN (van Hasselt et al., the paper's [30]): the online network
            // picks a*, the target network values it
            const qOn = await rt.q(w, x2b, B);
            const qTg = await rt.q(target, x2b, B);
            for (let i = 0; i < B; i++) {
              let best = 0;
              for (let j = 1; j < A; j++) if (qOn[i * A + j] > qOn[i * A + best]) best = j;
              if (!rdone[idx[i]]) for (let j = 0; j < A; j++) yb[i * A + j] += opts.gamma * qTg[i * A + best];
            }
          }
          const lr = opts.lr + ((opts.lrEnd - opts.lr) * round) / totalRounds;
          const loss = await rt.rmsprop(w, sq, xb, ab, yb, B, { lr, alpha: opts.rmsAlpha, eps: opts.rmsEps }, wNext, sqNext);
          [w, wNext] = [wNext, w];
          [sq, sqNext] = [sqNext, sq];
          if (++updates % opts.targetEvery === 0) target.set(w);
          lossSum += loss;
          lossN++;
        }
        s = s2;
        if (last) break;
      }
      const e = { episode: ep + 1, loss: lossN ? lossSum / lossN : NaN, cost: costSum / opts.roundsPerEpisode, epsilon };
      episodes.push(e);
      onEpisode?.(e, w);
    }
  } finally {
    await rt.close();
  }
  return { spec, params: w, options: opts, episodes, seconds: (performance.now() - started) / 1000 };
}

/** What a policy file needs beside its ONNX graph: how to build its input and read its output. */
export interface PolicyMeta {
  format: 'bfl-node/d3qn-policy/1';
  spec: QNetSpec;
  state: StateKind;
  twin: TwinParams;
  options: D3qnOptions;
  command: string;
  trainSeconds: number;
  /** The training curve (Fig. 9). */
  curve: TrainResult['episodes'];
}

/** Writes `stem.onnx` (the inference graph with the weights as initializers) and `stem.json`. */
export async function savePolicy(stem: string, r: TrainResult, p: TwinParams, command: string): Promise<string[]> {
  await mkdir(dirname(stem), { recursive: true });
  const meta: PolicyMeta = { format: 'bfl-node/d3qn-policy/1', spec: r.spec, state: r.options.state, twin: p, options: r.options, command, trainSeconds: Math.round(r.seconds), curve: r.episodes };
  await writeFile(`${stem}.onnx`, buildQGraph(r.spec, 'float', r.params));
  await writeFile(`${stem}.json`, JSON.stringify(meta, null, 2) + '\n');
  return [`${stem}.onnx`, `${stem}.json`];
}

/** Rows per speculative call of the scheduler's first pass (`QueryOptions.speculate`). The
 * network agrees with its teacher on 69 % of the choices, so a call of 3 rows places 2.2 agents
 * on average; CPU time per round over the experiment's rounds (load 7-10): 0.78 ms plain, 0.58
 * with 2 rows, 0.48 with 3, 0.51 with 4 (docs/experiments.md, "How fast"). */
const SPECULATE = 3;

/** The committed policy for the default twin (regenerate: see its .json `command`). */
export const DEFAULT_POLICY = new URL('./policy/d3qn-default', import.meta.url).pathname;

/**
 * The D3QN scheduler from a policy file: the masked sequential query (`runAgents`) with one
 * session, one input tensor over a reused buffer per row count, and no decisions recorded.
 */
export async function d3qnScheduler(stem: string = DEFAULT_POLICY): Promise<Scheduler> {
  let meta: PolicyMeta;
  let session: ort.InferenceSession;
  try {
    meta = JSON.parse(await readFile(`${stem}.json`, 'utf8')) as PolicyMeta;
    if (meta.format !== 'bfl-node/d3qn-policy/1') throw new Error(`unknown format ${String(meta.format)}`);
    session = await ort.InferenceSession.create(`${stem}.onnx`, SESSION_OPTIONS);
  } catch (e) {
    throw new BflError(ErrorCode.BAD_CONFIG, `cannot load the D3QN policy ${stem}.onnx/.json (${(e as Error).message}); train one with \`bfl-node experiment association --train\``);
  }
  const passes = meta.options.queryPasses ?? meta.options.passes;
  // policies from before the revising pass (no `revise`) revise everybody
  const query: QueryOptions = { record: false, revise: meta.options.revise ?? Infinity, reviseBatch: meta.options.reviseBatch ?? false, speculate: SPECULATE > 1 && isSinr(meta.state) ? { depth: SPECULATE, rule: meta.options } : undefined };
  // the tensor of each batch size, over a buffer the query's state rows are copied into
  const tensors = new Map<number, { buf: Float32Array; feeds: Record<string, ort.Tensor> }>();
  const q = async (x: Float32Array, rows: number) => {
    let t = tensors.get(rows);
    if (!t) {
      const buf = new Float32Array(rows * meta.spec.inputs);
      tensors.set(rows, (t = { buf, feeds: { x: new ort.Tensor('float32', buf, [rows, meta.spec.inputs]) } }));
    }
    t.buf.set(x.subarray(0, rows * meta.spec.inputs));
    return (await session.run(t.feeds)).q.data as Float32Array;
  };
  return {
    name: 'd3qn',
    async assign(s) {
      const p = s.params;
      if (p.servers * p.channels !== meta.spec.actions) throw new BflError(ErrorCode.BAD_CONFIG, `the D3QN policy ${stem} was trained for ${meta.twin.servers} servers × ${meta.twin.channels} channels; retrain it for ${p.servers} × ${p.channels}`);
      if (stateSize(p, meta.state) !== meta.spec.inputs) throw new BflError(ErrorCode.BAD_CONFIG, `the D3QN policy ${stem} takes ${meta.spec.inputs} inputs, but its state '${meta.state}' has ${stateSize(p, meta.state)} in this version; retrain it with \`bfl-node experiment association --train\``);
      // one state builder across rounds of the same twin (no allocation per round)
      if (isSinr(meta.state) && !query.states?.fits(p, meta.state)) query.states = new SinrStates(p, meta.state);
      return actionsToAssignment(p, (await runAgents(s, meta.state, meta.options.group, passes, q, 0, undefined, undefined, query)).act);
    },
    close: () => session.release(),
  };
}
