/**
 * Joint client association and channel assignment (problem (19) of the DT paper): every
 * scheduler maps a round of the twin to one (server, channel) per client, one-to-one on the
 * pairs (19d-g). The heuristics are the paper's baselines (section VI-A): nearest server with a
 * random free channel (the BFL-MEC paper's "nearest edge node"), greedy search [37], subproblem
 * decomposition [38] and swap matching [36]. The learned D3QN scheduler is in d3qn.ts.
 */
import { Rng } from '../core/random.ts';
import { type Assignment, type TwinState, emptyAssignment, roundCost } from './twin.ts';

export interface Scheduler {
  readonly name: string;
  assign(s: TwinState): Assignment | Promise<Assignment>;
  close?(): Promise<void>;
}

export const SCHEDULERS = ['nearest', 'greedy', 'decomposition', 'swap', 'd3qn'] as const;
export type SchedulerName = (typeof SCHEDULERS)[number];

const dist = (s: TwinState, n: number, m: number) => Math.hypot(s.clientPos[2 * n] - s.serverPos[2 * m], s.clientPos[2 * n + 1] - s.serverPos[2 * m + 1]);

/** Nearest server; a free channel there drawn at random (the next nearest server if all are taken). */
export function nearestScheduler(seed: number): Scheduler {
  const rng = new Rng(seed);
  return {
    name: 'nearest',
    assign(s) {
      const { clients: N, servers: M, channels: K } = s.params;
      const a = emptyAssignment(N);
      const taken = new Uint8Array(M * K);
      for (let n = 0; n < N; n++) {
        const order = Array.from({ length: M }, (_, m) => m).sort((x, y) => dist(s, n, x) - dist(s, n, y));
        for (const m of order) {
          const free = [];
          for (let k = 0; k < K; k++) if (!taken[m * K + k]) free.push(k);
          if (free.length === 0) continue;
          const k = free[rng.int(free.length)];
          a.server[n] = m;
          a.channel[n] = k;
          taken[m * K + k] = 1;
          break;
        }
      }
      return a;
    },
  };
}

/**
 * Greedy search [37]: start empty; each step adds the (client, free pair) whose addition raises
 * the cost of the partial assignment least, until every client has a pair.
 */
export function greedyScheduler(): Scheduler {
  return {
    name: 'greedy',
    assign(s) {
      const { clients: N, servers: M, channels: K } = s.params;
      const a = emptyAssignment(N);
      const taken = new Uint8Array(M * K);
      for (let step = 0; step < N; step++) {
        let best = Infinity;
        let bn = -1;
        let bp = -1;
        for (let n = 0; n < N; n++) {
          if (a.server[n] >= 0) continue;
          for (let pair = 0; pair < M * K; pair++) {
            if (taken[pair]) continue;
            a.server[n] = Math.floor(pair / K);
            a.channel[n] = pair % K;
            const c = roundCost(s, a).cost;
            if (c < best) [best, bn, bp] = [c, n, pair];
          }
          a.server[n] = -1;
          a.channel[n] = -1;
        }
        a.server[bn] = Math.floor(bp / K);
        a.channel[bn] = bp % K;
        taken[bp] = 1;
      }
      return a;
    },
  };
}

/** Interference-free uplink + downlink time of client n at server m, averaged over channels. */
function soloCommTime(s: TwinState, n: number, m: number): number {
  const p = s.params;
  const { servers: M, channels: K } = p;
  const noise = 10 ** ((p.noiseDbm - 30) / 10);
  const pn = 10 ** ((p.clientPowerDbm - 30) / 10);
  const pm = 10 ** ((p.serverPowerDbm - 30) / 10);
  let g = 0;
  for (let k = 0; k < K; k++) g += s.gain[(n * M + m) * K + k] / K;
  const up = p.bandwidthHz * Math.log2(1 + (pn * g) / noise);
  const down = p.bandwidthHz * Math.log2(1 + (pm * g) / noise);
  return s.samples[n] * (p.bitsUpPerSample / up + p.bitsDownPerSample / down);
}

/**
 * Subproblem decomposition [38]: association first, channels second. (1) Clients, hardest
 * first (longest best-case time), each take the server minimising their estimated time, the
 * interference-free communication time at mean gain plus the edge compute time with the
 * server's load so far (eq. (7)); a server takes at most K clients. (2) With the association
 * fixed, channels are assigned greedily: each step adds the (client, free channel at its
 * server) that raises the cost least.
 */
export function decompositionScheduler(): Scheduler {
  return {
    name: 'decomposition',
    assign(s) {
      const p = s.params;
      const { clients: N, servers: M, channels: K } = p;
      const comm = Array.from({ length: N }, (_, n) => Array.from({ length: M }, (_, m) => soloCommTime(s, n, m)));
      const order = Array.from({ length: N }, (_, n) => n).sort((x, y) => Math.min(...comm[y]) - Math.min(...comm[x]));
      const samples = new Float64Array(M);
      const count = new Int32Array(M);
      const server = new Int32Array(N);
      for (const n of order) {
        let best = Infinity;
        let bm = -1;
        for (let m = 0; m < M; m++) {
          if (count[m] >= K) continue;
          const t = comm[n][m] + (p.serverFlopsPerSample * (samples[m] + s.samples[n])) / p.serverFlops;
          if (t < best) [best, bm] = [t, m];
        }
        server[n] = bm;
        samples[bm] += s.samples[n];
        count[bm]++;
      }
      const a = emptyAssignment(N);
      const taken = new Uint8Array(M * K);
      for (let step = 0; step < N; step++) {
        let best = Infinity;
        let bn = -1;
        let bk = -1;
        for (let n = 0; n < N; n++) {
          if (a.server[n] >= 0) continue;
          a.server[n] = server[n];
          for (let k = 0; k < K; k++) {
            if (taken[server[n] * K + k]) continue;
            a.channel[n] = k;
            const c = roundCost(s, a).cost;
            if (c < best) [best, bn, bk] = [c, n, k];
          }
          a.server[n] = -1;
          a.channel[n] = -1;
        }
        a.server[bn] = server[bn];
        a.channel[bn] = bk;
        taken[server[bn] * K + bk] = 1;
      }
      return a;
    },
  };
}

export interface SwapOptions {
  /** Bound on full passes over (client, pair); a pass without an improving swap ends earlier. */
  maxPasses: number;
}

/** 100 passes: at N = 16 the matching is stable after well under 20 (measured), the bound only
 * guards against cycling on ties. */
export const defaultSwapOptions: SwapOptions = { maxPasses: 100 };

/**
 * Swap matching [36]: from the nearest-server matching, each client in turn tries every other
 * (server, channel) pair: a free one it moves to, an occupied one it swaps with the client
 * there. A move or swap is made when it lowers the round's cost (the approval of the clients
 * involved, with the system cost as every client's utility: congestion makes utilities
 * interdependent, so a swap is judged by the whole matching). Ends at a two-sided exchange-
 * stable matching: no move or swap lowers the cost.
 */
export function swapScheduler(seed: number, opts: SwapOptions = defaultSwapOptions): Scheduler {
  const init = nearestScheduler(seed);
  return {
    name: 'swap',
    assign(s) {
      const { clients: N, servers: M, channels: K } = s.params;
      const a = init.assign(s) as Assignment;
      const holder = new Int32Array(M * K).fill(-1);
      for (let n = 0; n < N; n++) holder[a.server[n] * K + a.channel[n]] = n;
      let cost = roundCost(s, a).cost;
      for (let pass = 0; pass < opts.maxPasses; pass++) {
        let improved = false;
        for (let n = 0; n < N; n++) {
          for (let pair = 0; pair < M * K; pair++) {
            const mine = a.server[n] * K + a.channel[n];
            if (pair === mine) continue;
            const o = holder[pair];
            const set = (c: number, q: number) => {
              a.server[c] = Math.floor(q / K);
              a.channel[c] = q % K;
            };
            set(n, pair);
            if (o >= 0) set(o, mine);
            const c = roundCost(s, a).cost;
            if (c < cost * (1 - 1e-12)) {
              cost = c;
              holder[pair] = n;
              holder[mine] = o;
              improved = true;
            } else {
              set(n, mine);
              if (o >= 0) set(o, pair);
            }
          }
        }
        if (!improved) break;
      }
      return a;
    },
  };
}

export function heuristicScheduler(name: Exclude<SchedulerName, 'd3qn'>, seed: number): Scheduler {
  switch (name) {
    case 'nearest':
      return nearestScheduler(seed);
    case 'greedy':
      return greedyScheduler();
    case 'decomposition':
      return decompositionScheduler();
    case 'swap':
      return swapScheduler(seed);
  }
}
