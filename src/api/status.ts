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
  split?: SplitMinerStatus;
}

/** A split miner's work since it started (in memory: a restart starts every count at 0). */
export interface SplitMinerStatus {
  /** Clients' batches trained on and answered with cut-layer gradients. */
  batches: number;
  /** Batches refused: a failed check, an exhausted request budget, a sealed one that did not open. */
  refused: number;
  /** Samples of the batches trained on. */
  samples: number;
  /** Samples trained since the newest global model (what the next body update will carry). */
  pending: number;
  /** Samples trained since the last body update: one is made when this reaches `samplesPerUpdate`. */
  sinceUpdate: number;
  /** learning.split.samplesPerUpdate. */
  samplesPerUpdate: number;
  /** Body updates signed and taken into this miner's own update pool (to be recorded on chain). */
  bodyUpdates: number;
  /** Body updates its own intake refused (a rate limit, a base model no longer on chain). */
  bodyUpdatesRefused: number;
  /** Head shares accepted (eq. 4). */
  headShares: number;
  headSharesRefused: number;
  /** The loss of the last batch trained on (null before the first). */
  lastLoss: number | null;
  /** Clients with a batch trained on within the last `clientWindowMs`, sorted. */
  clients: string[];
  clientWindowMs: number;
  /** The newest refusal or failure (null if none since the start). */
  lastError: SplitError | null;
}

/** A split-learning refusal or failure, as an operator reads it. */
export interface SplitError {
  /** What failed: a client's batch or head share, this miner's body update, or a client's round. */
  what: 'batch' | 'head share' | 'body update' | 'round';
  /** The ErrorCode (or the error's name for an unexpected one). */
  code: string;
  /** One line, at most 200 characters. */
  message: string;
  /** The other end: the sending member (miner side; its PeerId if refused before its request was admitted) or the
   * miner (client side); null if unknown or none (a body update). */
  peer: string | null;
  /** When, ms since the epoch (the node's clock). */
  at: number;
}

/** A split-mode client's rounds with its miners (in memory since the client started). */
export interface SplitClientStatus {
  /** Local split rounds completed (E epochs of batches answered by a miner). */
  rounds: number;
  /** Rounds that ended on a failed batch (the next round tries the next reachable miner). */
  failed: number;
  /** The miner of the last completed round (null before the first). */
  miner: string | null;
  /** Mean batch loss of the last completed round's last epoch, as the miner computed it. */
  lastLoss: number | null;
  /** When the last round completed, ms since the epoch. */
  lastRoundAt: number | null;
  /** The newest failed round or refused head share (null if none since the start). */
  lastError: SplitError | null;
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
   * and `lastAccuracy` is the client's own head on the global body, as evaluated when its latest
   * round ended (before its first: the model it holds). */
  mode?: 'federated' | 'split';
  /** Split mode: this client's head sharing (eq. 4) and its differential-privacy account; null
   * for a client whose head stays private (nothing released). */
  headSharing?: HeadSharingStatus | null;
  /** Split mode: its rounds with the miners, the last round's loss, its last error. */
  split?: SplitClientStatus;
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
