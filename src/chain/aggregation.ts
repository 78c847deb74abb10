/**
 * Aggregation as a part of the chain (docs/architecture.md, "Aggregation"): the aggregation a
 * block must carry, computed from the raw updates, by a miner building its block and by every
 * miner checking a received one (the store's AggregationCheck). Same code, same bits: a block
 * whose transaction differs in any byte is BAD_AGGREGATION.
 *
 * - The computation runs on an AggregationEngine (a worker thread in the daemon).
 * - The result a miner computed for its own block is kept (keyed by its inputs: the parent block
 *   and the records) and reused when that block is validated: no second computation.
 * - The aggregator's state lives beside the chain, per aggregation block (the store writes it in
 *   the block's batch): state(B) = aggregate(state(anchor of B's parent), …) for an aggregation
 *   block B, and the state of its anchor for any other block. Keyed by block hash, so a reorg
 *   just reads the new tip's ancestry; a missing state is rebuilt from the blocks.
 */
import { equalBytes, toHex } from '../core/bytes.ts';
import { aggregationTxOf } from '../core/chain.ts';
import { encodeTx } from '../core/encoding.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import { sha256 } from '../core/hash.ts';
import type { AggregationTx, Block } from '../core/types.ts';
import { payloadToDelta } from '../core/update.ts';
import { type ChainState, type PendingRecord, pendingOf, sortedPending } from '../core/validation.ts';
import type { AggregationEngine, AggregationJob } from './aggregation-engine.ts';
import { Bounded } from '../util/bounded.ts';

/** Raw updates by (client, digest): the pool, else fetched from the other miners. */
export interface UpdateSource {
  get(clientId: string, digest: Uint8Array): Promise<{ payload: Uint8Array; sampleCount: number; baseModelHash: Uint8Array } | undefined>;
}

/**
 * Aggregator states from the other miners (a miner that synced a chain whose oldest raw
 * updates are pruned everywhere: issue 13, item 2). The answer is checked here against the
 * aggregation's `stateHash`, which the chain's work vouches for.
 */
export interface StateSource {
  get(blockHash: Uint8Array, stateHash: Uint8Array): Promise<Uint8Array | undefined>;
}

/** What the aggregation reads from the chain store (and the one thing it writes: rebuilt states). */
export interface AggregationChain {
  readonly genesisHash: Uint8Array;
  readonly params: { baseReward: bigint };
  getBlock(hash: Uint8Array): Promise<Block | undefined>;
  getState(hash: Uint8Array): Promise<ChainState | undefined>;
  blocksWithModel(modelHash: Uint8Array): Promise<Uint8Array[]>;
  aggregatorState(blockHash: Uint8Array): Promise<Uint8Array | undefined>;
  putAggregatorState(blockHash: Uint8Array, state: Uint8Array): Promise<void>;
}

/** The store's side of the check: the same as core's AggregationCheck, with the chain to read. */
export interface ChainAggregationCheck {
  verify(tx: AggregationTx, input: { parent: ChainState; records: PendingRecord[] }, chain: AggregationChain): Promise<Uint8Array | void>;
}

export interface ChainAggregationOptions {
  engine: AggregationEngine;
  updates: UpdateSource;
  /** Where a state that is neither stored nor recomputable comes from (the other miners). */
  states?: StateSource;
  /** Own results kept for validation (a miner mines one block at a time; a few cover retries). */
  keepResults?: number;
}

interface Computed {
  tx: AggregationTx;
  txBytes: Uint8Array;
  state: Uint8Array;
}

/** Global models whose round is remembered: far more than the staleness an update may have. */
export const ROUNDS_CACHED = 1024;

// the recorded claims are inputs too: two blocks on one parent may record other claims for one payload
const inputKey = (parent: ChainState, records: PendingRecord[]) =>
  `${toHex(parent.hash)}/${records.map((r) => `${r.clientId}:${toHex(r.updateDigest)}:${r.baseModelHash ? toHex(r.baseModelHash) : ''}:${r.sampleCount ?? ''}`).join(',')}`;

export class ChainAggregation implements ChainAggregationCheck {
  private readonly engine: AggregationEngine;
  private readonly source: UpdateSource;
  private readonly states?: StateSource;
  private readonly keep: number;
  /** Rounds of the global models staleness was asked about: the newest few are asked again and
   * again; bounded, as one entry per aggregation ever would grow with the chain. */
  private readonly rounds = new Bounded<number>(ROUNDS_CACHED);
  private readonly results = new Map<string, Computed>();
  /** Aggregations computed (not served from kept results): for tests and metrics. */
  computed = 0;

  constructor(o: ChainAggregationOptions) {
    this.engine = o.engine;
    this.source = o.updates;
    this.states = o.states;
    this.keep = o.keepResults ?? 4;
  }

  /** The round of the aggregation that produced `modelHash` (for staleness). */
  private async roundOf(chain: AggregationChain, modelHash: Uint8Array): Promise<number> {
    const key = toHex(modelHash);
    const cached = this.rounds.get(key);
    if (cached !== undefined) return cached;
    for (const h of await chain.blocksWithModel(modelHash)) {
      const block = await chain.getBlock(h);
      const agg = block && aggregationTxOf(block);
      if (agg) {
        this.rounds.set(key, agg.round);
        return agg.round;
      }
    }
    throw new BflError(ErrorCode.UNKNOWN_BASE_MODEL, `no aggregation produced model ${key}`);
  }

  private async anchorTx(chain: AggregationChain, anchor: Uint8Array): Promise<AggregationTx> {
    const block = await chain.getBlock(anchor);
    const tx = block && aggregationTxOf(block);
    if (!tx) throw new BflError(ErrorCode.STORE_CORRUPT, `anchor ${toHex(anchor)} has no aggregation`);
    return tx;
  }

  /** The aggregator's state after the aggregation of `anchor` (an aggregation block), rebuilt if missing. */
  async stateAt(chain: AggregationChain, anchor: Uint8Array): Promise<Uint8Array> {
    if (this.engine.stateless) return new Uint8Array(0);
    const stored = await chain.aggregatorState(anchor);
    if (stored) return stored;
    if (equalBytes(anchor, chain.genesisHash)) return this.engine.initialState();
    const block = (await chain.getBlock(anchor))!;
    const tx = aggregationTxOf(block)!;
    // Not stored: an aggregation accepted on work (its updates were pruned everywhere), a store
    // from before states were kept, or one written without the check. First the other miners'
    // copy, which must hash to the block's stateHash (one request, and the only way for an
    // aggregation accepted on work); else recompute the anchor's aggregation from its parent,
    // which recurses to the nearest stored state and needs the raw updates (UNAVAILABLE once
    // they are pruned everywhere).
    const fetched = await this.states?.get(anchor, tx.stateHash).catch(() => undefined);
    if (fetched && equalBytes(sha256(fetched), tx.stateHash)) {
      await chain.putAggregatorState(anchor, fetched);
      return fetched;
    }
    const parent = await chain.getState(block.header.prevHash);
    if (!parent) throw new BflError(ErrorCode.STORE_CORRUPT, `no state for the parent of ${toHex(anchor)}`);
    // the updates it aggregated: the parent's pending records and the block's own, as recorded
    const records = sortedPending([...parent.pending, ...block.txs.flatMap((t) => (t.type === 'record' ? [pendingOf(t)] : []))]);
    const c = await this.run(chain, parent, records);
    if (!equalBytes(c.txBytes, encodeTx(tx))) throw new BflError(ErrorCode.STORE_CORRUPT, `the stored aggregation of ${toHex(anchor)} does not recompute`);
    await chain.putAggregatorState(anchor, c.state);
    return c.state;
  }

  /** The global update that made the anchor's model: the anchor model minus the one before it. */
  private async previousGlobalUpdate(chain: AggregationChain, anchorTx: AggregationTx, anchor: Uint8Array): Promise<Float32Array | undefined> {
    if (equalBytes(anchor, chain.genesisHash)) return undefined;
    const anchorState = await chain.getState(anchor);
    const before = anchorState && (await chain.getState(anchorState.parentHash));
    if (!before) throw new BflError(ErrorCode.STORE_CORRUPT, `no state before anchor ${toHex(anchor)}`);
    const prev = await this.anchorTx(chain, before.anchor);
    const a = payloadToDelta(anchorTx.model);
    const b = payloadToDelta(prev.model);
    const d = new Float32Array(a.length);
    for (let k = 0; k < d.length; k++) d[k] = a[k] - b[k];
    return d;
  }

  /** Pending records of a chain state stored before the claims were kept name none: the record
   * transactions since the anchor give them (one walk back over those blocks, only for such states). */
  private async withClaims(chain: AggregationChain, parent: ChainState, records: PendingRecord[]): Promise<PendingRecord[]> {
    const claimed = (r: PendingRecord) => r.baseModelHash !== undefined && r.sampleCount !== undefined;
    if (records.every(claimed)) return records;
    const recorded = new Map<string, PendingRecord>();
    for (let h = parent.hash; !equalBytes(h, parent.anchor); ) {
      const block = await chain.getBlock(h);
      if (!block) break;
      for (const t of block.txs) if (t.type === 'record') recorded.set(`${t.clientId}/${toHex(t.updateDigest)}`, pendingOf(t));
      h = block.header.prevHash;
    }
    return records.map((r) => (claimed(r) ? r : (recorded.get(`${r.clientId}/${toHex(r.updateDigest)}`) ?? r)));
  }

  private async run(chain: AggregationChain, parent: ChainState, given: PendingRecord[]): Promise<Computed> {
    const records = await this.withClaims(chain, parent, given);
    const key = inputKey(parent, records);
    const kept = this.results.get(key);
    if (kept) return kept;
    const prevTx = await this.anchorTx(chain, parent.anchor);
    const updates: AggregationJob['updates'] = [];
    for (const r of records) {
      const u = await this.source.get(r.clientId, r.updateDigest);
      if (!u) throw new BflError(ErrorCode.UNAVAILABLE, `update ${r.clientId}:${toHex(r.updateDigest)} is not available to aggregate`, { action: 'IGNORE' });
      if (u.payload.length !== prevTx.model.length) throw new BflError(ErrorCode.BAD_AGGREGATION, `update ${toHex(r.updateDigest)} has ${u.payload.length / 4} parameters, the model ${prevTx.model.length / 4}`);
      // the recorded claim's base and count (PendingRecord), not the pool's: every miner the same
      const base = r.baseModelHash ?? u.baseModelHash;
      updates.push({ clientId: r.clientId, digest: r.updateDigest, payload: u.payload, sampleCount: r.sampleCount ?? u.sampleCount, staleness: Math.max(0, parent.rounds - 1 - (await this.roundOf(chain, base))) });
    }
    const job: AggregationJob = {
      previous: prevTx.model,
      updates,
      baseReward: chain.params.baseReward,
      state: await this.stateAt(chain, parent.anchor),
      context: { round: parent.rounds, parentHash: parent.hash, previousGlobalUpdate: await this.previousGlobalUpdate(chain, prevTx, parent.anchor) },
    };
    const out = await this.engine.aggregate(job);
    this.computed++;
    const model = new Uint8Array(out.model.buffer, out.model.byteOffset, out.model.byteLength);
    const tx: AggregationTx = { type: 'aggregation', round: parent.rounds, baseModelHash: parent.modelHash, modelHash: sha256(model), model, entries: out.entries, rewards: out.rewards, stateHash: sha256(out.state) };
    const c = { tx, txBytes: encodeTx(tx), state: out.state };
    this.results.set(key, c);
    while (this.results.size > this.keep) this.results.delete(this.results.keys().next().value!);
    return c;
  }

  /** The aggregation a block on `parent` with these pending records (sorted) must carry. */
  async compute(chain: AggregationChain, parent: ChainState, records: PendingRecord[]): Promise<AggregationTx> {
    return (await this.run(chain, parent, records)).tx;
  }

  async verify(tx: AggregationTx, input: { parent: ChainState; records: PendingRecord[] }, chain: AggregationChain): Promise<Uint8Array | void> {
    const mine = await this.run(chain, input.parent, input.records);
    if (equalBytes(mine.txBytes, encodeTx(tx))) return this.engine.stateless ? undefined : mine.state;
    const what = !equalBytes(mine.tx.modelHash, tx.modelHash)
      ? 'global model'
      : JSON.stringify(mine.tx.entries.map((e) => [e.high, e.weight])) !== JSON.stringify(tx.entries.map((e) => [e.high, e.weight]))
        ? 'labels or weights'
        : equalBytes(encodeTx({ ...tx, stateHash: mine.tx.stateHash }), mine.txBytes) // all but the state hash agree
          ? 'aggregator state hash'
          : 'rewards';
    throw new BflError(ErrorCode.BAD_AGGREGATION, `the block's ${what} differ from the aggregation recomputed from the updates`);
  }

  async close(): Promise<void> {
    await this.engine.close();
  }
}
