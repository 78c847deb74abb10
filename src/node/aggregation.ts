/**
 * The aggregation a block must carry, computed from the raw updates: used by a miner to build
 * its block and by every miner to verify a received one (ChainStore's AggregationCheck). Same
 * code, same bits: a block whose transaction differs in any byte is BAD_AGGREGATION.
 */
import { equalBytes, toHex } from '../core/bytes.ts';
import { type Aggregator, type UpdateInput, createAggregator } from '../core/aggregation/index.ts';
import { aggregationTxOf } from '../core/chain.ts';
import { encodeTx } from '../core/encoding.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import { sha256 } from '../core/hash.ts';
import type { AggregationTx } from '../core/types.ts';
import type { AggregationCheck, ChainState, PendingRecord } from '../core/validation.ts';
import type { ChainStore } from '../chain/store.ts';
import type { AggregationConfig } from '../config/network.ts';
import { payloadToDelta } from '../core/update.ts';

/** Raw updates by (client, digest), fetched from peers if we lack them. */
export interface UpdateSource {
  get(clientId: string, digest: Uint8Array): Promise<{ payload: Uint8Array; sampleCount: number; baseModelHash: Uint8Array } | undefined>;
}

/** Missing raw updates come through the miner (pool, then fetched from the other miners); the
 * miner is built after the chain store that needs this, hence the late binding. */
export function updatesVia(miner: () => { fetchUpdate(clientId: string, digest: Uint8Array): Promise<{ payload: Uint8Array; sampleCount: number; baseModelHash: Uint8Array } | undefined> } | undefined): UpdateSource {
  return {
    get: async (clientId, digest) => {
      const u = await miner()?.fetchUpdate(clientId, digest);
      return u && { payload: u.payload, sampleCount: u.sampleCount, baseModelHash: u.baseModelHash };
    },
  };
}

export function aggregatorOf(c: AggregationConfig): Aggregator<unknown> {
  return createAggregator(c.aggregator, {
    bflmec: { metric: c.metric, eps: c.eps, epsFactor: c.epsFactor, minPts: c.minPts, maxNormRatio: c.maxNormRatio },
    stalenessExponent: c.stalenessExponent,
    fedproxDrop: c.fedproxDrop,
    krumF: c.krumF ?? undefined,
    trim: c.trim,
  });
}

export class Aggregation implements AggregationCheck {
  private readonly store: () => ChainStore;
  private readonly source: UpdateSource;
  private readonly aggregator: Aggregator<unknown>;
  private readonly rounds = new Map<string, number>();

  constructor(store: () => ChainStore, source: UpdateSource, config: AggregationConfig) {
    this.store = store;
    this.source = source;
    this.aggregator = aggregatorOf(config);
  }

  /** The round of the aggregation that produced `modelHash` (for staleness). */
  private async roundOf(modelHash: Uint8Array): Promise<number> {
    const key = toHex(modelHash);
    const cached = this.rounds.get(key);
    if (cached !== undefined) return cached;
    for (const h of await this.store().blocksWithModel(modelHash)) {
      const block = await this.store().getBlock(h);
      const agg = block && aggregationTxOf(block);
      if (agg) {
        this.rounds.set(key, agg.round);
        return agg.round;
      }
    }
    throw new BflError(ErrorCode.UNKNOWN_BASE_MODEL, `no aggregation produced model ${key}`);
  }

  async compute(parent: ChainState, records: PendingRecord[]): Promise<AggregationTx> {
    const store = this.store();
    const anchor = await store.getBlock(parent.anchor);
    const prevTx = anchor && aggregationTxOf(anchor);
    if (!prevTx) throw new BflError(ErrorCode.STORE_CORRUPT, `anchor ${toHex(parent.anchor)} has no aggregation`);
    const previous = payloadToDelta(prevTx.model);
    const updates: UpdateInput[] = [];
    for (const r of records) {
      const u = await this.source.get(r.clientId, r.updateDigest);
      if (!u) throw new BflError(ErrorCode.UNAVAILABLE, `update ${r.clientId}:${toHex(r.updateDigest)} is not available to aggregate`, { action: 'IGNORE' });
      const delta = payloadToDelta(u.payload);
      if (delta.length !== previous.length) throw new BflError(ErrorCode.BAD_AGGREGATION, `update ${toHex(r.updateDigest)} has ${delta.length} parameters, the model ${previous.length}`);
      updates.push({ clientId: r.clientId, digest: r.updateDigest, delta, sampleCount: u.sampleCount, staleness: Math.max(0, parent.rounds - 1 - (await this.roundOf(u.baseModelHash))) });
    }
    const { result } = this.aggregator.aggregate({ previous, updates, baseReward: store.params.baseReward }, this.aggregator.initialState());
    const model = new Uint8Array(result.model.buffer, result.model.byteOffset, result.model.byteLength);
    return { type: 'aggregation', round: parent.rounds, baseModelHash: parent.modelHash, modelHash: sha256(model), model, entries: result.entries, rewards: result.rewards };
  }

  async verify(tx: AggregationTx, input: { parent: ChainState; records: PendingRecord[] }): Promise<void> {
    const mine = await this.compute(input.parent, input.records);
    if (equalBytes(encodeTx(mine), encodeTx(tx))) return;
    const what = !equalBytes(mine.modelHash, tx.modelHash) ? 'global model' : JSON.stringify(mine.entries.map((e) => [e.high, e.weight])) !== JSON.stringify(tx.entries.map((e) => [e.high, e.weight])) ? 'labels or weights' : 'rewards';
    throw new BflError(ErrorCode.BAD_AGGREGATION, `the block's ${what} differ from the aggregation recomputed from the updates`);
  }
}
