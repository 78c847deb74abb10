/**
 * The chain explorer's JSON, read from the chain store (blocks by height and hash, states,
 * balances). Everything here is derived from the canonical chain, so a reorg changes it on the
 * next request; nothing is cached.
 */
import type { ChainStore } from '../chain/store.ts';
import { toHex } from '../core/bytes.ts';
import { blockHash, decodeBlock } from '../core/encoding.ts';
import { UNITS_PER_TOKEN } from '../core/params.ts';
import type { AggregationTx, Block, RecordTx } from '../core/types.ts';

/** Reward units as tokens (1 token = 10^6 units): a number for charts, exact below 2^53 units. */
export const tokens = (units: bigint): number => Number(units) / Number(UNITS_PER_TOKEN);

export interface BlockSummary {
  height: number;
  hash: string;
  miner: string;
  timestamp: number;
  records: number;
  /** The aggregation round this block carries, or null. */
  aggregation: number | null;
  bytes: number;
}

export interface RecordView {
  clientId: string;
  minerId: string;
  digest: string;
  baseModelHash: string;
  sampleCount: number;
  createdAt: number;
  signatureBytes: number;
}

export interface AggregationView {
  round: number;
  modelHash: string;
  baseModelHash: string;
  parameters: number;
  entries: { clientId: string; digest: string; high: boolean; weight: number }[];
  rewards: { id: string; units: string; tokens: number }[];
  /** Test accuracy of this global model, if this miner evaluated it. */
  accuracy: number | null;
}

export interface BlockDetail extends BlockSummary {
  canonical: boolean;
  /** This node took the block's aggregation on the proof of work built on it while syncing
   * (its raw updates were pruned everywhere), rather than recomputing it (docs/decisions.md,
   * assume-valid). */
  acceptedOnWork: boolean;
  prevHash: string;
  merkleRoot: string;
  difficulty: string;
  nonce: number;
  signatureBytes: number;
  coinbase: { miner: string; units: string; tokens: number } | null;
  genesis: { networkId: string; paramsDigest: string } | null;
  recordList: RecordView[];
  aggregationDetail: AggregationView | null;
}

export interface AggregationSummary {
  round: number;
  height: number;
  hash: string;
  timestamp: number;
  miner: string;
  updates: number;
  high: number;
  /** Clients whose update was labelled low (discarded, unpaid) in this round. */
  low: string[];
  /** Each client's label this round ('mixed': it sent several updates, labelled both ways). */
  labels: Record<string, 'high' | 'low' | 'mixed'>;
  /** Tokens paid per client in this round. */
  rewards: Record<string, number>;
  modelHash: string;
  accuracy: number | null;
}

function labelsOf(a: AggregationTx): Record<string, 'high' | 'low' | 'mixed'> {
  const out: Record<string, 'high' | 'low' | 'mixed'> = {};
  for (const e of a.entries) {
    const l = e.high ? 'high' : 'low';
    out[e.clientId] = out[e.clientId] === undefined || out[e.clientId] === l ? l : 'mixed';
  }
  return out;
}

export type AccuracyOf = (modelHash: string) => number | undefined;

const aggregationOf = (b: Block): AggregationTx | undefined => b.txs.find((t): t is AggregationTx => t.type === 'aggregation');

function summary(b: Block, bytes: number): BlockSummary {
  return {
    height: b.header.height,
    hash: toHex(blockHash(b.header)),
    miner: b.header.minerId,
    timestamp: b.header.timestamp,
    records: b.txs.filter((t) => t.type === 'record').length,
    aggregation: aggregationOf(b)?.round ?? null,
    bytes,
  };
}

/** Bounded memo of what a block hash maps to: blocks never change, so entries never go stale. */
export class Memo<V> {
  private readonly m = new Map<string, V>();
  private readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get(k: string): V | undefined {
    return this.m.get(k);
  }

  set(k: string, v: V): V {
    this.m.set(k, v);
    if (this.m.size > this.capacity) this.m.delete(this.m.keys().next().value!);
    return v;
  }

  get size(): number {
    return this.m.size;
  }
}

// An aggregation block carries the whole global model (~640 KB for the default MLP): reading
// and decoding every one of them for each poll of the explorer would cost megabytes per
// request. Summaries are small and a block never changes, so they are computed once per hash;
// what can change (canonical or not, accuracy measured later) is looked up on each request.
const summaries = new WeakMap<ChainStore, Memo<BlockSummary>>();
const aggSummaries = new WeakMap<ChainStore, Memo<{ s: Omit<AggregationSummary, 'accuracy'>; prevHash: Uint8Array }>>();
/**
 * Entries of the two memos (issue 13, a miner's memory). The dashboard summarises every new block
 * and aggregation as it arrives, watched or not, so each memo fills to its bound: ~350 bytes a
 * block summary, ~1.2 kB an aggregation's on the JS heap (measured). Their former 20,000 each
 * (~30 MB) grew a miner's heap by ~2 kB per aggregation for hours. A page asks for at most 500
 * blocks and 5,000 aggregations (the dashboard 30 and 300): the newest pages stay in memory;
 * deeper ones read their blocks again.
 */
export const EXPLORER_MEMO = { blocks: 2048, aggregations: 5000 };
const memoOf = <V>(w: WeakMap<ChainStore, Memo<V>>, store: ChainStore, capacity: number): Memo<V> => w.get(store) ?? (w.set(store, new Memo<V>(capacity)), w.get(store)!);

async function summaryAt(store: ChainStore, hash: string): Promise<BlockSummary | undefined> {
  const memo = memoOf(summaries, store, EXPLORER_MEMO.blocks);
  const known = memo.get(hash);
  if (known) return known;
  const bytes = await store.getBlockBytes(hash);
  return bytes && memo.set(hash, summary(decodeBlock(bytes), bytes.length));
}

/** Canonical blocks, newest first, at most `limit`, below height `before` (default: from the tip). */
export async function recentBlocks(store: ChainStore, o: { limit: number; before?: number }): Promise<BlockSummary[]> {
  const top = Math.min(store.tip.height, (o.before ?? Infinity) - 1);
  const out: BlockSummary[] = [];
  for (let h = top; h >= 0 && out.length < o.limit; h--) {
    const hash = await store.hashAt(h);
    const s = hash && (await summaryAt(store, hash));
    if (!s) break; // a reorg moved the index under us: the next poll sees the new chain
    out.push(s);
  }
  return out;
}

function recordView(r: RecordTx): RecordView {
  return { clientId: r.clientId, minerId: r.minerId, digest: toHex(r.updateDigest), baseModelHash: toHex(r.baseModelHash), sampleCount: r.sampleCount, createdAt: r.createdAt, signatureBytes: r.signature.length };
}

export function aggregationView(a: AggregationTx, accuracyOf?: AccuracyOf): AggregationView {
  const modelHash = toHex(a.modelHash);
  return {
    round: a.round,
    modelHash,
    baseModelHash: toHex(a.baseModelHash),
    parameters: a.model.length / 4,
    entries: a.entries.map((e) => ({ clientId: e.clientId, digest: toHex(e.updateDigest), high: e.high, weight: e.weight })),
    rewards: a.rewards.map((r) => ({ id: r.id, units: r.amount.toString(), tokens: tokens(r.amount) })),
    accuracy: accuracyOf?.(modelHash) ?? null,
  };
}

/** One block by hash (64 hex digits) or height (canonical chain); undefined if unknown. */
export async function blockDetail(store: ChainStore, id: string, accuracyOf?: AccuracyOf): Promise<BlockDetail | undefined> {
  const hash = /^\d{1,10}$/.test(id) ? await store.hashAt(Number(id)) : /^[0-9a-f]{64}$/i.test(id) ? id.toLowerCase() : undefined;
  const bytes = hash && (await store.getBlockBytes(hash));
  if (!bytes) return undefined;
  const b = decodeBlock(bytes);
  const coinbase = b.txs.find((t) => t.type === 'coinbase');
  const genesis = b.txs.find((t) => t.type === 'genesis');
  const agg = aggregationOf(b);
  return {
    ...summary(b, bytes.length),
    canonical: (await store.hashAt(b.header.height)) === hash,
    acceptedOnWork: await store.acceptedOnWork(hash),
    prevHash: toHex(b.header.prevHash),
    merkleRoot: toHex(b.header.merkleRoot),
    difficulty: b.header.difficulty.toString(),
    nonce: b.header.nonce,
    signatureBytes: b.signature.length,
    coinbase: coinbase && coinbase.type === 'coinbase' ? { miner: coinbase.minerId, units: coinbase.amount.toString(), tokens: tokens(coinbase.amount) } : null,
    genesis: genesis && genesis.type === 'genesis' ? { networkId: genesis.networkId, paramsDigest: toHex(genesis.paramsDigest) } : null,
    recordList: b.txs.filter((t): t is RecordTx => t.type === 'record').map(recordView),
    aggregationDetail: agg ? aggregationView(agg, accuracyOf) : null,
  };
}

/**
 * The newest `limit` aggregations of the canonical chain, newest first, genesis (round 0)
 * included when reached. Walks anchor to anchor: each state names the newest aggregation block,
 * so the walk reads one block per round, not every block.
 */
export async function recentAggregations(store: ChainStore, limit: number, accuracyOf?: AccuracyOf): Promise<AggregationSummary[]> {
  const memo = memoOf(aggSummaries, store, EXPLORER_MEMO.aggregations);
  const out: AggregationSummary[] = [];
  let anchor: Uint8Array | undefined = store.tip.anchor;
  while (anchor && out.length < limit) {
    const key = toHex(anchor);
    let known = memo.get(key);
    if (!known) {
      const b = await store.getBlock(anchor);
      const a = b && aggregationOf(b);
      if (!b || !a) break;
      known = memo.set(key, {
        prevHash: b.header.prevHash,
        s: {
          round: a.round,
          height: b.header.height,
          hash: key,
          timestamp: b.header.timestamp,
          miner: b.header.minerId,
          updates: a.entries.length,
          high: a.entries.filter((e) => e.high).length,
          low: [...new Set(a.entries.filter((e) => !e.high).map((e) => e.clientId))].sort(),
          labels: labelsOf(a),
          rewards: Object.fromEntries(a.rewards.map((r) => [r.id, tokens(r.amount)])),
          modelHash: toHex(a.modelHash),
        },
      });
    }
    out.push({ ...known.s, accuracy: accuracyOf?.(known.s.modelHash) ?? null });
    if (known.s.height === 0) break;
    anchor = (await store.getState(known.prevHash))?.anchor;
  }
  return out;
}

/** The reward ledger (coinbase and aggregation rewards), largest first. */
export async function rewardLedger(store: ChainStore): Promise<{ id: string; role: string; units: string; tokens: number }[]> {
  return [...(await store.balances())]
    .map(([id, v]) => ({ id, role: store.membership.get(id)?.role ?? 'unknown', units: v.toString(), tokens: tokens(v) }))
    .sort((a, b) => b.tokens - a.tokens || (a.id < b.id ? -1 : 1));
}
