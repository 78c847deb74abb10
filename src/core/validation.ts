/**
 * Block validation (docs/architecture.md, "The path of a block"), cheapest check first: header fields and PoW (one hash),
 * structure and merkle root, admission, then the chain context (parent, height, replays,
 * base models, the ϕ rule), then signatures, then the aggregation recomputation. Each failure
 * is a BflError with its code. Pure: the chain is read through `ChainView`, time is a parameter.
 */
import { compareBytes, equalBytes, toHex } from './bytes.ts';
import { BLOCK_VERSION, blockHash, claimOfRecord, encodeBlockSigningMessage, encodeUpdateClaim, txId } from './encoding.ts';
import { SigningContext } from './contexts.ts';
import { BflError, ErrorCode } from './errors.ts';
import { sha256 } from './hash.ts';
import { checkUpdateFields } from './update.ts';
import { merkleRoot } from './merkle.ts';
import { type ChainParams, type Membership, contributorRole } from './params.ts';
import { blockWork, meetsTarget } from './pow.ts';
import type { AggregationTx, Block, CoinbaseTx, RecordTx } from './types.ts';
import { checkOneVotePerClient, distinctClients } from './votes.ts';


export interface PendingRecord {
  clientId: string;
  updateDigest: Uint8Array;
  /** The recorded claim's base model and sample count: what an aggregation uses, not the claim a
   * miner's pool happened to keep (a client may sign two claims for one payload, and two miners
   * would then weigh it differently). Absent only in chain states stored before they were kept
   * (chain/state-json.ts); the aggregation then reads them from the record transactions. */
  baseModelHash?: Uint8Array;
  sampleCount?: number;
}

/** A record's entry in the pending list. */
export function pendingOf(r: RecordTx): PendingRecord {
  return { clientId: r.clientId, updateDigest: r.updateDigest, baseModelHash: r.baseModelHash, sampleCount: r.sampleCount };
}

/** The chain state after a block: what the next block is validated against. */
export interface ChainState {
  hash: Uint8Array;
  parentHash: Uint8Array;
  height: number;
  timestamp: number;
  work: bigint; // cumulative
  rounds: number; // aggregation transactions so far, the genesis model counting as round 0
  anchor: Uint8Array; // hash of the newest aggregation block (the client's anchor)
  modelHash: Uint8Array; // newest global model
  pending: PendingRecord[]; // recorded since the anchor, not aggregated yet, in record order
}

export interface ChainView {
  getState(hash: Uint8Array): Promise<ChainState | undefined>;
  /** Stored blocks (any branch) that hold the record (clientId, digest). */
  blocksWithRecord(clientId: string, digest: Uint8Array): Promise<Uint8Array[]>;
  /** Stored aggregation blocks (any branch) whose global model hash is `modelHash`. */
  blocksWithModel(modelHash: Uint8Array): Promise<Uint8Array[]>;
  /** Is `ancestor` the block `of` or one of its ancestors? */
  isAncestor(ancestor: Uint8Array, of: Uint8Array): Promise<boolean>;
}

export interface SignatureCheck {
  verify(jobs: { publicKey: Uint8Array; message: Uint8Array; signature: Uint8Array; context: string }[]): Promise<boolean[]>;
}

/**
 * Recomputes an aggregation from the raw updates (the scoring module); throws BAD_AGGREGATION.
 * May return the aggregator's state after this aggregation (canonical bytes), which the store
 * keeps beside the block.
 */
export interface AggregationCheck {
  verify(tx: AggregationTx, input: { parent: ChainState; records: PendingRecord[] }): Promise<Uint8Array | void>;
}

export interface ValidationContext {
  params: ChainParams;
  membership: Membership;
  view: ChainView;
  signatures: SignatureCheck;
  now: number;
  aggregation?: AggregationCheck;
}

export interface ValidatedBlock {
  state: ChainState;
  /** Reward ledger changes this block makes (id → units). */
  credits: Map<string, bigint>;
  /** The aggregator's state after this block's aggregation, if the check computed one. */
  aggregatorState?: Uint8Array;
}

function fail(code: ErrorCode, msg: string, action: 'IGNORE' | 'REJECT' = 'REJECT'): never {
  throw new BflError(code, msg, { action });
}

interface Layout {
  aggregation?: AggregationTx;
  coinbase: CoinbaseTx;
  records: RecordTx[];
}

/** Transaction order: [aggregation] coinbase record*. */
function layout(block: Block): Layout {
  const txs = block.txs;
  let i = 0;
  let aggregation: AggregationTx | undefined;
  if (txs[i]?.type === 'aggregation') aggregation = txs[i++] as AggregationTx;
  const coinbase = txs[i++];
  if (!coinbase || coinbase.type !== 'coinbase') fail(ErrorCode.BAD_TX_ORDER, 'block must have a coinbase, after the aggregation transaction if any');
  const records: RecordTx[] = [];
  for (; i < txs.length; i++) {
    const tx = txs[i];
    if (tx.type !== 'record') fail(ErrorCode.BAD_TX_ORDER, `transaction ${i} is a ${tx.type}; only update records may follow the coinbase`);
    records.push(tx);
  }
  return { aggregation, coinbase, records };
}

/** Checks that need nothing but the block, the parameters and the clock. */
export function checkBlockStandalone(block: Block, ctx: Pick<ValidationContext, 'params' | 'membership' | 'now'>): Layout {
  const { header } = block;
  const { params, membership } = ctx;
  if (header.version !== BLOCK_VERSION) fail(ErrorCode.MALFORMED, `unsupported block version ${header.version}`);
  if (header.height === 0) fail(ErrorCode.BAD_GENESIS, 'a block at height 0 must be the configured genesis block');
  if (header.difficulty !== params.difficulty) fail(ErrorCode.BAD_DIFFICULTY, `difficulty ${header.difficulty}, network requires ${params.difficulty}`);
  const hash = blockHash(header);
  if (!meetsTarget(hash, header.difficulty)) fail(ErrorCode.BAD_POW, `hash ${toHex(hash)} does not meet difficulty ${header.difficulty}`);
  // Not the sender's fault for sure (clocks drift): IGNORE, the block may be fine later.
  if (header.timestamp > ctx.now + params.maxFutureMs) {
    fail(ErrorCode.TIMESTAMP_FUTURE, `timestamp ${header.timestamp} is ${header.timestamp - ctx.now} ms ahead of our clock (limit ${params.maxFutureMs})`, 'IGNORE');
  }
  if (!membership.ofRole(header.minerId, 'miner')) fail(ErrorCode.UNKNOWN_MINER, `miner ${header.minerId} is not an admitted miner`);
  const l = layout(block);
  if (!equalBytes(merkleRoot(block.txs.map(txId)), header.merkleRoot)) fail(ErrorCode.BAD_MERKLE_ROOT, 'merkle root does not match the transactions');
  if (l.coinbase.height !== header.height || l.coinbase.minerId !== header.minerId || l.coinbase.amount !== params.blockReward) {
    fail(ErrorCode.BAD_COINBASE, `coinbase must pay ${params.blockReward} to ${header.minerId} at height ${header.height}`);
  }
  const seen = new Set<string>();
  const contributor = contributorRole(params);
  for (const r of l.records) {
    if (!membership.ofRole(r.clientId, contributor)) fail(ErrorCode.UNKNOWN_CLIENT, `update record from ${r.clientId}, not an admitted ${contributor}${contributor === 'miner' ? ' (split learning: miners record body updates)' : ''}`);
    if (!membership.ofRole(r.minerId, 'miner')) fail(ErrorCode.UNKNOWN_MINER, `update record names unknown miner ${r.minerId}`);
    // the intake's sanity bounds, against the block's own clock: a record from after its block is the miner's fault
    checkUpdateFields(r, { now: header.timestamp, genesisTime: params.genesisTime, maxFutureMs: params.maxFutureMs, futureAction: 'REJECT' });
    const key = r.clientId + ':' + toHex(r.updateDigest);
    if (seen.has(key)) fail(ErrorCode.DUPLICATE_RECORD, `update ${key} recorded twice in the block`);
    seen.add(key);
  }
  checkOneVotePerClient([], l.records);
  return l;
}

/** Full validation of a block against its parent state; returns the state after it. */
export async function validateBlock(block: Block, ctx: ValidationContext): Promise<ValidatedBlock> {
  const { header } = block;
  const { params, view } = ctx;
  const l = checkBlockStandalone(block, ctx);
  const hash = blockHash(header);

  const parent = await view.getState(header.prevHash);
  if (!parent) fail(ErrorCode.UNKNOWN_PARENT, `parent ${toHex(header.prevHash)} is unknown`, 'IGNORE');
  if (header.height !== parent.height + 1) fail(ErrorCode.BAD_HEIGHT, `height ${header.height}, parent is at ${parent.height}`);
  if (header.timestamp < parent.timestamp) fail(ErrorCode.TIMESTAMP_BEFORE_PARENT, `timestamp ${header.timestamp} is before the parent's ${parent.timestamp}`);

  for (const r of l.records) {
    for (const b of await view.blocksWithRecord(r.clientId, r.updateDigest)) {
      if (await view.isAncestor(b, parent.hash)) fail(ErrorCode.DUPLICATE_RECORD, `update ${r.clientId}:${toHex(r.updateDigest)} is already recorded in block ${toHex(b)}`);
    }
    let known = false;
    for (const b of await view.blocksWithModel(r.baseModelHash)) {
      if (await view.isAncestor(b, parent.hash)) {
        known = true;
        break;
      }
    }
    if (!known) fail(ErrorCode.UNKNOWN_BASE_MODEL, `update ${toHex(r.updateDigest)} was trained on model ${toHex(r.baseModelHash)}, not a global model of this chain`);
  }

  // one vote per client per aggregation (core/votes.ts), so the ϕ rule counts clients
  checkOneVotePerClient(parent.pending, l.records);
  const pending: PendingRecord[] = [...parent.pending, ...l.records.map(pendingOf)];
  const voters = distinctClients(pending);
  const mustAggregate = voters >= params.phi;
  if (mustAggregate && !l.aggregation) fail(ErrorCode.AGGREGATION_REQUIRED, `${voters} clients with unaggregated updates reach ϕ=${params.phi}: the block must aggregate`);
  if (!mustAggregate && l.aggregation) fail(ErrorCode.UNEXPECTED_AGGREGATION, `only ${voters} clients with unaggregated updates, below ϕ=${params.phi}`);
  if (l.aggregation) checkAggregationShape(l.aggregation, parent, pending, params);

  // Signatures: the most expensive check before the aggregation itself.
  const jobs = [
    {
      publicKey: ctx.membership.get(header.minerId)!.publicKey,
      message: encodeBlockSigningMessage(params.networkId, hash),
      signature: block.signature,
      context: SigningContext.block,
    },
    ...l.records.map((r) => ({
      publicKey: ctx.membership.get(r.clientId)!.publicKey,
      message: encodeUpdateClaim(claimOfRecord(params.networkId, r)),
      signature: r.signature,
      context: SigningContext.update,
    })),
  ];
  const ok = await ctx.signatures.verify(jobs);
  const badAt = ok.indexOf(false);
  if (badAt === 0) fail(ErrorCode.BAD_SIGNATURE, `block signature of miner ${header.minerId} does not verify`);
  if (badAt > 0) fail(ErrorCode.BAD_SIGNATURE, `update record signature of client ${l.records[badAt - 1].clientId} does not verify`);

  const aggregatorState = l.aggregation && ctx.aggregation ? ((await ctx.aggregation.verify(l.aggregation, { parent, records: sortedPending(pending) })) ?? undefined) : undefined;

  const agg = l.aggregation;
  const state: ChainState = {
    hash,
    parentHash: parent.hash,
    height: header.height,
    timestamp: header.timestamp,
    work: parent.work + blockWork(header.difficulty),
    rounds: agg ? parent.rounds + 1 : parent.rounds,
    anchor: agg ? hash : parent.anchor,
    modelHash: agg ? agg.modelHash : parent.modelHash,
    pending: agg ? [] : pending,
  };
  return { state, credits: blockCredits(block), aggregatorState };
}

/** The canonical order of an aggregation's updates: by digest, then client id. */
export function sortedPending(p: PendingRecord[]): PendingRecord[] {
  return [...p].sort((a, b) => compareBytes(a.updateDigest, b.updateDigest) || (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0));
}

function checkAggregationShape(agg: AggregationTx, parent: ChainState, pending: PendingRecord[], params: ChainParams): void {
  const bad = (msg: string) => fail(ErrorCode.BAD_AGGREGATION, msg);
  if (agg.round !== parent.rounds) bad(`aggregation round ${agg.round}, expected ${parent.rounds}`);
  if (!equalBytes(agg.baseModelHash, parent.modelHash)) bad('aggregation does not build on the current global model');
  if (agg.model.length !== params.initialModel.length) bad(`model has ${agg.model.length} bytes, expected ${params.initialModel.length}`);
  if (!equalBytes(sha256(agg.model), agg.modelHash)) bad('modelHash is not the SHA-256 of the model');
  const expected = sortedPending(pending);
  if (agg.entries.length !== expected.length) bad(`aggregation lists ${agg.entries.length} updates, ${expected.length} are unaggregated`);
  for (let i = 0; i < expected.length; i++) {
    const e = agg.entries[i];
    if (e.clientId !== expected[i].clientId || !equalBytes(e.updateDigest, expected[i].updateDigest)) bad(`aggregation entry ${i} is not the unaggregated update ${toHex(expected[i].updateDigest)}`);
    if (!Number.isFinite(e.weight) || e.weight < 0 || e.weight > 1) bad(`aggregation entry ${i} has weight ${e.weight} outside [0, 1]`);
  }
  const clients = new Set(agg.entries.map((e) => e.clientId));
  let total = 0n;
  for (let i = 0; i < agg.rewards.length; i++) {
    const r = agg.rewards[i];
    if (i > 0 && !(agg.rewards[i - 1].id < r.id)) bad('rewards must be sorted by id without repeats');
    if (!clients.has(r.id)) bad(`reward to ${r.id}, who has no update in this aggregation`);
    total += r.amount;
  }
  if (total > params.baseReward) bad(`rewards total ${total} exceeds the base reward ${params.baseReward}`);
}

/** Ledger credits of a block: the coinbase to its miner, aggregation rewards to clients. */
export function blockCredits(block: Block): Map<string, bigint> {
  const credits = new Map<string, bigint>();
  const add = (id: string, amount: bigint) => credits.set(id, (credits.get(id) ?? 0n) + amount);
  for (const tx of block.txs) {
    if (tx.type === 'coinbase') add(tx.minerId, tx.amount);
    else if (tx.type === 'aggregation') for (const r of tx.rewards) add(r.id, r.amount);
  }
  return credits;
}

export function genesisState(block: Block): ChainState {
  const agg = block.txs[0] as AggregationTx;
  const hash = blockHash(block.header);
  return { hash, parentHash: block.header.prevHash, height: 0, timestamp: block.header.timestamp, work: 0n, rounds: 1, anchor: hash, modelHash: agg.modelHash, pending: [] };
}
