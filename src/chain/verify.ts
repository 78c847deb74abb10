/**
 * `bfl-node chain verify`: re-validate a stored chain from genesis. Every canonical block is
 * decoded, checked against its height-index entry and validated by the same rules as a block
 * from the wire (signatures included), against states recomputed from scratch; the stored
 * states, the tip and the reward ledger must equal the recomputed ones.
 *
 * Aggregations are recomputed where the node's update pool still holds their raw updates (the
 * last `pruneDepth` blocks) with the aggregator the genesis commits to, and the report says
 * which (`aggregationCheck`): `recomputed`, `acceptedOnWork` (the node took them on the work
 * built on them while syncing: their updates were pruned everywhere) and `checkedOnArrival`
 * (the node recomputed them when they arrived; their updates are pruned since). The update pool
 * is checked too.
 */
import { existsSync } from 'node:fs';
import { equalBytes, toHex } from '../core/bytes.ts';
import { aggregationTxOf } from '../core/chain.ts';
import { sha256 } from '../core/hash.ts';
import type { AggregationTx, Block } from '../core/types.ts';
import { blockHash, decodeBlock } from '../core/encoding.ts';
import { BflError, ErrorCode, isBflError } from '../core/errors.ts';
import { type ChainState, type SignatureCheck, genesisState, pendingOf, sortedPending, validateBlock } from '../core/validation.ts';
import { type AggregationConfig, aggregationConfigOfRules } from '../config/network.ts';
import { type AggregationChain, ChainAggregation, type UpdateSource } from './aggregation.ts';
import { InThreadAggregationEngine, aggregatorOf } from './aggregation-engine.ts';
import { MemoryChainView } from './memory-view.ts';
import { damagedError } from './leveldb.ts';
import { stateToJson } from './state-json.ts';
import { ChainStore } from './store.ts';
import { UpdatePool } from './update-pool.ts';

/** Heights of the aggregation blocks (genesis excluded), by how their aggregation was checked. */
export interface AggregationCheckReport {
  /** The aggregator the chain's rules name, or null if this build does not know it (nothing recomputed). */
  aggregator: string | null;
  recomputed: number[];
  acceptedOnWork: number[];
  checkedOnArrival: number[];
}

export interface VerifyReport {
  valid: boolean;
  networkId?: string;
  genesis?: string;
  height: number;
  tip?: string;
  blocks: number;
  records: number;
  aggregations: number;
  work?: string;
  balances?: Record<string, string>;
  aggregationCheck?: AggregationCheckReport;
  /** The miner's update pool beside the chain (null: none there, e.g. a copied-out chain). */
  pool?: { entries: number; payloads: number } | null;
  error?: { code: string; message: string; height?: number; hash?: string };
}

export interface VerifyOptions {
  /** The node's update pool (DATADIR/updates): checked too (every entry decodes, every payload
   * hashes to its digest; a damaged one makes the report invalid: POOL_CORRUPT), and its raw
   * updates are what aggregations are recomputed from. */
  poolDir?: string;
}

/** The chain store as the recomputation reads it, with rebuilt states kept in memory (verify writes nothing). */
function readOnlyChain(store: ChainStore): AggregationChain {
  const rebuilt = new Map<string, Uint8Array>();
  return {
    genesisHash: store.genesisHash,
    params: store.params,
    getBlock: (h) => store.getBlock(h),
    getState: (h) => store.getState(h),
    blocksWithModel: (m) => store.blocksWithModel(m),
    aggregatorState: async (h) => rebuilt.get(toHex(h)) ?? (await store.aggregatorState(h)),
    putAggregatorState: async (h, s) => void rebuilt.set(toHex(h), s),
  };
}

function poolSource(pool: UpdatePool): UpdateSource {
  return {
    get: async (clientId, digest) => {
      const e = pool.get(clientId, digest);
      const payload = e && (await pool.payload(clientId, digest));
      return payload && { payload, sampleCount: e.sampleCount, baseModelHash: e.baseModelHash };
    },
  };
}

/** A stored state against the recomputed one. A state stored before the recorded claims were
 * kept lists its pending records as [client, digest] (chain/state-json.ts): those two are compared. */
export function sameState(stored: ChainState, recomputed: ChainState): boolean {
  const a = stateToJson(stored);
  const b = stateToJson(recomputed);
  // entry by entry: a node upgraded while records were pending stores both forms in one state
  b.pending = b.pending.map((p, i) => (a.pending[i]?.length === 2 ? [p[0], p[1]] : p));
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The aggregator the genesis commits to (ChainParams.rules), if this build has it. */
function recomputerOf(rules: string, pool: UpdatePool | undefined): { name: string | null; aggregation?: ChainAggregation } {
  let config: AggregationConfig;
  try {
    config = aggregationConfigOfRules(rules);
    const aggregator = aggregatorOf(config);
    return { name: config.aggregator, aggregation: pool && new ChainAggregation({ engine: new InThreadAggregationEngine(aggregator), updates: poolSource(pool) }) };
  } catch {
    return { name: null };
  }
}

export async function verifyChain(datadir: string, signatures: SignatureCheck, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const report: VerifyReport = { valid: false, height: -1, blocks: 0, records: 0, aggregations: 0 };
  let store: ChainStore;
  try {
    store = await ChainStore.open({ datadir, signatures, readOnly: true });
  } catch (e) {
    report.error = { code: e instanceof BflError ? e.code : ErrorCode.STORE_CORRUPT, message: (e as Error).message };
    return report;
  }
  let pool: UpdatePool | undefined;
  let poolError: BflError | undefined;
  if (opts.poolDir && existsSync(opts.poolDir)) {
    try {
      pool = await UpdatePool.open(opts.poolDir, { readOnly: true });
    } catch (e) {
      poolError = e instanceof BflError ? e : damagedError('pool', opts.poolDir, (e as Error).message);
    }
  }
  const recompute = recomputerOf(store.params.rules, pool);
  const check: AggregationCheckReport = { aggregator: recompute.name, recomputed: [], acceptedOnWork: [], checkedOnArrival: [] };
  const chain = readOnlyChain(store);
  let height = 0;
  let hash: string | undefined;
  try {
    report.networkId = store.params.networkId;
    report.genesis = toHex(store.genesisHash);
    const corrupt = (msg: string): never => {
      throw new BflError(ErrorCode.STORE_CORRUPT, msg);
    };
    const view = new MemoryChainView();
    const g = await store.blockAt(0);
    if (!g || toHex(blockHash(g.header)) !== report.genesis) corrupt('genesis block missing or not the configured genesis');
    let state: ChainState = genesisState(g!);
    view.add(g!, state);
    const ledger = new Map<string, bigint>();
    report.blocks = 1;
    report.aggregations = 1;
    const tip = store.tip;
    for (height = 1; height <= tip.height; height++) {
      hash = await store.hashAt(height);
      if (!hash) corrupt(`no canonical block at height ${height} (tip is at ${tip.height})`);
      const bytes = await store.getBlockBytes(hash!);
      if (!bytes) corrupt(`block ${hash} is in the height index but missing`);
      const block = decodeBlock(bytes!, store.params.maxBlockBytes);
      if (toHex(blockHash(block.header)) !== hash) corrupt(`stored block under ${hash} hashes to ${toHex(blockHash(block.header))}`);
      if (toHex(block.header.prevHash) !== toHex(state.hash)) corrupt(`block at height ${height} does not extend the block below it`);
      const v = await validateBlock(block, { params: store.params, membership: store.membership, view, signatures, now: Date.now() });
      const stored = await store.getState(v.state.hash);
      if (!stored || !sameState(stored, v.state)) corrupt(`stored state of block ${hash} differs from the recomputed one`);
      const agg = aggregationTxOf(block);
      if (agg) await checkAggregation(block, agg, state, height, hash!);
      for (const [id, amount] of v.credits) ledger.set(id, (ledger.get(id) ?? 0n) + amount);
      for (const tx of block.txs) {
        if (tx.type === 'record') report.records++;
        if (tx.type === 'aggregation') report.aggregations++;
      }
      state = v.state;
      view.add(block, state);
      report.blocks++;
    }
    hash = undefined;
    if (toHex(state.hash) !== toHex(tip.hash)) corrupt('the tip is not the last block of the height index');
    if (await store.hashAt(tip.height + 1)) corrupt(`the height index runs past the tip (height ${tip.height + 1})`);
    const storedBalances = await store.balances();
    const ids = new Set([...storedBalances.keys(), ...ledger.keys()]);
    for (const id of ids) {
      if ((storedBalances.get(id) ?? 0n) !== (ledger.get(id) ?? 0n)) corrupt(`reward ledger for ${id} is ${storedBalances.get(id) ?? 0n}, the chain says ${ledger.get(id) ?? 0n}`);
    }
    report.valid = true;
    report.height = tip.height;
    report.tip = toHex(tip.hash);
    report.work = tip.work.toString();
    report.balances = Object.fromEntries([...ledger].sort().map(([k, v]) => [k, v.toString()]));
    report.aggregationCheck = check;
  } catch (e) {
    report.height = height - 1;
    report.error = { code: e instanceof BflError ? e.code : 'INTERNAL', message: (e as Error).message, height, hash };
  } finally {
    await recompute.aggregation?.close();
    await store.close();
  }

  /** Recompute the aggregation of the block at `h` on `parent` if the pool holds its updates; else say how the node took it. */
  async function checkAggregation(block: Block, tx: AggregationTx, parent: ChainState, h: number, blockHex: string): Promise<void> {
    const records = block.txs.flatMap((t) => (t.type === 'record' ? [pendingOf(t)] : []));
    if (recompute.aggregation) {
      try {
        await recompute.aggregation.verify(tx, { parent, records: sortedPending([...parent.pending, ...records]) }, chain);
        check.recomputed.push(h);
        return;
      } catch (e) {
        if (!isBflError(e, ErrorCode.UNAVAILABLE)) throw e;
      }
    }
    if (await store.acceptedOnWork(blockHex)) check.acceptedOnWork.push(h);
    else check.checkedOnArrival.push(h);
  }

  if (report.valid && opts.poolDir) {
    try {
      if (poolError) throw poolError;
      report.pool = pool ? await checkPool(pool, opts.poolDir) : null;
    } catch (e) {
      report.valid = false;
      report.error = { code: e instanceof BflError ? e.code : ErrorCode.POOL_CORRUPT, message: (e as Error).message };
    }
  }
  await pool?.close();
  return report;
}

/** Every announcement decodes (UpdatePool.open), every payload has one and hashes to its digest. */
async function checkPool(pool: UpdatePool, dir: string): Promise<VerifyReport['pool']> {
  const stray = await pool.payloadsWithoutEntry();
  if (stray.length > 0) throw damagedError('pool', dir, `payload ${stray[0]} has no announcement`);
  let payloads = 0;
  for (const e of pool.live()) {
    const p = await pool.payload(e.clientId, e.updateDigest);
    if (!p || p.length !== e.payloadBytes || !equalBytes(sha256(p), e.updateDigest)) throw damagedError('pool', dir, `the payload of ${e.key} does not hash to its digest`);
    payloads++;
  }
  return { entries: pool.size, payloads };
}

