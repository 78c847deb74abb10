/**
 * The chain on LevelDB (docs/architecture.md, "Storage"): blocks by hash, the state after each block, the
 * canonical height index, the tip, the reward ledger and the indexes validation needs (which
 * blocks hold a record, which hold a global model). Fork choice is most cumulative work, ties
 * to the lower block hash (core/chain.ts). Every change that spans keys (a block with its indexes, a reorg with its
 * height index, tip and ledger) is one atomic batch, so a kill -9 leaves either the state before
 * or the state after. Blocks whose aggregation was accepted on the work built on them (a miner
 * syncing past the pruning depth) are marked as such (`acceptedOnWork`). Opening refuses a
 * damaged store (chain/leveldb.ts) rather than start a new chain in it.
 */
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Level } from 'level';
import { equalBytes, fromHex, toHex } from '../core/bytes.ts';
import { isBetterTip } from '../core/chain.ts';
import { blockHash, decodeBlock, encodeBlock } from '../core/encoding.ts';
import { BflError, ErrorCode, isBflError } from '../core/errors.ts';
import { type ChainParams, type ChainParamsJson, Membership, createGenesisBlock, paramsDigest, paramsFromJson, paramsToJson } from '../core/params.ts';
import { meetsTarget } from '../core/pow.ts';
import type { Block, BlockHeader } from '../core/types.ts';
import { type ChainState, type ChainView, type SignatureCheck, blockCredits, genesisState, validateBlock } from '../core/validation.ts';
import type { Logger } from '../util/logger.ts';
import { Bounded } from '../util/bounded.ts';
import { type Clock, systemClock } from '../util/clock.ts';
import { type Metrics, durationBuckets, timed } from '../util/metrics.ts';
import type { AggregationChain, ChainAggregationCheck } from './aggregation.ts';
import { AggregatorStates } from './aggregator-states.ts';
import { type LevelTuning, damagedError, levelFilesWithoutCurrent, openLevel } from './leveldb.ts';
import { OrphanPool, type OrphanPoolOptions } from './orphans.ts';
import { RecordFilter } from './record-filter.ts';
import { type StateJson, stateFromJson, stateToJson } from './state-json.ts';

export interface ChainStoreOptions {
  datadir: string;
  /** Required when the datadir is new; when given for an existing one it must match. */
  params?: ChainParams;
  signatures: SignatureCheck;
  /** Recomputes every block's aggregation (chain/aggregation.ts); without it, only the shape is checked. */
  aggregation?: ChainAggregationCheck;
  now?: () => number;
  orphans?: Partial<OrphanPoolOptions>;
  logger?: Logger;
  metrics?: Metrics;
  /** Waiting for the store's lock is waiting for another activity (the simulator must know). */
  clock?: Clock;
  /** Inspection tools (chain verify/show): never create the directory, a database or a genesis;
   * the caller does not write. LevelDB still takes its LOCK (it has no shared mode). */
  readOnly?: boolean;
  /**
   * Blocks of work that must be built on a block before its aggregation may be accepted
   * without recomputing it, when its raw updates are nowhere to be had (issue 13, item 2;
   * docs/decisions.md, "History validation"). Default: the miners' pruning depth, so every
   * aggregation whose updates a miner may have dropped qualifies, and none whose updates
   * every miner still keeps.
   */
  assumeValidDepth?: number;
  /** Entries of the in-memory caches (defaultStoreCaches). */
  caches?: Partial<StoreCaches>;
  /** LevelDB's open files, block cache and memtables (chain/leveldb.ts, defaultLevelTuning). */
  level?: Partial<LevelTuning>;
}

/**
 * The chain store's caches, each bounded (least recently used dropped first) so that a node's
 * memory does not grow with its chain (issue 13, "memory that returns to its baseline").
 */
export interface StoreCaches {
  /** Chain states by block hash: a few hundred bytes each (the pending records since the anchor). */
  states: number;
  /** Canonical block hashes by height (~100 bytes each). */
  heights: number;
}

export const defaultStoreCaches: StoreCaches = {
  // Block validation, the fork choice and the miner's loop read the states of the newest
  // blocks and their branches (a syncing miner's, each block's parent's: the one just added).
  // A state with its pending records is ~1 kB on the JS heap (measured, issue 13): 2048 is ~2 MB,
  // the newest ~8 minutes of blocks at the soak's fastest pace (~250 a minute), far deeper than
  // a fork; an older state is one LevelDB read. 10,000 before grew a miner's heap by ~1 MB per
  // 1,000 blocks up to ~10 MB (~5,600 blocks in a 20-minute soak).
  states: 2048,
  // isAncestor, the update intake and block sync ask for the hashes near the tip on every block
  // (each a LevelDB read, a hop to the thread pool: 11 % of a miner's main thread in the soak);
  // 4096 covers the pruning depth, assumeValidDepth and a sync batch of 1024 hashes.
  heights: 4096,
};

/** Default of `assumeValidDepth`: the payload pruning depth of miners (MinerOptions.pruneDepth). */
export const ASSUME_VALID_DEPTH = 32;

export interface AddBlockOptions {
  /** Headers of blocks built on this one, lowest first (a syncing miner has them from its
   * peer): with `assumeValidDepth` of them, linked and each meeting the network's proof of
   * work, an aggregation whose raw updates are unavailable is accepted on that work. */
  descendants?: BlockHeader[];
}

export interface Reorg {
  forkHeight: number;
  disconnected: string[]; // hashes removed from the canonical chain, tip first
  connected: string[]; // hashes added, lowest first
}

export type AddStatus = 'connected' | 'side' | 'duplicate' | 'orphan';

export interface AddResult {
  status: AddStatus;
  hash: string;
  tipChanged: boolean;
  reorg?: Reorg;
  /** Orphans that connected because of this block, in order. */
  adopted: AddResult[];
}

type Bytes = Uint8Array;

/** One operation of an atomic batch across sublevels (abstract-level's typing of mixed
 * sublevel value types is not expressible, so the batch is typed here and cast once). */
interface Op {
  type: 'put' | 'del';
  sublevel?: unknown;
  key: string;
  value?: unknown;
}

function chainMetrics(m: Metrics) {
  return {
    height: m.gauge('bfl_chain_height', 'height of the canonical tip'),
    blocks: m.counter('bfl_chain_blocks_total', 'blocks offered to the store, by result (status or error code)', ['result']),
    reorgs: m.counter('bfl_chain_reorgs_total', 'reorganisations of the canonical chain'),
    validation: m.histogram('bfl_block_validation_seconds', 'time to validate a block whose parent is known (signatures and aggregation recomputation included)', durationBuckets),
  };
}

const heightKey = (h: number) => h.toString().padStart(10, '0');

export class ChainStore extends EventEmitter implements ChainView, AggregationChain {
  readonly params: ChainParams;
  readonly membership: Membership;
  readonly genesisHash: Uint8Array;
  private readonly db: Level<string, string>;
  private readonly blocks;
  private readonly states;
  private readonly heights;
  private readonly recordIdx;
  /** The record index's keys in memory, as a Bloom filter: most look-ups are of updates no block records (new uploads), answered without a read. */
  private readonly recordFilter = new RecordFilter();
  private readonly modelIdx;
  private readonly balancesDb;
  /** Blocks whose aggregation was accepted on the work built on them (not recomputed). */
  private readonly assumedDb;
  private readonly aggStates: AggregatorStates;
  private readonly opts: ChainStoreOptions;
  private readonly orphans: OrphanPool;
  private readonly stateCache: Bounded<ChainState>;
  /** Canonical hashes by height key; `heightGen` counts the writes of the height index, so that
   * a read that raced a write (and may hold the old hash) is not cached. */
  private readonly heightCache: Bounded<string>;
  private heightGen = 0;
  private tipState!: ChainState;
  private lock: Promise<void> = Promise.resolve();
  private readonly log?: Logger;
  private readonly m?: ReturnType<typeof chainMetrics>;

  private constructor(db: Level<string, string>, params: ChainParams, opts: ChainStoreOptions) {
    super();
    this.db = db;
    this.params = params;
    this.opts = opts;
    this.membership = new Membership(params.members);
    this.genesisHash = blockHash(createGenesisBlock(params).header);
    this.blocks = db.sublevel<string, Bytes>('b', { valueEncoding: 'view' });
    this.states = db.sublevel<string, StateJson>('s', { valueEncoding: 'json' });
    this.heights = db.sublevel<string, string>('h', { valueEncoding: 'utf8' });
    this.recordIdx = db.sublevel<string, string[]>('r', { valueEncoding: 'json' });
    this.modelIdx = db.sublevel<string, string[]>('m', { valueEncoding: 'json' });
    this.balancesDb = db.sublevel<string, string>('bal', { valueEncoding: 'utf8' });
    this.assumedDb = db.sublevel<string, string>('v', { valueEncoding: 'utf8' });
    this.aggStates = new AggregatorStates(db.sublevel<string, Uint8Array>('a', { valueEncoding: 'view' }));
    this.orphans = new OrphanPool(opts.orphans);
    this.log = opts.logger;
    this.m = opts.metrics && chainMetrics(opts.metrics);
    const caches = { ...defaultStoreCaches, ...opts.caches };
    this.stateCache = new Bounded(caches.states);
    this.heightCache = new Bounded(caches.heights);
  }

  static async open(opts: ChainStoreOptions): Promise<ChainStore> {
    // LevelDB creates a missing directory even with createIfMissing: false, so a read-only
    // open first checks that a database is there.
    if (opts.readOnly && !existsSync(join(opts.datadir, 'CURRENT')) && !levelFilesWithoutCurrent(opts.datadir)) throw new BflError(ErrorCode.NOT_FOUND, `${opts.datadir} holds no chain store`);
    if (!opts.readOnly) await mkdir(opts.datadir, { recursive: true });
    const { db, existed } = await openLevel<string>('chain', opts.datadir, { valueEncoding: 'utf8', createIfMissing: !opts.readOnly, tuning: opts.level });
    try {
      const storedJson = await db.get('params');
      let params: ChainParams;
      if (storedJson === undefined) {
        // A database that holds keys but no parameters lost them: never a silent genesis. (An
        // empty one is a first start killed before its genesis batch: nothing to lose.)
        if (existed && (await db.keys({ limit: 1 }).all()).length > 0) throw damagedError('chain', opts.datadir, 'chain data without network parameters');
        if (!opts.params || opts.readOnly) throw new BflError(ErrorCode.BAD_CONFIG, `${opts.datadir} holds no chain and no network parameters were given`);
        params = opts.params;
        const store = new ChainStore(db, params, opts);
        await store.writeGenesis();
        return store;
      }
      try {
        params = paramsFromJson(JSON.parse(storedJson) as ChainParamsJson);
      } catch (e) {
        throw damagedError('chain', opts.datadir, `its network parameters do not parse: ${(e as Error).message}`);
      }
      const store = new ChainStore(db, params, opts);
      // The genesis block commits to the parameters: stored parameters that disagree with the
      // stored genesis are damage, not another network.
      if ((await store.hashAt(0)) !== toHex(store.genesisHash)) throw damagedError('chain', opts.datadir, 'its network parameters do not match its genesis block');
      if (opts.params && !equalBytes(paramsDigest(opts.params), paramsDigest(params))) {
        throw new BflError(ErrorCode.NETWORK_MISMATCH, `${opts.datadir} belongs to network "${params.networkId}" with other parameters than the config; use another datadir`);
      }
      await store.loadTip();
      await store.loadRecordFilter();
      return store;
    } catch (e) {
      await db.close();
      throw e;
    }
  }

  private async writeGenesis(): Promise<void> {
    const g = createGenesisBlock(this.params);
    const state = genesisState(g);
    const h = toHex(state.hash);
    const agg = g.txs[0] as { modelHash: Uint8Array };
    await this.writeBatch([
      { type: 'put', key: 'params', value: JSON.stringify(paramsToJson(this.params)) },
      { type: 'put', sublevel: this.blocks, key: h, value: encodeBlock(g) },
      { type: 'put', sublevel: this.states, key: h, value: stateToJson(state) },
      { type: 'put', sublevel: this.heights, key: heightKey(0), value: h },
      { type: 'put', sublevel: this.modelIdx, key: toHex(agg.modelHash), value: [h] },
      { type: 'put', key: 'tip', value: h },
    ]);
    this.tipState = state;
  }

  private async loadTip(): Promise<void> {
    const damaged = (what: string) => damagedError('chain', this.opts.datadir, what);
    const tip = await this.db.get('tip');
    if (!tip) throw damaged('no tip');
    const state = await this.getState(fromHex(tip));
    if (!state) throw damaged(`tip ${tip} has no stored state`);
    if (!(await this.blocks.get(tip))) throw damaged(`tip block ${tip} is missing`);
    this.tipState = state;
  }

  private async writeBatch(ops: Op[]): Promise<void> {
    await (this.db.batch as (ops: unknown[]) => Promise<void>).call(this.db, ops);
    // the height cache follows the index once the batch is on disk
    for (const op of ops) {
      if (op.sublevel !== this.heights) continue;
      this.heightGen++;
      if (op.type === 'put') this.heightCache.set(op.key, op.value as string);
      else this.heightCache.delete(op.key);
    }
  }

  /** Entries in the caches (tests: they stay bounded). */
  cacheSizes(): { states: number; heights: number } {
    return { states: this.stateCache.size, heights: this.heightCache.size };
  }

  get tip(): ChainState {
    return this.tipState;
  }

  /** False once closed or if LevelDB failed (GET /healthz). */
  get isOpen(): boolean {
    return this.db.status === 'open';
  }

  get orphanCount(): number {
    return this.orphans.size;
  }

  async close(): Promise<void> {
    await (this.opts.clock ?? systemClock).suspend(this.lock);
    await this.db.close();
  }

  // ---- ChainView ----

  async getState(hash: Bytes): Promise<ChainState | undefined> {
    const h = toHex(hash);
    const cached = this.stateCache.get(h);
    if (cached) return cached;
    const j = await this.states.get(h);
    if (!j) return undefined;
    const s = stateFromJson(j);
    this.stateCache.set(h, s);
    return s;
  }

  async blocksWithRecord(clientId: string, digest: Bytes): Promise<Bytes[]> {
    if (!this.recordFilter.mayHave(clientId, digest)) return [];
    return ((await this.recordIdx.get(`${clientId}:${toHex(digest)}`)) ?? []).map((h) => fromHex(h));
  }

  /** The record index's keys into the filter (at open: the filter is derived from the stored chain). */
  private async loadRecordFilter(): Promise<void> {
    for await (const key of this.recordIdx.keys()) {
      const at = key.lastIndexOf(':');
      this.recordFilter.add(key.slice(0, at), fromHex(key.slice(at + 1)));
    }
  }

  async blocksWithModel(modelHash: Bytes): Promise<Bytes[]> {
    return ((await this.modelIdx.get(toHex(modelHash))) ?? []).map((h) => fromHex(h));
  }

  async isAncestor(ancestor: Bytes, of: Bytes): Promise<boolean> {
    const target = await this.getState(ancestor);
    let cur = await this.getState(of);
    if (!target || !cur) return false;
    const a = toHex(ancestor);
    while (cur.height > target.height) {
      // Once the walk reaches the canonical chain, the height index answers directly.
      if ((await this.hashAt(cur.height)) === toHex(cur.hash)) {
        return (await this.hashAt(target.height)) === a;
      }
      const parent: ChainState | undefined = await this.getState(cur.parentHash);
      if (!parent) return false;
      cur = parent;
    }
    return toHex(cur.hash) === a;
  }

  // ---- reads ----

  async getBlock(hash: Bytes | string): Promise<Block | undefined> {
    const bytes = await this.getBlockBytes(hash);
    return bytes && decodeBlock(bytes);
  }

  async getBlockBytes(hash: Bytes | string): Promise<Bytes | undefined> {
    return this.blocks.get(typeof hash === 'string' ? hash : toHex(hash));
  }

  async hashAt(height: number): Promise<string | undefined> {
    const key = heightKey(height);
    const cached = this.heightCache.get(key);
    if (cached !== undefined) return cached;
    const gen = this.heightGen;
    const h = await this.heights.get(key);
    if (h !== undefined && gen === this.heightGen) this.heightCache.set(key, h);
    return h;
  }

  async blockAt(height: number): Promise<Block | undefined> {
    const h = await this.hashAt(height);
    return h ? this.getBlock(h) : undefined;
  }

  async balances(): Promise<Map<string, bigint>> {
    const out = new Map<string, bigint>();
    for await (const [k, v] of this.balancesDb.iterator()) out.set(k, BigInt(v));
    return out;
  }

  async balance(id: string): Promise<bigint> {
    return BigInt((await this.balancesDb.get(id)) ?? '0');
  }

  /** The aggregator's state after the aggregation block `hash` (undefined if not stored). */
  aggregatorState(hash: Bytes): Promise<Uint8Array | undefined> {
    return this.aggStates.get(hash);
  }

  async putAggregatorState(hash: Bytes, state: Uint8Array): Promise<void> {
    await this.aggStates.put(hash, state);
  }

  /** Was this block's aggregation accepted on the work built on it, without recomputing it? */
  async acceptedOnWork(hash: Bytes | string): Promise<boolean> {
    return (await this.assumedDb.get(typeof hash === 'string' ? hash : toHex(hash))) !== undefined;
  }

  get assumeValidDepth(): number {
    return this.opts.assumeValidDepth ?? ASSUME_VALID_DEPTH;
  }

  /** `descendants` are `assumeValidDepth` blocks of valid proof of work by admitted miners on `block`. */
  private buried(block: Block, hash: Bytes, descendants: BlockHeader[] | undefined): boolean {
    if (!descendants || descendants.length < this.assumeValidDepth) return false;
    let prev = hash;
    for (let i = 0; i < descendants.length; i++) {
      const d = descendants[i];
      const h = blockHash(d);
      if (!equalBytes(d.prevHash, prev) || d.height !== block.header.height + i + 1 || d.difficulty !== this.params.difficulty || !meetsTarget(h, d.difficulty) || !this.membership.ofRole(d.minerId, 'miner')) return false;
      prev = h;
    }
    return true;
  }

  // ---- writes ----

  /**
   * Validate and store a block (bytes from the wire, or a block we mined). Throws a BflError
   * with the rule's code when the block is invalid. A block with an unknown parent is kept in
   * the orphan pool and returns status 'orphan'; it is connected when its parent arrives.
   */
  async addBlock(input: Block | Bytes, opts: AddBlockOptions = {}): Promise<AddResult> {
    // one block at a time: validation reads the tip it then changes
    const previous = this.lock;
    let release!: () => void;
    this.lock = new Promise<void>((r) => (release = r));
    await (this.opts.clock ?? systemClock).suspend(previous);
    try {
      return await this.addBlockLocked(input, opts);
    } finally {
      release();
    }
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }

  private async addBlockLocked(input: Block | Bytes, opts: AddBlockOptions = {}): Promise<AddResult> {
    try {
      const r = await this.addBlockChecked(input, opts);
      this.m?.blocks.inc({ result: r.status });
      return r;
    } catch (e) {
      this.m?.blocks.inc({ result: e instanceof BflError ? e.code : 'INTERNAL' });
      this.log?.debug({ err: (e as Error).message, code: (e as BflError).code }, 'block refused');
      throw e;
    }
  }

  private async addBlockChecked(input: Block | Bytes, opts: AddBlockOptions): Promise<AddResult> {
    const bytes = input instanceof Uint8Array ? input : encodeBlock(input);
    const block = decodeBlock(bytes, this.params.maxBlockBytes); // OVERSIZED / MALFORMED
    const hash = blockHash(block.header);
    const h = toHex(hash);
    if ((await this.getState(hash)) !== undefined) return { status: 'duplicate', hash: h, tipChanged: false, adopted: [] };
    if (block.header.height > 0 && !(await this.getState(block.header.prevHash))) {
      this.orphans.add(h, block, bytes.length, this.now());
      return { status: 'orphan', hash: h, tipChanged: false, adopted: [] };
    }
    const result = await this.connect(block, bytes, hash, this.buried(block, hash, opts.descendants));
    for (const child of this.orphans.takeChildren(h, this.now())) {
      try {
        result.adopted.push(await this.addBlockLocked(child));
      } catch {
        // An orphan that turns out invalid is dropped; its sender was penalised on arrival.
      }
    }
    return result;
  }

  private async connect(block: Block, bytes: Bytes, hash: Bytes, buried: boolean): Promise<AddResult> {
    const check = this.opts.aggregation;
    let assumed = false;
    // Recomputed whenever the raw updates (and the state before) can be had; a buried block whose
    // updates cannot is accepted on the work built on it (everything else is still checked:
    // proof of work, signatures, structure, the ϕ rule, the aggregation's shape).
    const verify = check && (async (tx: Parameters<ChainAggregationCheck['verify']>[0], input: Parameters<ChainAggregationCheck['verify']>[1]) => {
      try {
        return await check.verify(tx, input, this);
      } catch (e) {
        if (!buried || !isBflError(e, ErrorCode.UNAVAILABLE)) throw e;
        assumed = true;
        return undefined;
      }
    });
    const { state, credits, aggregatorState } = await timed(this.m?.validation, () => validateBlock(block, {
      params: this.params,
      membership: this.membership,
      view: this,
      signatures: this.opts.signatures,
      aggregation: verify && { verify },
      now: this.now(),
    }));
    const h = toHex(hash);
    const ops: Op[] = [
      { type: 'put', sublevel: this.blocks, key: h, value: bytes },
      { type: 'put', sublevel: this.states, key: h, value: stateToJson(state) },
    ];
    if (assumed) {
      ops.push({ type: 'put', sublevel: this.assumedDb, key: h, value: '' });
      this.log?.debug({ height: block.header.height, hash: h }, 'aggregation accepted on work (its updates are pruned)');
    }
    if (aggregatorState) ops.push(this.aggStates.putOp(h, aggregatorState));
    for (const tx of block.txs) {
      if (tx.type === 'record') {
        const key = `${tx.clientId}:${toHex(tx.updateDigest)}`;
        // in the filter before the batch: it never misses a key the index holds (a batch that fails leaves a false positive)
        this.recordFilter.add(tx.clientId, tx.updateDigest);
        ops.push({ type: 'put', sublevel: this.recordIdx, key, value: [...((await this.recordIdx.get(key)) ?? []), h] });
      } else if (tx.type === 'aggregation') {
        const key = toHex(tx.modelHash);
        ops.push({ type: 'put', sublevel: this.modelIdx, key, value: [...((await this.modelIdx.get(key)) ?? []), h] });
      }
    }
    let reorg: Reorg | undefined;
    const better = isBetterTip(state, this.tipState);
    if (better) {
      reorg = await this.planReorg(state, credits, ops);
      ops.push({ type: 'put', key: 'tip', value: h });
    }
    await this.writeBatch(ops);
    this.stateCache.set(h, state);
    if (better) {
      this.tipState = state;
      this.m?.height.set(state.height);
      if (reorg && reorg.disconnected.length > 0) {
        this.m?.reorgs.inc();
        this.log?.info({ forkHeight: reorg.forkHeight, depth: reorg.disconnected.length, tip: h }, 'reorg');
      }
      this.emit('tip', state, reorg);
    }
    return { status: better ? 'connected' : 'side', hash: h, tipChanged: better, reorg: reorg && reorg.disconnected.length > 0 ? reorg : undefined, adopted: [] };
  }

  /** Height index, ledger and tip changes that move the canonical chain to `newTip`. */
  private async planReorg(newTip: ChainState, newCredits: Map<string, bigint>, ops: Op[]): Promise<Reorg> {
    const connected: ChainState[] = [newTip];
    let cur = (await this.getState(newTip.parentHash))!;
    while ((await this.hashAt(cur.height)) !== toHex(cur.hash)) {
      connected.push(cur);
      cur = (await this.getState(cur.parentHash))!;
    }
    const fork = cur;
    const disconnected: string[] = [];
    for (let ht = this.tipState.height; ht > fork.height; ht--) disconnected.push((await this.hashAt(ht))!);

    const delta = new Map<string, bigint>();
    const apply = (credits: Map<string, bigint>, sign: bigint) => {
      for (const [id, v] of credits) delta.set(id, (delta.get(id) ?? 0n) + sign * v);
    };
    for (const d of disconnected) apply(blockCredits((await this.getBlock(d))!), -1n);
    for (const s of connected) apply(s === newTip ? newCredits : blockCredits((await this.getBlock(s.hash))!), 1n);
    for (const [id, dv] of delta) {
      if (dv === 0n) continue;
      const v = (await this.balance(id)) + dv;
      if (v < 0n) throw new BflError(ErrorCode.STORE_CORRUPT, `reward ledger would go negative for ${id}`);
      ops.push(v === 0n ? { type: 'del', sublevel: this.balancesDb, key: id } : { type: 'put', sublevel: this.balancesDb, key: id, value: v.toString() });
    }
    connected.reverse();
    for (const s of connected) ops.push({ type: 'put', sublevel: this.heights, key: heightKey(s.height), value: toHex(s.hash) });
    for (let ht = this.tipState.height; ht > newTip.height; ht--) ops.push({ type: 'del', sublevel: this.heights, key: heightKey(ht) });
    return { forkHeight: fork.height, disconnected, connected: connected.map((s) => toHex(s.hash)) };
  }
}
