/**
 * Wire messages, in the same canonical codec as blocks (core/bytes.ts): every decoder checks
 * lengths before it reads and refuses trailing bytes, so malformed input is a MALFORMED error.
 * Gossip carries only the small ones (update and block announcements); payloads are pulled.
 * The update codec itself (announcements, signed updates, payloads) is core/update.ts: the
 * chain's update pool persists it too.
 */
import { Reader, Writer, equalBytes } from '../core/bytes.ts';
import { MAX_SIGNATURE_BYTES, decodeHeader, encodeHeader } from '../core/encoding.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import { sha256 } from '../core/hash.ts';
import type { BlockHeader } from '../core/types.ts';
import { assertFinitePayload } from '../core/update.ts';

/** Block announcement (gossip): the header and the size of the body to pull. */
export interface BlockAnnouncement {
  header: BlockHeader;
  blockBytes: number;
}

export function encodeBlockAnnouncement(a: BlockAnnouncement): Uint8Array {
  return new Writer(200).bytes(encodeHeader(a.header)).u32(a.blockBytes).finish();
}

export function decodeBlockAnnouncement(bytes: Uint8Array): BlockAnnouncement {
  if (bytes.length > 512) throw new BflError(ErrorCode.OVERSIZED, `block announcement of ${bytes.length} bytes`);
  const r = new Reader(bytes, 'block announcement');
  const header = decodeHeader(r.bytes('header', 200));
  const blockBytes = r.u32('blockBytes');
  r.end();
  return { header, blockBytes };
}

/** A node's signed link between its member id (ML-DSA key) and its libp2p PeerId. */
export interface PeerRecord {
  memberId: string;
  peerId: string;
  signature: Uint8Array;
  /** A miner's current ML-KEM key: an encoded KemKeyAnnouncement with its own signature
   * (crypto/kem-keys.ts). Trailing and optional, so records without it still decode. */
  kem?: Uint8Array;
}

export function peerRecordMessage(networkId: string, memberId: string, peerId: string): Uint8Array {
  return new Writer(128).str(networkId).str(memberId).str(peerId).finish();
}

export function encodePeerRecord(p: PeerRecord): Uint8Array {
  const w = new Writer(2600).str(p.memberId).str(p.peerId).bytes(p.signature);
  if (p.kem) w.bytes(p.kem);
  return w.finish();
}

export function decodePeerRecord(bytes: Uint8Array): PeerRecord {
  if (bytes.length > 8192) throw new BflError(ErrorCode.OVERSIZED, `peer record of ${bytes.length} bytes`);
  const r = new Reader(bytes, 'peer record');
  const p: PeerRecord = { memberId: r.str('memberId'), peerId: r.str('peerId'), signature: r.bytes('signature', MAX_SIGNATURE_BYTES) };
  if (r.remaining > 0) p.kem = r.bytes('kem', 4096);
  r.end();
  return p;
}

/** Chain queries (clients and syncing miners). */
export type ChainRequest =
  | { kind: 'head' }
  | { kind: 'block'; hash: Uint8Array }
  | { kind: 'hashes'; from: number; count: number }
  | { kind: 'model-after'; anchor: Uint8Array }
  | { kind: 'balance'; id: string }
  | { kind: 'load' }
  /** The aggregator's state after an aggregation block (a syncing miner: issue 13, item 2). */
  | { kind: 'state'; hash: Uint8Array };

// append only: the index is the kind's byte on the wire
const CHAIN_KINDS = ['head', 'block', 'hashes', 'model-after', 'balance', 'load', 'state'] as const;

export function encodeChainRequest(q: ChainRequest): Uint8Array {
  const w = new Writer(64).u8(CHAIN_KINDS.indexOf(q.kind));
  if (q.kind === 'block' || q.kind === 'state') w.fixed(q.hash, 32);
  if (q.kind === 'hashes') w.u32(q.from).u16(q.count);
  if (q.kind === 'model-after') w.fixed(q.anchor, 32);
  if (q.kind === 'balance') w.str(q.id);
  return w.finish();
}

export function decodeChainRequest(bytes: Uint8Array): ChainRequest {
  const r = new Reader(bytes, 'chain request');
  const k = r.u8('kind');
  let q: ChainRequest;
  switch (CHAIN_KINDS[k]) {
    case 'head':
      q = { kind: 'head' };
      break;
    case 'block':
      q = { kind: 'block', hash: r.fixed(32, 'hash') };
      break;
    case 'hashes':
      q = { kind: 'hashes', from: r.u32('from'), count: r.u16('count') };
      break;
    case 'model-after':
      q = { kind: 'model-after', anchor: r.fixed(32, 'anchor') };
      break;
    case 'balance':
      q = { kind: 'balance', id: r.str('id') };
      break;
    case 'load':
      q = { kind: 'load' };
      break;
    case 'state':
      q = { kind: 'state', hash: r.fixed(32, 'hash') };
      break;
    default:
      throw new BflError(ErrorCode.MALFORMED, `chain request: unknown kind ${k}`);
  }
  r.end();
  return q;
}

export interface HeadInfo {
  height: number;
  hash: Uint8Array;
  work: bigint;
  rounds: number;
  anchor: Uint8Array;
  modelHash: Uint8Array;
}

export function encodeHead(h: HeadInfo): Uint8Array {
  return new Writer(128).u32(h.height).fixed(h.hash, 32).bytes(new TextEncoder().encode(h.work.toString())).u32(h.rounds).fixed(h.anchor, 32).fixed(h.modelHash, 32).finish();
}

export function decodeHead(bytes: Uint8Array): HeadInfo {
  const r = new Reader(bytes, 'head');
  const height = r.u32('height');
  const hash = r.fixed(32, 'hash');
  const workText = new TextDecoder().decode(r.bytes('work', 100));
  if (!/^\d+$/.test(workText)) throw new BflError(ErrorCode.MALFORMED, 'head: work is not a number');
  const h = { height, hash, work: BigInt(workText), rounds: r.u32('rounds'), anchor: r.fixed(32, 'anchor'), modelHash: r.fixed(32, 'modelHash') };
  r.end();
  return h;
}

/**
 * Response to load: what a miner announces of its load, for clients whose association policy
 * weighs it (issue 17): updates it holds but has not yet recorded in a block, and the distinct
 * clients that uploaded to it recently (the clients sharing its edge compute, eq. (7) of the
 * DT paper).
 */
export interface MinerLoad {
  pendingUpdates: number;
  clients: number;
}

export function encodeMinerLoad(l: MinerLoad): Uint8Array {
  return new Writer(8).u32(l.pendingUpdates).u32(l.clients).finish();
}

export function decodeMinerLoad(bytes: Uint8Array): MinerLoad {
  const r = new Reader(bytes, 'miner load');
  const l = { pendingUpdates: r.u32('pendingUpdates'), clients: r.u32('clients') };
  r.end();
  return l;
}

/** Response to model-after: the newest global model after the anchor, or nothing newer. */
export interface ModelAfter {
  newer: boolean;
  blockHash: Uint8Array;
  height: number;
  round: number;
  modelHash: Uint8Array;
  model: Uint8Array;
}

export function encodeModelAfter(m: ModelAfter): Uint8Array {
  return new Writer(m.model.length + 128).u8(m.newer ? 1 : 0).fixed(m.blockHash, 32).u32(m.height).u32(m.round).fixed(m.modelHash, 32).bytes(m.model).finish();
}

export function decodeModelAfter(bytes: Uint8Array, maxModelBytes: number): ModelAfter {
  const r = new Reader(bytes, 'model');
  const m = { newer: r.u8('newer') === 1, blockHash: r.fixed(32, 'blockHash'), height: r.u32('height'), round: r.u32('round'), modelHash: r.fixed(32, 'modelHash'), model: r.bytes('model', maxModelBytes) };
  r.end();
  if (m.newer && !equalBytes(sha256(m.model), m.modelHash)) throw new BflError(ErrorCode.MALFORMED, 'model does not hash to its modelHash');
  // a block's rules refuse such a model, but a client must not train on one a miner sends
  if (m.newer) assertFinitePayload(m.model);
  return m;
}

export function encodeHashes(hashes: Uint8Array[]): Uint8Array {
  const w = new Writer(hashes.length * 32 + 4).u32(hashes.length);
  for (const h of hashes) w.fixed(h, 32);
  return w.finish();
}

export function decodeHashes(bytes: Uint8Array): Uint8Array[] {
  const r = new Reader(bytes, 'hashes');
  const n = r.u32('count');
  if (n * 32 !== r.remaining) throw new BflError(ErrorCode.MALFORMED, 'hashes: count does not match the bytes');
  const out = [];
  for (let i = 0; i < n; i++) out.push(r.fixed(32, 'hash'));
  return out;
}
