/**
 * The association schedulers in the product (issue 17): a client's `MinerSelector` that lets a
 * scheduler of src/association (schedulers.ts, d3qn.ts) choose its miner.
 *
 * The daemon has no radio model and no coordinator: each client sees only its own measured
 * round-trip times and the load each miner announces (the `load` chain request: recent distinct
 * clients, pending updates). It approximates the joint one-to-one assignment on its own
 * (docs/decisions.md, "Association scheduler"): it builds a small twin in which it is client 0,
 * each miner stands at the distance its RTT stands for (the simulator's radio latency model,
 * inverted), and each miner's announced clients are already there, near their miner, on their
 * own channels; it runs the scheduler on that twin and takes its own (miner, channel)'s miner.
 * Every client doing the same with the same announcements is the decentralised version of the
 * sequential masked query the D3QN was trained with (each agent choosing with the others
 * placed). The other miners follow by RTT, as fallbacks when an upload fails.
 */
import { DEFAULT_POLICY, d3qnScheduler } from '../association/d3qn.ts';
import { type Scheduler, type SchedulerName, heuristicScheduler } from '../association/schedulers.ts';
import { type TwinParams, type TwinState, defaultTwinParams, pathLossDb } from '../association/twin.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import type { AnnouncedLoad, MinerSelector } from './miner-selector.ts';
import { nearestByRtt } from './miner-selector.ts';

export interface MeasuredTwinOptions {
  /**
   * Round trip at distance 0, and added per 100 m, ms: the simulator's radio (src/sim/network.ts,
   * 5 ms + 5 ms per 100 m one way), so that in the simulator an RTT gives back the true
   * distance; on a real network RTT is only a proxy for it.
   */
  rttBaseMs: number;
  rttMsPer100m: number;
  /** A miner's announced clients are assumed this far from it: a quarter of the twin's 600 m
   * square, the typical distance of a client to the nearest of its 4 corner miners. */
  servedDistanceM: number;
  /** Where an unreachable miner (no RTT) is put: far enough that no scheduler picks it. */
  unreachableDistanceM: number;
}

export const defaultMeasuredTwinOptions: MeasuredTwinOptions = { rttBaseMs: 10, rttMsPer100m: 10, servedDistanceM: 150, unreachableDistanceM: 100_000 };

/**
 * One client's view as a twin round: client 0 is this client, clients 1.. are the miners'
 * announced clients (`load[m].clients`, at most K − 1 per miner so that every miner keeps a
 * free pair), each on its own channel at its miner. Gains are mean path loss (the fading of a
 * link nobody measured is its mean, 1).
 */
export function measuredTwinState(rttMs: readonly (number | null)[], load: readonly (AnnouncedLoad | null | undefined)[], base: TwinParams = defaultTwinParams, o: MeasuredTwinOptions = defaultMeasuredTwinOptions): TwinState {
  const M = rttMs.length;
  const K = base.channels;
  const served = Array.from({ length: M }, (_, m) => Math.min(load[m]?.clients ?? 0, K - 1));
  const N = 1 + served.reduce((a, b) => a + b, 0);
  const p: TwinParams = { ...base, clients: N, servers: M };
  const serverPos = new Float64Array(2 * M);
  for (let m = 0; m < M; m++) {
    const rtt = rttMs[m];
    const d = rtt === null ? o.unreachableDistanceM : Math.max(p.minDistanceM, ((rtt - o.rttBaseMs) / o.rttMsPer100m) * 100);
    // miners spread around the client; only their distances are measured
    const th = (2 * Math.PI * m) / M;
    serverPos[2 * m] = d * Math.cos(th);
    serverPos[2 * m + 1] = d * Math.sin(th);
  }
  const clientPos = new Float64Array(2 * N);
  const home = new Int32Array(N).fill(-1);
  const channelOf = new Int32Array(N).fill(-1);
  const prevServerLoad = new Float64Array(M);
  const prevChannelLoad = new Float64Array(K);
  let n = 1;
  for (let m = 0; m < M; m++) {
    for (let j = 0; j < served[m]; j++, n++) {
      // beyond their miner, seen from this client, within ±60°: nearer their own miner than
      // any other, so that a scheduler leaves them where they are
      const phi = (2 * Math.PI * m) / M + (served[m] > 1 ? (j / (served[m] - 1) - 0.5) * ((2 * Math.PI) / 3) : 0);
      clientPos[2 * n] = serverPos[2 * m] + o.servedDistanceM * Math.cos(phi);
      clientPos[2 * n + 1] = serverPos[2 * m + 1] + o.servedDistanceM * Math.sin(phi);
      home[n] = m;
      channelOf[n] = j;
      prevServerLoad[m]++;
      prevChannelLoad[j]++;
    }
  }
  const gain = new Float64Array(N * M * K);
  for (let c = 0; c < N; c++) {
    for (let m = 0; m < M; m++) {
      // an announced client reaches only its own miner: the schedulers assign every client
      // afresh, and must not move the others' clients (they will not move) to make room
      const d = c > 0 && m !== home[c] ? o.unreachableDistanceM : Math.hypot(clientPos[2 * c] - serverPos[2 * m], clientPos[2 * c + 1] - serverPos[2 * m + 1]);
      const g = 10 ** (-pathLossDb(p, d) / 10);
      gain.fill(g, (c * M + m) * K, (c * M + m + 1) * K);
    }
  }
  return { params: p, clientPos, serverPos, gain, samples: new Float64Array(N).fill(p.samplesPerRound), usedTimeS: 0, usedEnergyJ: new Float64Array(N), prevServerLoad, prevChannelLoad };
}

export interface AssociationSelectorOptions {
  policy: SchedulerName;
  /** D3QN policy stem (<stem>.onnx, <stem>.json); default the committed one. */
  policyFile?: string;
  /** The miners the client may use (the D3QN policy is tied to their number). */
  miners: number;
  /** Seed of the random channel of 'nearest' and of swap's start. */
  seed?: number;
  twin?: TwinParams;
  measured?: MeasuredTwinOptions;
}

export interface AssociationSelector extends MinerSelector {
  /** The scheduler's choice at the last refresh (null before the first, or if none reachable). */
  readonly chosen: string | null;
  close(): Promise<void>;
}

/**
 * The daemon's selector for `association.policy`. 'nearest' is the BFL-MEC paper's rule as
 * before (lowest RTT; the twin's nearest miner is the lowest RTT by construction, and a channel
 * means nothing without a radio). The others ask for the miners' loads and run the scheduler
 * on the measured twin at every measurement.
 */
export async function associationSelector(o: AssociationSelectorOptions): Promise<AssociationSelector> {
  const base = { ...(o.twin ?? defaultTwinParams), servers: o.miners };
  if (o.policy === 'nearest') return { ...nearestByRtt, chosen: null, close: async () => {} };
  const scheduler: Scheduler = o.policy === 'd3qn' ? await d3qnScheduler(o.policyFile ?? DEFAULT_POLICY) : heuristicScheduler(o.policy, o.seed ?? 1);
  try {
    // a policy for other miners or channels fails now, with the fix, not at the first upload
    await scheduler.assign(measuredTwinState(Array.from({ length: o.miners }, () => 20), [], base, o.measured));
  } catch (e) {
    await scheduler.close?.();
    if (e instanceof BflError) throw new BflError(e.code, `association.policy "${o.policy}": ${e.message}`);
    throw e;
  }
  let chosen: string | null = null;
  let lastPick: string | null = null;
  return {
    name: `association-${o.policy}`,
    wantsLoad: true,
    get chosen() {
      return chosen;
    },
    async refresh(observed) {
      // no stale choice if this one fails: the client then ranks by RTT
      chosen = null;
      if (!observed.some((x) => x.rttMs !== null)) return;
      // our own recent uploads are in our current miner's announced count: leave ourselves out
      const load = observed.map((x) => (x.load && x.miner.id === lastPick ? { ...x.load, clients: Math.max(0, x.load.clients - 1) } : x.load));
      const s = measuredTwinState(observed.map((x) => x.rttMs), load, base, o.measured);
      const a = await scheduler.assign(s);
      chosen = observed[a.server[0]].miner.id;
      lastPick = chosen;
    },
    rank(observed, ctx) {
      const byRtt = nearestByRtt.rank(observed, ctx);
      const first = byRtt.find((m) => m.id === chosen);
      return first ? [first, ...byRtt.filter((m) => m !== first)] : byRtt;
    },
    close: async () => {
      await scheduler.close?.();
    },
  };
}
