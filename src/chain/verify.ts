/**
 * `bfl-node chain verify`: re-validate a stored chain from genesis. Every canonical block is
 * decoded, checked against its height-index entry and validated by the same rules as a block
 * from the wire (signatures included), against states recomputed from scratch; the stored
 * states, the tip and the reward ledger must equal the recomputed ones.
 *
 * Not re-done here: the aggregation recomputation (it needs the raw updates, which by design
 * are not on chain); the structural aggregation rules are checked.
 */
import { existsSync } from 'node:fs';
import { equalBytes, toHex } from '../core/bytes.ts';
import { sha256 } from '../core/hash.ts';
import { blockHash, decodeBlock } from '../core/encoding.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import { type SignatureCheck, genesisState, validateBlock } from '../core/validation.ts';
import { MemoryChainView } from './memory-view.ts';
import { damagedError } from './leveldb.ts';
import { stateToJson } from './state-json.ts';
import { ChainStore } from './store.ts';
import { UpdatePool } from './update-pool.ts';

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
  /** The miner's update pool beside the chain (null: none there, e.g. a copied-out chain). */
  pool?: { entries: number; payloads: number } | null;
  error?: { code: string; message: string; height?: number; hash?: string };
}

export interface VerifyOptions {
  /** The node's update pool (DATADIR/updates): checked too (every entry decodes, every payload
   * hashes to its digest), and a damaged one makes the report invalid (POOL_CORRUPT). */
  poolDir?: string;
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
    let state = genesisState(g!);
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
      if (!stored || JSON.stringify(stateToJson(stored)) !== JSON.stringify(stateToJson(v.state))) corrupt(`stored state of block ${hash} differs from the recomputed one`);
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
    const stored = await store.balances();
    const ids = new Set([...stored.keys(), ...ledger.keys()]);
    for (const id of ids) {
      if ((stored.get(id) ?? 0n) !== (ledger.get(id) ?? 0n)) corrupt(`reward ledger for ${id} is ${stored.get(id) ?? 0n}, the chain says ${ledger.get(id) ?? 0n}`);
    }
    report.valid = true;
    report.height = tip.height;
    report.tip = toHex(tip.hash);
    report.work = tip.work.toString();
    report.balances = Object.fromEntries([...ledger].sort().map(([k, v]) => [k, v.toString()]));
  } catch (e) {
    report.height = height - 1;
    report.error = { code: e instanceof BflError ? e.code : 'INTERNAL', message: (e as Error).message, height, hash };
  } finally {
    await store.close();
  }
  if (report.valid && opts.poolDir) {
    try {
      report.pool = await checkPool(opts.poolDir);
    } catch (e) {
      report.valid = false;
      report.error = { code: e instanceof BflError ? e.code : ErrorCode.POOL_CORRUPT, message: (e as Error).message };
    }
  }
  return report;
}

/** Every announcement decodes (UpdatePool.open), every payload has one and hashes to its digest. */
async function checkPool(dir: string): Promise<VerifyReport['pool']> {
  if (!existsSync(dir)) return null;
  const pool = await UpdatePool.open(dir, { readOnly: true });
  try {
    const stray = await pool.payloadsWithoutEntry();
    if (stray.length > 0) throw damagedError('pool', dir, `payload ${stray[0]} has no announcement`);
    let payloads = 0;
    for (const e of pool.all()) {
      if (!e.hasPayload) continue;
      const p = await pool.payload(e.clientId, e.updateDigest);
      if (!p || p.length !== e.payloadBytes || !equalBytes(sha256(p), e.updateDigest)) throw damagedError('pool', dir, `the payload of ${e.key} does not hash to its digest`);
      payloads++;
    }
    return { entries: pool.size, payloads };
  } finally {
    await pool.close();
  }
}

