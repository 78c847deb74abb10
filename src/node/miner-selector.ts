/**
 * Which miner a client uploads to (and reads the chain from): the seam for association
 * policies (docs/architecture.md, "Where a new subsystem goes"). The client measures round-trip
 * times to its configured miners every `pingIntervalMs` (and marks a miner unreachable when a
 * request to it fails); the selector ranks them. The client tries the miners in that order,
 * moving on when one fails; an empty ranking means "no miner now" (the client buffers).
 */

/** A miner a client may upload to. */
export interface MinerContact {
  id: string;
  peerId: string;
}

/** A miner's announced load (the `load` chain request; src/net/messages.ts). */
export interface AnnouncedLoad {
  pendingUpdates: number;
  clients: number;
}

export interface MinerObservation {
  miner: MinerContact;
  /** The last measured round-trip time, ms; null if unreachable or not measured yet. */
  rttMs: number | null;
  /** Its last announced load; null or absent if not asked (see `wantsLoad`) or not answered. */
  load?: AnnouncedLoad | null;
}

export interface MinerSelector {
  readonly name: string;
  /** The miners to try, best first. Synchronous: a selector that needs asynchronous work
   * (an onnxruntime policy) does it in `refresh` and ranks from its result. */
  rank(observed: readonly MinerObservation[], ctx: { clientId: string; now: number }): MinerContact[];
  /** Ask the miners for their load at every measurement (one extra request per miner). */
  readonly wantsLoad?: boolean;
  /** Called after every measurement (round-trip times, loads) with the new observations. */
  refresh?(observed: readonly MinerObservation[], ctx: { clientId: string; now: number }): Promise<void>;
}

/** The paper's rule: the nearest reachable miner, by measured round-trip time (ties: config order). */
export const nearestByRtt: MinerSelector = {
  name: 'nearest-rtt',
  rank: (observed) =>
    observed
      .filter((o) => o.rttMs !== null)
      .sort((a, b) => a.rttMs! - b.rttMs!)
      .map((o) => o.miner),
};
