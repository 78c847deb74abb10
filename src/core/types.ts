/**
 * Chain data types (docs/architecture.md, "The path of a block"). Blocks record who sent what, never raw updates: a record
 * holds the digest of an update; only an aggregation transaction carries model parameters,
 * the new global model.
 */

export type Role = 'miner' | 'client';

export interface BlockHeader {
  version: number; // u16
  height: number; // u32
  prevHash: Uint8Array; // 32
  merkleRoot: Uint8Array; // 32
  timestamp: number; // ms since epoch, u64
  difficulty: bigint; // u64, expected hashes per block: target = TARGET1 / difficulty
  minerId: string; // ≤ 24 bytes
  nonce: number; // u64 (safe integer)
}

/** Commits the genesis block to the network's parameters (members, thresholds, rewards). */
export interface GenesisTx {
  type: 'genesis';
  networkId: string;
  paramsDigest: Uint8Array; // 32
}

export interface CoinbaseTx {
  type: 'coinbase';
  height: number;
  minerId: string;
  amount: bigint; // reward units (see core/params.ts: UNITS_PER_TOKEN)
}

/** A client's signed update, by digest. The signature covers `encodeUpdateClaim`. */
export interface RecordTx {
  type: 'record';
  clientId: string;
  minerId: string; // the miner the client uploaded to (not signed by the client)
  updateDigest: Uint8Array; // SHA-256 of the update payload
  baseModelHash: Uint8Array; // the global model the update was trained from
  sampleCount: number; // u32
  createdAt: number; // ms, u64
  signature: Uint8Array;
}

export interface AggregationEntry {
  clientId: string;
  updateDigest: Uint8Array;
  high: boolean; // high-contribution cluster (DBSCAN cluster holding the provisional mean)
  weight: number; // f64 aggregation weight p_i (0 for discarded updates)
}

export interface RewardEntry {
  id: string;
  amount: bigint;
}

export interface AggregationTx {
  type: 'aggregation';
  round: number; // u32: 0 is the genesis model, then 1, 2, ...
  baseModelHash: Uint8Array; // previous global model
  modelHash: Uint8Array; // SHA-256 of `model`
  model: Uint8Array; // float32 little-endian parameters (payloadToDelta in core/update.ts)
  entries: AggregationEntry[]; // sorted by updateDigest
  rewards: RewardEntry[]; // sorted by id
  /** SHA-256 of the aggregator's canonical state after this aggregation (Aggregator.encodeState;
   * the empty string's hash for a stateless aggregator). Zero in the genesis block, whose state
   * is the aggregator's initial state. Lets a syncing miner fetch a state it cannot recompute
   * and check it against the chain (docs/decisions.md, "History validation"). */
  stateHash: Uint8Array;
}

export type Tx = GenesisTx | CoinbaseTx | RecordTx | AggregationTx;

export interface Block {
  header: BlockHeader;
  /** Miner's ML-DSA signature over (networkId, block hash), context `bfl/block/v1`. Not part of
   * the hash: it is made after the nonce is found. */
  signature: Uint8Array;
  txs: Tx[];
}

/** The (client, update) claim a client signs. Everything a miner needs to check admission. */
export interface UpdateClaim {
  networkId: string;
  clientId: string;
  baseModelHash: Uint8Array;
  updateDigest: Uint8Array;
  sampleCount: number;
  createdAt: number;
}
