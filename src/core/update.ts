/**
 * A client's update in the canonical codec (core/bytes.ts): the announcement (everything but
 * the parameters, signed by the client through its claim, core/encoding.ts), the signed update
 * (announcement + payload) and the payload itself, Δ as float32 little-endian. Decoders check
 * lengths before they read and refuse trailing bytes (MALFORMED). Used on the wire (net/) and
 * by the miner's update pool (chain/), which persists announcements.
 */
import { Reader, Writer, assertId, equalBytes } from './bytes.ts';
import { MAX_SIGNATURE_BYTES, checkedId } from './encoding.ts';
import { BflError, ErrorCode } from './errors.ts';
import { sha256 } from './hash.ts';
import type { RecordTx } from './types.ts';

/** A client's update as announced: everything but the parameters. */
export interface UpdateAnnouncement {
  clientId: string;
  minerId: string; // the miner the client uploaded to
  baseModelHash: Uint8Array;
  updateDigest: Uint8Array; // SHA-256 of the payload
  sampleCount: number;
  createdAt: number;
  signature: Uint8Array; // client's ML-DSA signature over the claim
  payloadBytes: number;
}

/** The announcement plus the payload: Δ as float32 little-endian. */
export interface SignedUpdate extends UpdateAnnouncement {
  payload: Uint8Array;
}

function writeAnnouncement(w: Writer, a: UpdateAnnouncement): Writer {
  return w
    .str(assertId(a.clientId, 'clientId'))
    .str(assertId(a.minerId, 'minerId'))
    .fixed(a.baseModelHash, 32)
    .fixed(a.updateDigest, 32)
    .u32(a.sampleCount)
    .u64(a.createdAt)
    .bytes(a.signature)
    .u32(a.payloadBytes);
}

function readAnnouncement(r: Reader): UpdateAnnouncement {
  return {
    clientId: checkedId(r.str('clientId'), 'clientId'),
    minerId: checkedId(r.str('minerId'), 'minerId'),
    baseModelHash: r.fixed(32, 'baseModelHash'),
    updateDigest: r.fixed(32, 'updateDigest'),
    sampleCount: r.u32('sampleCount'),
    createdAt: r.u64n('createdAt'),
    signature: r.bytes('signature', MAX_SIGNATURE_BYTES),
    payloadBytes: r.u32('payloadBytes'),
  };
}

export function encodeAnnouncement(a: UpdateAnnouncement): Uint8Array {
  return writeAnnouncement(new Writer(2600), a).finish();
}

export function decodeAnnouncement(bytes: Uint8Array): UpdateAnnouncement {
  if (bytes.length > 8192) throw new BflError(ErrorCode.OVERSIZED, `update announcement of ${bytes.length} bytes`);
  const r = new Reader(bytes, 'update announcement');
  const a = readAnnouncement(r);
  r.end();
  return a;
}

export function encodeSignedUpdate(u: SignedUpdate): Uint8Array {
  return writeAnnouncement(new Writer(u.payload.length + 2700), { ...u, payloadBytes: u.payload.length }).bytes(u.payload).finish();
}

/**
 * Decode an uploaded or fetched update. Size first, then shape; the payload must hash to the
 * announced digest and be whole float32s.
 */
export function decodeSignedUpdate(bytes: Uint8Array, maxBytes: number): SignedUpdate {
  if (bytes.length > maxBytes + 8192) throw new BflError(ErrorCode.OVERSIZED, `update of ${bytes.length} bytes, limit ${maxBytes}`);
  const r = new Reader(bytes, 'signed update');
  const a = readAnnouncement(r);
  const payload = r.bytes('payload', maxBytes);
  r.end();
  if (payload.length !== a.payloadBytes) throw new BflError(ErrorCode.MALFORMED, `payload is ${payload.length} bytes, announced ${a.payloadBytes}`);
  if (payload.length % 4 !== 0) throw new BflError(ErrorCode.MALFORMED, 'payload is not a whole number of float32 values');
  if (!equalBytes(sha256(payload), a.updateDigest)) throw new BflError(ErrorCode.MALFORMED, 'payload does not hash to the update digest');
  assertFinitePayload(payload);
  return { ...a, payload };
}

const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/**
 * True if every float32 of `payload` (little-endian, aligned: byteOffset and length multiples of
 * 4, which the caller checks) is finite. For callers that scan a payload piece by piece as it is
 * decrypted (crypto/open-sealed.ts) and name the bad parameter with `assertFinitePayload` after.
 */
export function allFinite(payload: Uint8Array): boolean {
  if (!LITTLE_ENDIAN || payload.byteOffset % 4 !== 0 || payload.length % 4 !== 0) throw new Error('allFinite needs aligned little-endian float32 words');
  const w = new Uint32Array(payload.buffer, payload.byteOffset, payload.length / 4);
  // Branch-free, four words a step: an exponent of all ones plus 2^23 carries into bit 31
  // (and nothing else reaches it), so the OR of the sums has bit 31 set iff some value is
  // not finite; half the time of the loop that stopped at the first (issue 12).
  const EXP = 0x7f800000;
  const ONE = 0x00800000;
  let acc = 0;
  const end4 = w.length & ~3;
  let i = 0;
  for (; i < end4; i += 4) acc |= ((w[i] & EXP) + ONE) | ((w[i + 1] & EXP) + ONE) | ((w[i + 2] & EXP) + ONE) | ((w[i + 3] & EXP) + ONE);
  for (; i < w.length; i++) acc |= (w[i] & EXP) + ONE;
  return (acc & 0x80000000) === 0;
}

/**
 * Refuse NaN and ±Infinity (REJECT: a client's trainer never produces them honestly). They would
 * poison every aggregation rule (a NaN global model, a NaN reward weight that BigInt() throws on),
 * so they stop at decode, before anything reads the floats. Checked on the bit pattern (exponent
 * all ones) so the test is endian-explicit and needs no aligned copy.
 */
export function assertFinitePayload(payload: Uint8Array): void {
  // Fast path: whole little-endian words where the bytes are aligned (a 636 kB update takes a
  // quarter of the byte loop's time on the miner's event loop); it only finds the first bad
  // parameter, the byte loop below names it.
  if (LITTLE_ENDIAN && payload.byteOffset % 4 === 0 && payload.length % 4 === 0 && allFinite(payload)) return;
  for (let i = 3; i < payload.length; i += 4) {
    if ((payload[i] & 0x7f) === 0x7f && (payload[i - 1] & 0x80) !== 0) {
      const k = (i - 3) / 4;
      const what = Number.isNaN(new DataView(payload.buffer, payload.byteOffset + i - 3, 4).getFloat32(0, true)) ? 'NaN' : 'an infinity';
      throw new BflError(ErrorCode.NON_FINITE, `update parameter ${k} is ${what}; updates must hold finite float32 values (check the trainer for a diverged loss)`, { details: { index: k } });
    }
  }
}

/**
 * Most samples one update may claim. The sample count weights an update in FedAvg-style rules,
 * so 2^32 − 1 would take the whole aggregation. 10^6 is 10^4 times the paper's N = 100 samples
 * per local update and more than the whole MNIST training set (60,000): no honest client of
 * this network reaches it. (docs/decisions.md, "Sanity bounds at intake".)
 */
export const MAX_SAMPLE_COUNT = 1_000_000;

/**
 * Field sanity at intake (client uploads, announcements, fetched updates): sampleCount in
 * [1, MAX_SAMPLE_COUNT]; createdAt no earlier than the network's genesis less the allowed clock
 * skew (0 or a date before the network existed is a broken or lying client: REJECT), and no
 * further ahead of our clock than blocks may be (maxFutureMs; IGNORE as for blocks, since clocks
 * drift). Pure: the clock is a parameter. The block rules apply the same bounds to every record,
 * with the block's timestamp as the clock (core/validation.ts), so an update refused here can
 * never be one a valid block needs.
 */
export function checkUpdateFields(a: Pick<UpdateAnnouncement, 'clientId' | 'sampleCount' | 'createdAt'>, o: { now: number; genesisTime: number; maxFutureMs: number; futureAction?: 'IGNORE' | 'REJECT' }): void {
  if (a.sampleCount < 1 || a.sampleCount > MAX_SAMPLE_COUNT) {
    throw new BflError(ErrorCode.OUT_OF_RANGE, `update of ${a.clientId} claims ${a.sampleCount} samples; an update must have 1 to ${MAX_SAMPLE_COUNT}`);
  }
  if (a.createdAt > o.now + o.maxFutureMs) {
    throw new BflError(ErrorCode.TIMESTAMP_FUTURE, `update of ${a.clientId} was created at ${a.createdAt}, ${a.createdAt - o.now} ms ahead of our clock (limit ${o.maxFutureMs}); check the client's clock`, { action: o.futureAction ?? 'IGNORE' });
  }
  if (a.createdAt < o.genesisTime - o.maxFutureMs) {
    throw new BflError(ErrorCode.OUT_OF_RANGE, `update of ${a.clientId} was created at ${a.createdAt}, before the network's genesis (${o.genesisTime}); check the client's clock`);
  }
}

export function recordOf(a: UpdateAnnouncement): RecordTx {
  return {
    type: 'record',
    clientId: a.clientId,
    minerId: a.minerId,
    updateDigest: a.updateDigest,
    baseModelHash: a.baseModelHash,
    sampleCount: a.sampleCount,
    createdAt: a.createdAt,
    signature: a.signature,
  };
}

export function payloadToDelta(payload: Uint8Array): Float32Array {
  // Copy into a fresh buffer: the payload may sit at an unaligned offset of a larger buffer,
  // and a Node Buffer's slice() would be a view, not a copy.
  const copy = new Uint8Array(payload.length);
  copy.set(payload);
  return new Float32Array(copy.buffer, 0, copy.length / 4);
}

export function deltaToPayload(delta: Float32Array): Uint8Array {
  return new Uint8Array(delta.buffer.slice(delta.byteOffset, delta.byteOffset + delta.byteLength));
}
