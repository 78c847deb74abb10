/**
 * What a node answers on GET /status: the contract between the node (which fills it), the API,
 * the testnet's progress display and the experiments. JSON-safe (bigints as decimal strings).
 */

import type { SealingStats } from '../net/sealed-updates.ts';

export interface MinerStatus {
  role: 'miner';
  id: string;
  peerId: string;
  height: number;
  tip: string; // hex
  work: string; // cumulative, decimal
  /** Aggregation rounds on the canonical chain, the genesis model excluded. */
  aggregations: number;
  /** Updates recorded since the last aggregation. */
  pending: number;
  /** Open connections. */
  peers: number;
  /** Member ids of the connected miners. */
  miners: string[];
  pool: { unrecorded: number; total: number };
  /** Accuracy of the newest global model on the miner's test set (null before the first evaluation). */
  lastAccuracy: number | null;
  /** Clients labelled low contribution by the newest aggregation. */
  flagged: string[];
  hashRate: number;
  /** Penalty points by member id (or PeerId for outsiders). */
  penalties: Record<string, number>;
  orphans: number;
  /** Updates sealed/opened and their CPU ms (null with sealing off). */
  sealing?: SealingStats | null;
  /** Split learning (learning.mode "split"): clients' batches trained on and body updates made. */
  split?: { batches: number; samples: number; pending: number; bodyUpdates: number; headShares: number; lastLoss: number | null };
}

export interface UploadInfo {
  miner: string;
  digest: string;
  samples: number;
  averaged: number;
}

export interface ClientStatus {
  role: 'client';
  id: string;
  peerId: string;
  round: number;
  anchor: string;
  modelHash: string;
  /** Accuracy of its global model on the client's held-out data. */
  lastAccuracy: number | null;
  trained: number;
  uploaded: number;
  buffered: number;
  lastUpload: UploadInfo | null;
  lastAveragedUpload: UploadInfo | null;
  /** Reward balance in units (decimal), null until first read. */
  balance: string | null;
  /** Round-trip time to each miner in ms, null if unreachable. */
  miners: Record<string, number | null>;
  nearest: string | null;
  freshSamples: number;
  /** The behaviour of the client's updates ('none' for honest training). */
  attack: string;
  /** Updates sealed and their CPU ms (null with sealing off). */
  sealing?: SealingStats | null;
  /** The learning mode: in "split" mode `uploaded` counts local rounds trained with a miner,
   * and `lastAccuracy` is the client's own head on the global body. */
  mode?: 'federated' | 'split';
  /** Split mode: this client's head sharing (eq. 4) and its differential-privacy account; null
   * for a client whose head stays private (nothing released). */
  headSharing?: HeadSharingStatus | null;
  /** With an association policy that weighs load (issue 17): the selector and the load each
   * miner last announced (null: not answered). */
  association?: { selector: string; loads: Record<string, { pendingUpdates: number; clients: number } | null> } | null;
}

/** A split-mode client's eq. (4) releases and their (ε, δ) (learn/privacy.ts, headShareAccount). */
export interface HeadSharingStatus {
  /** Shares every this many local rounds (learning.split.headSharing.every). */
  every: number;
  /** Head shares sent so far (kept across restarts): the Gaussian releases the account composes. */
  shares: number;
  /** C: the L2 clip of a shared head update. */
  clip: number;
  /** z: noise per coordinate N(0, (z·C)²). */
  noise: number;
  delta: number;
  /** ε at `delta` after `shares` releases (user level: the client's whole dataset); null when
   * unbounded (noise 0); 0 before the first share. */
  epsilon: number | null;
}

export type NodeStatus = MinerStatus | ClientStatus;
