/**
 * A digital twin of the radio network between clients and edge servers (our miners): the cost
 * model of the DT cloud-edge-client paper (../shared/papers/dt-cloud-edge-client-learning.txt,
 * section IV, eqs. (5)-(19), Table I). Pure and seeded: a round's state (positions and
 * Rayleigh fading) comes from an Rng; the cost of an assignment is a plain function of it.
 */
import { BflError, ErrorCode } from '../core/errors.ts';
import { Rng } from '../core/random.ts';

export interface TwinParams {
  clients: number; // N
  servers: number; // M
  channels: number; // K
  /** Side of the square the clients live in, metres; servers sit at its corners (M = 4), or
   * evenly on its perimeter otherwise. */
  areaM: number;
  bandwidthHz: number; // G
  clientPowerDbm: number; // P_n
  serverPowerDbm: number; // P_m
  noiseDbm: number; // σ²
  /** Path loss PL(d) = a + b·log10(d [m]) dB (Table I: 35.3 + 37.6·log10 d). */
  pathLossA: number;
  pathLossB: number;
  /** Distances below this are clamped (the path-loss model is not meant for d → 0). */
  minDistanceM: number;
  samplesPerRound: number; // D_n^r
  bitsUpPerSample: number; // ξ^H, feature maps
  bitsDownPerSample: number; // ξ^B, their gradients
  clientFlopsPerSample: number; // ψ^H
  clientFlops: number; // F^H
  clientJPerSample: number; // ω^H
  serverFlopsPerSample: number; // ψ^B
  serverFlops: number; // F^B
  lambda: number; // λ, weight of the round time
  mu: number; // μ, weight of the clients' total energy
  latencyBudgetS: number; // T^max, over a run
  energyBudgetJ: number; // E_n^max, per client over a run
}

/**
 * Table I and section VI where the paper gives a value; the rest are our choices
 * (docs/decisions.md, "Association scheduler"):
 * - 128 samples per client per round: 51,200 segments over 16 clients, 2500 rounds = 100 epochs,
 *   so 25 rounds per epoch and 3200/25 = 128.
 * - ξ^H = ξ^B = 0.2 Mbit per sample: not in the paper. Chosen so a round's upload (about 1-4 s at
 *   the rates this geometry gives) and its edge compute (0.1-0.7 s) are of the same order, so
 *   both congestion effects of section IV (interference and server overload) matter.
 * - ψ^B = 24 GFLOPs per sample: ResNet50's last block forward+backward (≈ 3 × 0.8 GFLOPs) for
 *   10 frames; F^B = 35.6 TFLOPS, an RTX 3090's FP32 peak (section VI's edge GPU).
 * - Local compute is off (ψ^H = ω^H = 0): section VI freezes the head and leaves local delay
 *   and energy out. The model keeps eqs. (5)-(6) for other settings.
 * - λ = μ = 0.5: "equal importance to training time and energy".
 * - Budgets large enough never to bind, as in Figs. 6-9 ("sufficient").
 */
export const defaultTwinParams: TwinParams = {
  clients: 16,
  servers: 4,
  channels: 10,
  areaM: 600,
  bandwidthHz: 4e6,
  clientPowerDbm: 23,
  serverPowerDbm: 33,
  noiseDbm: -114,
  pathLossA: 35.3,
  pathLossB: 37.6,
  minDistanceM: 1,
  samplesPerRound: 128,
  bitsUpPerSample: 0.2e6,
  bitsDownPerSample: 0.2e6,
  clientFlopsPerSample: 0,
  clientFlops: 35.6e12,
  clientJPerSample: 0,
  serverFlopsPerSample: 24e9,
  serverFlops: 35.6e12,
  lambda: 0.5,
  mu: 0.5,
  latencyBudgetS: 1e12,
  energyBudgetJ: 1e12,
};

export function twinParams(over: Partial<TwinParams> = {}): TwinParams {
  const p = { ...defaultTwinParams, ...over };
  for (const k of ['clients', 'servers', 'channels'] as const) {
    if (!Number.isInteger(p[k]) || p[k] < 1) throw new BflError(ErrorCode.BAD_CONFIG, `association twin: ${k} must be a whole number >= 1, got ${p[k]}`);
  }
  // constraint (19f): every client needs its own (server, channel) pair
  if (p.clients > p.servers * p.channels) throw new BflError(ErrorCode.BAD_CONFIG, `association twin: ${p.clients} clients need at most servers × channels = ${p.servers * p.channels} (one client per server and channel); add servers or channels`);
  return p;
}

/** One round of the twin: who is where and the channel gains (quasi-static within the round). */
export interface TwinState {
  params: TwinParams;
  /** x, y of client n at [2n], [2n+1]; metres. */
  clientPos: Float64Array;
  serverPos: Float64Array;
  /** Linear power gain h_{n,m}^k at [(n·M + m)·K + k]: path loss × Rayleigh |h|² ~ Exp(1).
   * Reciprocal channel: the downlink uses the same gain (TDD). */
  gain: Float64Array;
  /** Data samples this round per client, D_n^r. */
  samples: Float64Array;
  /** Budget consumed before this round, per client (energy) and overall (time); for the
   * agents' fingerprint state (section V-A) and the budget constraints (19b-c). */
  usedTimeS: number;
  usedEnergyJ: Float64Array;
  /** Clients per server and per channel in the previous round (the fingerprint). */
  prevServerLoad: Float64Array;
  prevChannelLoad: Float64Array;
}

/** (server, channel) per client; −1 for unassigned (only inside schedulers, never returned). */
export interface Assignment {
  server: Int32Array;
  channel: Int32Array;
}

export const dbmToW = (dbm: number) => 10 ** ((dbm - 30) / 10);

export function pathLossDb(p: TwinParams, d: number): number {
  return p.pathLossA + p.pathLossB * Math.log10(Math.max(d, p.minDistanceM));
}

export function serverPositions(p: TwinParams): Float64Array {
  const pos = new Float64Array(2 * p.servers);
  const a = p.areaM;
  if (p.servers === 4) pos.set([0, 0, a, 0, a, a, 0, a]);
  else {
    // evenly along the perimeter, starting at a corner
    for (let m = 0; m < p.servers; m++) {
      const s = ((4 * a) / p.servers) * m;
      const side = Math.floor(s / a);
      const t = s - side * a;
      const [x, y] = side === 0 ? [t, 0] : side === 1 ? [a, t] : side === 2 ? [a - t, a] : [0, a - t];
      pos[2 * m] = x;
      pos[2 * m + 1] = y;
    }
  }
  return pos;
}

/** Gains for given positions: path loss times Exp(1) Rayleigh power fading per (n, m, k). */
export function drawGains(p: TwinParams, clientPos: Float64Array, serverPos: Float64Array, rng: Rng): Float64Array {
  const { clients: N, servers: M, channels: K } = p;
  const gain = new Float64Array(N * M * K);
  for (let n = 0; n < N; n++) {
    for (let m = 0; m < M; m++) {
      const d = Math.hypot(clientPos[2 * n] - serverPos[2 * m], clientPos[2 * n + 1] - serverPos[2 * m + 1]);
      const pl = 10 ** (-pathLossDb(p, d) / 10);
      for (let k = 0; k < K; k++) gain[(n * M + m) * K + k] = pl * -Math.log(1 - rng.float());
    }
  }
  return gain;
}

export interface MobilityOptions {
  /** Redraw every position each round (the paper's quasi-static, independent rounds), or walk. */
  kind: 'iid' | 'walk';
  /** Random-walk speed, metres per round (kind 'walk'). */
  stepM: number;
}

export const defaultMobility: MobilityOptions = { kind: 'iid', stepM: 30 };

/**
 * The twin over rounds: each `next()` is a new round with new fading and (iid) new positions or
 * (walk) positions moved by a bounded random step. `record()` carries the budgets and the
 * previous round's loads into the next state.
 */
export class Twin {
  readonly params: TwinParams;
  readonly serverPos: Float64Array;
  private readonly rng: Rng;
  private readonly mobility: MobilityOptions;
  private clientPos: Float64Array;
  private usedTimeS = 0;
  private readonly usedEnergyJ: Float64Array;
  private prevServerLoad: Float64Array;
  private prevChannelLoad: Float64Array;

  constructor(params: TwinParams, seed: number, mobility: MobilityOptions = defaultMobility) {
    this.params = params;
    this.rng = new Rng(seed);
    this.mobility = mobility;
    this.serverPos = serverPositions(params);
    this.clientPos = new Float64Array(2 * params.clients);
    this.placeAll();
    this.usedEnergyJ = new Float64Array(params.clients);
    this.prevServerLoad = new Float64Array(params.servers);
    this.prevChannelLoad = new Float64Array(params.channels);
  }

  private placeAll(): void {
    for (let i = 0; i < this.clientPos.length; i++) this.clientPos[i] = this.rng.float() * this.params.areaM;
  }

  next(): TwinState {
    const p = this.params;
    if (this.mobility.kind === 'iid') this.placeAll();
    else {
      for (let i = 0; i < this.clientPos.length; i++) {
        const v = this.clientPos[i] + (2 * this.rng.float() - 1) * this.mobility.stepM;
        // reflect at the square's edges
        this.clientPos[i] = Math.min(p.areaM, Math.abs(v > p.areaM ? 2 * p.areaM - v : v));
      }
    }
    return {
      params: p,
      clientPos: Float64Array.from(this.clientPos),
      serverPos: this.serverPos,
      gain: drawGains(p, this.clientPos, this.serverPos, this.rng),
      samples: new Float64Array(p.clients).fill(p.samplesPerRound),
      usedTimeS: this.usedTimeS,
      usedEnergyJ: Float64Array.from(this.usedEnergyJ),
      prevServerLoad: Float64Array.from(this.prevServerLoad),
      prevChannelLoad: Float64Array.from(this.prevChannelLoad),
    };
  }

  /** Account a round's outcome (budgets, loads) for the next state. */
  record(a: Assignment, cost: RoundCost): void {
    this.usedTimeS += cost.timeS;
    for (let n = 0; n < this.params.clients; n++) this.usedEnergyJ[n] += cost.clientEnergyJ[n];
    this.prevServerLoad = new Float64Array(this.params.servers);
    this.prevChannelLoad = new Float64Array(this.params.channels);
    for (let n = 0; n < this.params.clients; n++) {
      this.prevServerLoad[a.server[n]]++;
      this.prevChannelLoad[a.channel[n]]++;
    }
  }
}

export interface RoundCost {
  /** Per client: uplink and downlink rates (bit/s), time (s) and energy (J) of the round. */
  rateUp: Float64Array;
  rateDown: Float64Array;
  clientTimeS: Float64Array;
  clientEnergyJ: Float64Array;
  /** T_r, eq. (17): the slowest client. */
  timeS: number;
  /** Σ_n E_{n,r}, eq. (18) summed. */
  energyJ: number;
  /** λ·T_r + μ·Σ_n E_{n,r}, the summand of eq. (19a). */
  cost: number;
  /** Budgets (19b-c) still hold after this round. */
  withinBudget: boolean;
}

/**
 * The cost of a round under an assignment, eqs. (5)-(18). Clients with server −1 are left out
 * (schedulers score partial assignments with it): they neither transmit nor load a server.
 */
export function roundCost(s: TwinState, a: Assignment): RoundCost {
  const p = s.params;
  const { clients: N, servers: M, channels: K } = p;
  const pn = dbmToW(p.clientPowerDbm);
  const pm = dbmToW(p.serverPowerDbm);
  const noise = dbmToW(p.noiseDbm);
  const g = s.gain;
  // samples per server: eq. (7) shares an edge GPU among its clients' samples
  const serverSamples = new Float64Array(M);
  for (let n = 0; n < N; n++) if (a.server[n] >= 0) serverSamples[a.server[n]] += s.samples[n];
  const rateUp = new Float64Array(N);
  const rateDown = new Float64Array(N);
  const clientTimeS = new Float64Array(N);
  const clientEnergyJ = new Float64Array(N);
  let timeS = 0;
  let energyJ = 0;
  let withinBudget = true;
  for (let n = 0; n < N; n++) {
    const m = a.server[n];
    const k = a.channel[n];
    if (m < 0) continue;
    let iUp = 0;
    let iDown = 0;
    for (let o = 0; o < N; o++) {
      if (o === n || a.server[o] < 0 || a.channel[o] !== k) continue;
      iUp += pn * g[(o * M + m) * K + k]; // eq. (10): co-channel clients heard at server m
      iDown += pm * g[(n * M + a.server[o]) * K + k]; // eq. (15): their servers heard at client n
    }
    rateUp[n] = p.bandwidthHz * Math.log2(1 + (pn * g[(n * M + m) * K + k]) / (noise + iUp)); // eq. (9)
    rateDown[n] = p.bandwidthHz * Math.log2(1 + (pm * g[(n * M + m) * K + k]) / (noise + iDown)); // eq. (14)
    const D = s.samples[n];
    const tLocal = (D * p.clientFlopsPerSample) / p.clientFlops; // eq. (5)
    const tEdge = (p.serverFlopsPerSample * serverSamples[m]) / p.serverFlops; // eq. (7)
    const tUp = (D * p.bitsUpPerSample) / rateUp[n]; // eq. (12)
    const tDown = (D * p.bitsDownPerSample) / rateDown[n]; // eq. (16)
    clientTimeS[n] = tLocal + tEdge + tUp + tDown;
    clientEnergyJ[n] = D * p.clientJPerSample + pn * tUp; // eqs. (6), (13), (18)
    timeS = Math.max(timeS, clientTimeS[n]); // eq. (17)
    energyJ += clientEnergyJ[n];
    if (s.usedEnergyJ[n] + clientEnergyJ[n] > p.energyBudgetJ) withinBudget = false;
  }
  if (s.usedTimeS + timeS > p.latencyBudgetS) withinBudget = false;
  return { rateUp, rateDown, clientTimeS, clientEnergyJ, timeS, energyJ, cost: p.lambda * timeS + p.mu * energyJ, withinBudget };
}

/** Checks (19d-g): every client has one (server, channel) pair, and no pair has two clients. */
export function checkOneToOne(p: TwinParams, a: Assignment): void {
  const used = new Set<number>();
  for (let n = 0; n < p.clients; n++) {
    const m = a.server[n];
    const k = a.channel[n];
    if (!(m >= 0 && m < p.servers && k >= 0 && k < p.channels)) throw new RangeError(`client ${n} has no valid (server, channel): (${m}, ${k})`);
    const pair = m * p.channels + k;
    if (used.has(pair)) throw new RangeError(`client ${n} shares (server ${m}, channel ${k}) with another client`);
    used.add(pair);
  }
}

export function emptyAssignment(n: number): Assignment {
  return { server: new Int32Array(n).fill(-1), channel: new Int32Array(n).fill(-1) };
}
