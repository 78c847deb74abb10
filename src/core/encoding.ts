/**
 * Canonical binary encoding of headers, transactions and blocks (golden vectors in
 * test/vectors/encoding.json pin it). One value, one byte string: fixed field order, big-endian
 * integers, length prefixes, no optional fields, no trailing bytes.
 */
import { Reader, Writer, assertId } from './bytes.ts';
import { BflError, ErrorCode } from './errors.ts';
import { sha256 } from './hash.ts';
import type { AggregationTx, Block, BlockHeader, Tx, UpdateClaim } from './types.ts';

export const BLOCK_VERSION = 1;

const TX_GENESIS = 0;
const TX_COINBASE = 1;
const TX_RECORD = 2;
const TX_AGGREGATION = 3;

/** ML-DSA-87 signatures are 4627 bytes; anything longer is not a signature of ours. */
export const MAX_SIGNATURE_BYTES = 4627;
/** Bounds on list lengths inside one transaction, checked before allocation. */
export const MAX_ENTRIES = 100_000;

export function encodeHeaderPrefix(h: BlockHeader): Uint8Array {
  return headerWriter(h).finish();
}

function headerWriter(h: BlockHeader): Writer {
  return new Writer(128)
    .u16(h.version)
    .u32(h.height)
    .fixed(h.prevHash, 32)
    .fixed(h.merkleRoot, 32)
    .u64(h.timestamp)
    .u64(h.difficulty)
    .str(assertId(h.minerId, 'minerId'));
}

/** The nonce is last so that mining re-hashes only the final SHA-256 block (core/pow.ts). */
export function encodeHeader(h: BlockHeader): Uint8Array {
  return headerWriter(h).u64(h.nonce).finish();
}

export function decodeHeader(bytes: Uint8Array): BlockHeader {
  const r = new Reader(bytes, 'block header');
  const h = readHeader(r);
  r.end();
  return h;
}

function readHeader(r: Reader): BlockHeader {
  const version = r.u16('version');
  const height = r.u32('height');
  const prevHash = r.fixed(32, 'prevHash');
  const merkleRoot = r.fixed(32, 'merkleRoot');
  const timestamp = r.u64n('timestamp');
  const difficulty = r.u64('difficulty');
  const minerId = checkedId(r.str('minerId'), 'minerId');
  const nonce = r.u64n('nonce');
  return { version, height, prevHash, merkleRoot, timestamp, difficulty, minerId, nonce };
}

/** An id read from untrusted bytes: MALFORMED (not a RangeError) when it breaks the pattern. */
export function checkedId(id: string, what: string): string {
  try {
    return assertId(id, what);
  } catch (e) {
    throw new BflError(ErrorCode.MALFORMED, (e as Error).message);
  }
}

export function blockHash(h: BlockHeader): Uint8Array {
  return sha256(encodeHeader(h));
}

export function encodeTx(tx: Tx): Uint8Array {
  const w = new Writer(256);
  switch (tx.type) {
    case 'genesis':
      w.u8(TX_GENESIS).str(tx.networkId).fixed(tx.paramsDigest, 32);
      break;
    case 'coinbase':
      w.u8(TX_COINBASE).u32(tx.height).str(assertId(tx.minerId, 'minerId')).u64(tx.amount);
      break;
    case 'record':
      w.u8(TX_RECORD)
        .str(assertId(tx.clientId, 'clientId'))
        .str(assertId(tx.minerId, 'minerId'))
        .fixed(tx.updateDigest, 32)
        .fixed(tx.baseModelHash, 32)
        .u32(tx.sampleCount)
        .u64(tx.createdAt)
        .bytes(tx.signature);
      break;
    case 'aggregation':
      encodeAggregation(w, tx);
      break;
  }
  return w.finish();
}

function encodeAggregation(w: Writer, tx: AggregationTx): void {
  w.u8(TX_AGGREGATION).u32(tx.round).fixed(tx.baseModelHash, 32).fixed(tx.modelHash, 32).bytes(tx.model);
  w.u32(tx.entries.length);
  for (const e of tx.entries) {
    w.str(assertId(e.clientId, 'clientId')).fixed(e.updateDigest, 32).u8(e.high ? 1 : 0).f64(e.weight);
  }
  w.u32(tx.rewards.length);
  for (const r of tx.rewards) w.str(assertId(r.id, 'reward id')).u64(r.amount);
  w.fixed(tx.stateHash, 32);
}

export function decodeTx(bytes: Uint8Array): Tx {
  const r = new Reader(bytes, 'transaction');
  const tx = readTx(r);
  r.end();
  return tx;
}

function readTx(r: Reader): Tx {
  const kind = r.u8('tx type');
  switch (kind) {
    case TX_GENESIS:
      return { type: 'genesis', networkId: r.str('networkId'), paramsDigest: r.fixed(32, 'paramsDigest') };
    case TX_COINBASE:
      return { type: 'coinbase', height: r.u32('height'), minerId: checkedId(r.str('minerId'), 'minerId'), amount: r.u64('amount') };
    case TX_RECORD:
      return {
        type: 'record',
        clientId: checkedId(r.str('clientId'), 'clientId'),
        minerId: checkedId(r.str('minerId'), 'minerId'),
        updateDigest: r.fixed(32, 'updateDigest'),
        baseModelHash: r.fixed(32, 'baseModelHash'),
        sampleCount: r.u32('sampleCount'),
        createdAt: r.u64n('createdAt'),
        signature: r.bytes('signature', MAX_SIGNATURE_BYTES),
      };
    case TX_AGGREGATION: {
      const round = r.u32('round');
      const baseModelHash = r.fixed(32, 'baseModelHash');
      const modelHash = r.fixed(32, 'modelHash');
      const model = r.bytes('model');
      const nEntries = r.u32('entry count');
      // Each entry takes at least 42 bytes; refuse counts the remaining bytes cannot hold.
      if (nEntries > MAX_ENTRIES || nEntries * 42 > r.remaining) throw new BflError(ErrorCode.MALFORMED, `aggregation: bad entry count ${nEntries}`);
      const entries = [];
      for (let i = 0; i < nEntries; i++) {
        const clientId = checkedId(r.str('entry clientId'), 'clientId');
        const updateDigest = r.fixed(32, 'entry digest');
        const flag = r.u8('entry label');
        if (flag > 1) throw new BflError(ErrorCode.MALFORMED, `aggregation: entry label must be 0 or 1, got ${flag}`);
        entries.push({ clientId, updateDigest, high: flag === 1, weight: r.f64('entry weight') });
      }
      const nRewards = r.u32('reward count');
      if (nRewards > MAX_ENTRIES || nRewards * 10 > r.remaining) throw new BflError(ErrorCode.MALFORMED, `aggregation: bad reward count ${nRewards}`);
      const rewards = [];
      for (let i = 0; i < nRewards; i++) rewards.push({ id: checkedId(r.str('reward id'), 'reward id'), amount: r.u64('reward amount') });
      return { type: 'aggregation', round, baseModelHash, modelHash, model, entries, rewards, stateHash: r.fixed(32, 'stateHash') };
    }
    default:
      throw new BflError(ErrorCode.MALFORMED, `transaction: unknown type ${kind}`);
  }
}

export function txId(tx: Tx): Uint8Array {
  return sha256(encodeTx(tx));
}

export function encodeBlock(b: Block): Uint8Array {
  const w = new Writer(1024).bytes(encodeHeader(b.header)).bytes(b.signature).u32(b.txs.length);
  for (const tx of b.txs) w.bytes(encodeTx(tx));
  return w.finish();
}

/**
 * Decode an untrusted block. `maxBytes` is checked before anything is parsed: an oversized
 * block is OVERSIZED, anything that does not parse is MALFORMED.
 */
export function decodeBlock(bytes: Uint8Array, maxBytes = Number.MAX_SAFE_INTEGER): Block {
  if (bytes.length > maxBytes) throw new BflError(ErrorCode.OVERSIZED, `block is ${bytes.length} bytes, limit ${maxBytes}`);
  const r = new Reader(bytes, 'block');
  const header = decodeHeader(r.bytes('header', 200));
  const signature = r.bytes('signature', MAX_SIGNATURE_BYTES);
  const n = r.u32('tx count');
  if (n * 4 > r.remaining) throw new BflError(ErrorCode.MALFORMED, `block: tx count ${n} exceeds the bytes left`);
  const txs: Tx[] = [];
  for (let i = 0; i < n; i++) txs.push(decodeTx(r.bytes(`tx ${i}`)));
  r.end();
  return { header, signature, txs };
}

export function encodeUpdateClaim(c: UpdateClaim): Uint8Array {
  return new Writer(160)
    .str(c.networkId)
    .str(assertId(c.clientId, 'clientId'))
    .fixed(c.baseModelHash, 32)
    .fixed(c.updateDigest, 32)
    .u32(c.sampleCount)
    .u64(c.createdAt)
    .finish();
}

export function claimOfRecord(networkId: string, r: { clientId: string; baseModelHash: Uint8Array; updateDigest: Uint8Array; sampleCount: number; createdAt: number }): UpdateClaim {
  return { networkId, clientId: r.clientId, baseModelHash: r.baseModelHash, updateDigest: r.updateDigest, sampleCount: r.sampleCount, createdAt: r.createdAt };
}

/** What a miner signs for its block: the network and the block hash. */
export function encodeBlockSigningMessage(networkId: string, hash: Uint8Array): Uint8Array {
  return new Writer(64).str(networkId).fixed(hash, 32).finish();
}
