/**
 * The split-learning protocol (issue 19; the cloud-edge-client paper's Algorithm 1, lines 11-14):
 * a client sends its miner a signed batch of cut-layer activations ("smashed data") and their
 * labels; the miner trains its body on them and answers with d loss / d activations, which the
 * client back-propagates through its head. One request/response per batch, on a protocol of its
 * own, between one client and one miner: batches are never gossiped, relayed or put on chain.
 *
 * Canonical codec as everywhere (core/bytes.ts): lengths checked before reading, trailing bytes
 * refused. Activations and gradients are float32 little-endian, labels one byte per sample.
 * The client signs (ML-DSA, context `bfl/split-batch/v1`) a claim that binds the network, both
 * ends, the createdAt nonce and the digests of activations and labels.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { Reader, Writer, assertId } from '../core/bytes.ts';
import { MAX_SIGNATURE_BYTES, checkedId } from '../core/encoding.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import { sha256 } from '../core/hash.ts';

export const splitProtocol = (networkId: string) => `/bfl/${networkId}/split/1.0.0`;
/** Head shares (eq. 4, for clients who opt in): one request per local round. */
export const splitHeadProtocol = (networkId: string) => `/bfl/${networkId}/split-head/1.0.0`;

/**
 * Sealed forms (`p2p.sealUpdates`, as for updates: net/sealed-updates.ts): the request is an
 * ML-KEM envelope to the miner's key (crypto/seal.ts, context `bfl/seal/split/v1`, the network
 * and miner as associated data) of a fresh 32-byte answer key ‖ the clear request; the answer is
 * AES-256-GCM under that key. So smashed data, labels, head shares and the cut gradients are
 * as secret as updates: reading them means breaking ML-KEM as well as the Noise channel.
 */
export const sealedSplitProtocols = (networkId: string) => ({
  batch: `/bfl/${networkId}/split-sealed/1.0.0`,
  head: `/bfl/${networkId}/split-head-sealed/1.0.0`,
});

/** What a sealed split request binds as associated data: the network and the miner it is for. */
export function splitSealAd(networkId: string, minerId: string): Uint8Array {
  return new Writer(64).str(networkId).str(minerId).finish();
}

export const ANSWER_KEY_BYTES = 32;
const ANSWER_AD = new TextEncoder().encode('bfl/split-answer/v1');

/** Encrypt an answer under the request's one-time key (so a zero nonce is safe). */
export function sealAnswer(key: Uint8Array, answer: Uint8Array): Uint8Array {
  const c = createCipheriv('aes-256-gcm', key, new Uint8Array(12), { authTagLength: 16 });
  c.setAAD(ANSWER_AD);
  const body = Buffer.concat([c.update(answer), c.final(), c.getAuthTag()]);
  return new Uint8Array(body.buffer, body.byteOffset, body.length);
}

export function openAnswer(key: Uint8Array, sealed: Uint8Array): Uint8Array {
  if (sealed.length < 16) throw new BflError(ErrorCode.SEAL_TRUNCATED, `sealed split answer of ${sealed.length} bytes`);
  const d = createDecipheriv('aes-256-gcm', key, new Uint8Array(12), { authTagLength: 16 });
  d.setAAD(ANSWER_AD);
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  try {
    const body = Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()]);
    return new Uint8Array(body.buffer, body.byteOffset, body.length);
  } catch {
    throw new BflError(ErrorCode.SEAL_TAMPERED, 'sealed split answer does not authenticate');
  }
}

export interface SplitBatch {
  clientId: string;
  /** The miner the batch is for: a batch signed for one miner cannot be replayed to another. */
  minerId: string;
  /** ms; also the replay nonce: strictly increasing per client (node/split-miner.ts). */
  createdAt: number;
  /** Samples in the batch. */
  count: number;
  /** Floats per sample at the cut (the network's cut width). */
  width: number;
  /** count × width float32 LE. */
  activations: Uint8Array;
  /** count class indices. */
  labels: Uint8Array;
  signature: Uint8Array;
}

/** The bytes a client signs for a batch. */
export function encodeBatchClaim(networkId: string, b: Omit<SplitBatch, 'signature'>): Uint8Array {
  return new Writer(160)
    .str(networkId)
    .str(assertId(b.clientId, 'clientId'))
    .str(assertId(b.minerId, 'minerId'))
    .u64(b.createdAt)
    .u32(b.count)
    .u32(b.width)
    .fixed(sha256(b.activations), 32)
    .fixed(sha256(b.labels), 32)
    .finish();
}

export function encodeBatch(b: SplitBatch): Uint8Array {
  return new Writer(b.activations.length + b.labels.length + b.signature.length + 128)
    .str(assertId(b.clientId, 'clientId'))
    .str(assertId(b.minerId, 'minerId'))
    .u64(b.createdAt)
    .u32(b.count)
    .u32(b.width)
    .bytes(b.activations)
    .bytes(b.labels)
    .bytes(b.signature)
    .finish();
}

/** Largest encoded batch of `maxBatch` samples of `width` floats (the request limit). */
export function maxBatchBytes(maxBatch: number, width: number): number {
  return maxBatch * (width * 4 + 1) + MAX_SIGNATURE_BYTES + 256;
}

/**
 * Decode a batch: size, then shape (count within maxBatch, the network's width, lengths that
 * match count and width). Signature, labels' range, finiteness and replay are the miner's checks.
 */
export function decodeBatch(bytes: Uint8Array, o: { maxBatch: number; width: number }): SplitBatch {
  const limit = maxBatchBytes(o.maxBatch, o.width);
  if (bytes.length > limit) throw new BflError(ErrorCode.OVERSIZED, `split batch of ${bytes.length} bytes, limit ${limit} (learning.split.maxBatch ${o.maxBatch} samples of ${o.width} activations)`);
  const r = new Reader(bytes, 'split batch');
  const clientId = checkedId(r.str('clientId'), 'clientId');
  const minerId = checkedId(r.str('minerId'), 'minerId');
  const createdAt = r.u64n('createdAt');
  const count = r.u32('count');
  const width = r.u32('width');
  if (count < 1 || count > o.maxBatch) throw new BflError(ErrorCode.OVERSIZED, `split batch of ${count} samples; a batch holds 1 to ${o.maxBatch} (learning.split.maxBatch)`);
  if (width !== o.width) throw new BflError(ErrorCode.MALFORMED, `split batch of ${width} activations per sample, the network's cut has ${o.width} (learning.split.cut)`);
  const activations = r.bytes('activations', count * width * 4);
  const labels = r.bytes('labels', count);
  const signature = r.bytes('signature', MAX_SIGNATURE_BYTES);
  r.end();
  if (activations.length !== count * width * 4) throw new BflError(ErrorCode.MALFORMED, `split batch holds ${activations.length} bytes of activations, ${count} × ${width} float32 need ${count * width * 4}`);
  if (labels.length !== count) throw new BflError(ErrorCode.MALFORMED, `split batch holds ${labels.length} labels for ${count} samples`);
  return { clientId, minerId, createdAt, count, width, activations, labels, signature };
}

/** The miner's answer: d loss / d activations (count × width float32 LE) and the batch loss. */
export interface SplitAnswer {
  loss: number;
  gradients: Uint8Array;
}

export function encodeAnswer(a: SplitAnswer): Uint8Array {
  return new Writer(a.gradients.length + 16).f64(a.loss).bytes(a.gradients).finish();
}

export function decodeAnswer(bytes: Uint8Array, expectedFloats: number): SplitAnswer {
  const r = new Reader(bytes, 'split answer');
  const loss = r.f64('loss');
  const gradients = r.bytes('gradients', expectedFloats * 4);
  r.end();
  if (gradients.length !== expectedFloats * 4) throw new BflError(ErrorCode.MALFORMED, `split answer holds ${gradients.length / 4} gradients, the batch has ${expectedFloats} activations`);
  return { loss, gradients };
}

/** Copy float32 LE bytes (possibly unaligned) into a fresh Float32Array. */
export function bytesToFloats(b: Uint8Array): Float32Array {
  const copy = new Uint8Array(b.length);
  copy.set(b);
  return new Float32Array(copy.buffer, 0, copy.length / 4);
}

export function floatsToBytes(f: Float32Array): Uint8Array {
  return new Uint8Array(f.buffer.slice(f.byteOffset, f.byteOffset + f.byteLength));
}

/**
 * A client's head update for head aggregation (the paper's eq. 4): its head after a local round
 * minus the global head it started from, clipped and noised by the client (node/split-client.ts)
 * before it is signed, so the miner never sees the exact head.
 */
export interface HeadShare {
  clientId: string;
  minerId: string;
  /** The global model whose head the client started from. */
  baseModelHash: Uint8Array;
  createdAt: number;
  /** Samples of the round (eq. 4's weight D_n). */
  samples: number;
  /** Head parameters, float32 LE. */
  delta: Uint8Array;
  signature: Uint8Array;
}

export function encodeHeadClaim(networkId: string, h: Omit<HeadShare, 'signature'>): Uint8Array {
  return new Writer(160)
    .str(networkId)
    .str(assertId(h.clientId, 'clientId'))
    .str(assertId(h.minerId, 'minerId'))
    .fixed(h.baseModelHash, 32)
    .u64(h.createdAt)
    .u32(h.samples)
    .fixed(sha256(h.delta), 32)
    .finish();
}

export function encodeHeadShare(h: HeadShare): Uint8Array {
  return new Writer(h.delta.length + h.signature.length + 160)
    .str(assertId(h.clientId, 'clientId'))
    .str(assertId(h.minerId, 'minerId'))
    .fixed(h.baseModelHash, 32)
    .u64(h.createdAt)
    .u32(h.samples)
    .bytes(h.delta)
    .bytes(h.signature)
    .finish();
}

export function maxHeadShareBytes(headParams: number): number {
  return headParams * 4 + MAX_SIGNATURE_BYTES + 256;
}

export function decodeHeadShare(bytes: Uint8Array, headParams: number): HeadShare {
  const limit = maxHeadShareBytes(headParams);
  if (bytes.length > limit) throw new BflError(ErrorCode.OVERSIZED, `head share of ${bytes.length} bytes, limit ${limit}`);
  const r = new Reader(bytes, 'head share');
  const h = {
    clientId: checkedId(r.str('clientId'), 'clientId'),
    minerId: checkedId(r.str('minerId'), 'minerId'),
    baseModelHash: r.fixed(32, 'baseModelHash'),
    createdAt: r.u64n('createdAt'),
    samples: r.u32('samples'),
    delta: r.bytes('delta', headParams * 4),
    signature: r.bytes('signature', MAX_SIGNATURE_BYTES),
  };
  r.end();
  if (h.delta.length !== headParams * 4) throw new BflError(ErrorCode.MALFORMED, `head share of ${h.delta.length / 4} parameters, the head has ${headParams} (learning.split.cut)`);
  return h;
}
