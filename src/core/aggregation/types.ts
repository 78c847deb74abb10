/**
 * The aggregator interface: BFL-MEC and every baseline implement it, so the node, the chain's
 * aggregation check and the experiments can swap them. Pure and deterministic: the same
 * input (in any order) gives the same bits.
 */
import type { AggregationEntry, RewardEntry } from '../types.ts';

export interface UpdateInput {
  clientId: string;
  digest: Uint8Array; // SHA-256 of the update payload (the canonical sort key)
  delta: Float32Array; // Δ = w_local − w_global
  sampleCount: number;
  /** τ: how many aggregations old the update's base model is (0 = built on the current model). */
  staleness: number;
}

/**
 * Read-only facts of the chain an aggregation rule may use, derived from the block's ancestry
 * only (so every miner derives the same): see docs/architecture.md, "Aggregation".
 */
export interface AggregationContext {
  /** The round this aggregation makes (1 = the first after the genesis model). */
  round: number;
  /** Hash of the parent of the block that carries this aggregation: a deterministic seed (e.g. for bucketing). */
  parentHash: Uint8Array;
  /** The last global update: the current global model minus the one before it; undefined in round 1. */
  previousGlobalUpdate?: Float32Array;
}

export interface AggregationInput {
  previous: Float32Array; // current global model
  updates: UpdateInput[];
  baseReward: bigint; // units shared by the high-contribution clients
  /** Given by the node for every on-chain aggregation; experiments and unit tests may leave it out. */
  context?: AggregationContext;
}

export interface AggregationResult {
  /** New global model, float32: previous + g, rounded once. */
  model: Float32Array;
  /** One per update, sorted by digest. */
  entries: AggregationEntry[];
  /** Per client, sorted by id, zero amounts left out. */
  rewards: RewardEntry[];
  /** What an experiment or an operator may want to see; not on chain. */
  diagnostics: {
    similarity?: number[]; // cos(Δ_i, ḡ), per entry
    clusterLabels?: number[]; // DBSCAN labels of the updates, per entry (-1 also for those too long); the mean's label last
    lengthRatio?: number[]; // |Δ_i| / median |Δ|, per entry
    eps?: number; // the DBSCAN radius used
    reasons?: string[]; // why each entry is low ('' for high)
    sharedReference?: string; // agreement scoring: why the shared reference was not used to exclude
    references?: string[]; // agreement scoring: what each entry was compared with ('history', 'momentum', 'consensus', 'no related peer', 'no peer')
    /** staleness damping (damping.ts): the factor σ the rule's step was multiplied by, when not 1 */
    stepScale?: number;
    note?: string;
  };
}

/**
 * State across aggregations (history-based defences) is passed in and returned, never kept
 * inside: a node can rebuild it from the chain and roll it back on a reorg. The node stores the
 * state after every aggregation block, keyed by the block's hash (chain/aggregator-states.ts),
 * in the canonical bytes of `encodeState`; it may run `aggregate` in a worker thread, so the
 * state must survive encodeState → decodeState unchanged. An aggregator without these two
 * methods is stateless: its state must be null (stateCodecOf in index.ts).
 */
export interface Aggregator<S = null> {
  readonly name: string;
  initialState(): S;
  aggregate(input: AggregationInput, state: S): { result: AggregationResult; state: S };
  /** Canonical bytes of a state (same state, same bytes, on every machine). */
  encodeState?(state: S): Uint8Array;
  decodeState?(bytes: Uint8Array): S;
}
