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

export interface MinerObservation {
  miner: MinerContact;
  /** The last measured round-trip time, ms; null if unreachable or not measured yet. */
  rttMs: number | null;
}

export interface MinerSelector {
  readonly name: string;
  /** The miners to try, best first. */
  rank(observed: readonly MinerObservation[], ctx: { clientId: string; now: number }): MinerContact[];
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
