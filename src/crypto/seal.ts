/**
 * Sealed payloads: a KEM-DEM envelope that only the holder of one ML-KEM-768 key can open
 * (docs/decisions.md, "Post-quantum confidentiality"). Shaped like HPKE base mode (RFC 9180)
 * with ML-KEM as the KEM: one fresh encapsulation per message, so the derived key and nonce are
 * used exactly once.
 *
 *   envelope = version u8 = 1 ‖ keyId (32) ‖ KEM ciphertext (1088) ‖ length u32 ‖ AES-256-GCM(payload) ‖ tag (16)
 *   keyId    = SHA-256(recipient's encapsulation key)
 *   key ‖ nonce = HKDF-SHA-256(ikm = ML-KEM shared secret, salt = "",
 *                 info = context(kind) ‖ 0x00 ‖ keyId ‖ SHA-256(KEM ciphertext) ‖ length, 32 + 12 bytes)
 *   associated data = the caller's (for updates: the encoded claim the client signed)
 *
 * Why the ciphertext is bound into the KDF: FIPS 203's K depends on m and ek but not on the
 * ciphertext, so two ciphertexts could in principle carry one key; binding it (as X-Wing and
 * the TLS hybrids do through the transcript) makes the envelope commit to its KEM ciphertext.
 * It enters as its SHA-256 because node's HKDF takes at most 1024 bytes of info.
 */
import * as nodeCrypto from 'node:crypto';
import { concatBytes, equalBytes, toHex, utf8 } from '../core/bytes.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import { sha256 } from '../core/hash.ts';
import { type DecapsulationKey, KEM_SIZES, type MlKem, defaultMlKem } from './mlkem.ts';

/** One context per message kind (domain separation, like the FIPS 204 signing contexts). */
export const SealContext = {
  /** A client's update payload to the miner it uploads to. */
  upload: 'bfl/seal/update-upload/v1',
  /** A raw update served by one admitted miner to another. */
  serve: 'bfl/seal/update-serve/v1',
  /** A client's split-learning batch (or head share) to its miner, with the key of the answer. */
  split: 'bfl/seal/split/v1',
} as const;
export type SealContext = (typeof SealContext)[keyof typeof SealContext];

const VERSION = 1;
const TAG_BYTES = 16;
const NONCE_BYTES = 12;
export const SEAL_HEADER_BYTES = 1 + 32 + KEM_SIZES.ciphertext + 4;
/** Bytes a sealed payload adds to the plaintext. */
export const SEAL_OVERHEAD = SEAL_HEADER_BYTES + TAG_BYTES;

export function kemKeyId(publicKey: Uint8Array): Uint8Array {
  return sha256(publicKey);
}

function u32be(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function deriveKeyNonce(sharedSecret: Uint8Array, context: SealContext, keyId: Uint8Array, kemCiphertext: Uint8Array, length: number) {
  const info = concatBytes(utf8(context), new Uint8Array([0]), keyId, sha256(kemCiphertext), u32be(length));
  const okm = new Uint8Array(nodeCrypto.hkdfSync('sha256', sharedSecret, new Uint8Array(0), info, 32 + NONCE_BYTES));
  return { key: okm.subarray(0, 32), nonce: okm.subarray(32) };
}

export interface SealInput {
  context: SealContext;
  recipientPublicKey: Uint8Array;
  plaintext: Uint8Array;
  associatedData: Uint8Array;
}

/**
 * Encrypt `plaintext` to the holder of `recipientPublicKey`. `prefix` (e.g. a message header)
 * is written before the envelope in the same buffer: a 636 KB update is copied once, not twice.
 */
export function seal(input: SealInput, kem: MlKem = defaultMlKem(), prefix: Uint8Array = new Uint8Array(0)): Uint8Array {
  const { ciphertext: kemCt, sharedSecret } = kem.encapsulate(input.recipientPublicKey);
  const keyId = kemKeyId(input.recipientPublicKey);
  const n = input.plaintext.length;
  const { key, nonce } = deriveKeyNonce(sharedSecret, input.context, keyId, kemCt, n);
  const cipher = nodeCrypto.createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(input.associatedData);
  const p = prefix.length;
  const out = new Uint8Array(p + SEAL_OVERHEAD + n);
  out.set(prefix);
  out[p] = VERSION;
  out.set(keyId, p + 1);
  out.set(kemCt, p + 33);
  out.set(u32be(n), p + 33 + KEM_SIZES.ciphertext);
  const body = cipher.update(input.plaintext);
  const tail = cipher.final();
  out.set(body, p + SEAL_HEADER_BYTES);
  out.set(tail, p + SEAL_HEADER_BYTES + body.length);
  out.set(cipher.getAuthTag(), p + SEAL_HEADER_BYTES + n);
  return out;
}

/** The parts of an envelope, checked for shape only (no key needed). */
export interface EnvelopeHeader {
  keyId: Uint8Array;
  kemCiphertext: Uint8Array;
  length: number;
}

/** Shape checks, cheapest first (STYLE.md habit 11): truncation, version, declared length. */
export function parseEnvelope(envelope: Uint8Array, maxPlaintextBytes: number): EnvelopeHeader {
  if (envelope.length < SEAL_OVERHEAD) throw new BflError(ErrorCode.SEAL_TRUNCATED, `sealed payload of ${envelope.length} bytes, shorter than the ${SEAL_OVERHEAD}-byte envelope`);
  if (envelope[0] !== VERSION) throw new BflError(ErrorCode.MALFORMED, `sealed payload version ${envelope[0]}, expected ${VERSION}`);
  const length = new DataView(envelope.buffer, envelope.byteOffset + 33 + KEM_SIZES.ciphertext, 4).getUint32(0);
  if (length > maxPlaintextBytes) throw new BflError(ErrorCode.OVERSIZED, `sealed payload declares ${length} bytes, limit ${maxPlaintextBytes}`);
  const have = envelope.length - SEAL_OVERHEAD;
  if (have < length) throw new BflError(ErrorCode.SEAL_TRUNCATED, `sealed payload declares ${length} bytes but carries ${have}`);
  if (have > length) throw new BflError(ErrorCode.MALFORMED, `sealed payload declares ${length} bytes but carries ${have}`);
  return { keyId: envelope.subarray(1, 33), kemCiphertext: envelope.subarray(33, 33 + KEM_SIZES.ciphertext), length };
}

/** Decrypt with a known key; SEAL_TAMPERED if anything bound into the envelope was altered. */
export function openWith(dk: DecapsulationKey, context: SealContext, envelope: Uint8Array, associatedData: Uint8Array, maxPlaintextBytes = envelope.length): Uint8Array {
  const h = parseEnvelope(envelope, maxPlaintextBytes);
  const keyId = kemKeyId(dk.publicKey);
  if (!equalBytes(h.keyId, keyId)) throw new BflError(ErrorCode.KEM_WRONG_KEY, `sealed to key ${toHex(h.keyId).slice(0, 16)}…, not to ours (${toHex(keyId).slice(0, 16)}…)`);
  return decrypt(dk, context, envelope, h, associatedData);
}

/** The AES-GCM decipher of an envelope whose header `parseEnvelope` checked (decapsulation and key derivation), and its ciphertext. */
function decipherOf(dk: DecapsulationKey, context: SealContext, envelope: Uint8Array, h: EnvelopeHeader, associatedData: Uint8Array) {
  const { key, nonce } = deriveKeyNonce(dk.decapsulate(h.kemCiphertext), context, h.keyId, h.kemCiphertext, h.length);
  const decipher = nodeCrypto.createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(associatedData);
  decipher.setAuthTag(envelope.subarray(SEAL_HEADER_BYTES + h.length));
  return { decipher, body: envelope.subarray(SEAL_HEADER_BYTES, SEAL_HEADER_BYTES + h.length) };
}

/** The decipher's last bytes once the tag authenticated; SEAL_TAMPERED otherwise. */
function finalOrTampered(decipher: nodeCrypto.DecipherGCM): Buffer {
  try {
    return decipher.final();
  } catch {
    // ML-KEM's implicit rejection turns a tampered KEM ciphertext into a random key, so every
    // alteration (KEM ciphertext, AEAD ciphertext, tag, associated data, context) ends here.
    throw new BflError(ErrorCode.SEAL_TAMPERED, 'sealed payload does not authenticate (altered in transit, or sealed for another message)');
  }
}

/** Decapsulate and decrypt an envelope whose header `parseEnvelope` checked (a worker thread's half of `KemKeyRing.open`). */
export function decrypt(dk: DecapsulationKey, context: SealContext, envelope: Uint8Array, h: EnvelopeHeader, associatedData: Uint8Array): Uint8Array {
  const { decipher, body: ciphertext } = decipherOf(dk, context, envelope, h, associatedData);
  const body = decipher.update(ciphertext);
  const tail = finalOrTampered(decipher);
  return tail.length === 0 ? new Uint8Array(body.buffer, body.byteOffset, body.length) : new Uint8Array(Buffer.concat([body, tail]));
}

/**
 * Plaintext pieces of `decryptInto`: 16 KiB, below glibc's mmap threshold (32 kB, the
 * launcher's MALLOC_MMAP_THRESHOLD_, memory-settings.ts), so node:crypto's output for each
 * piece comes from the heap: one payload-sized output per update was a fresh mapping, zeroed by
 * the kernel page by page and unmapped again (issue 12: the verifier's job alone, 0.65 ms of
 * kernel time per 636 kB update before, 0.28 ms with pieces below the threshold). A multiple of
 * 4: pieces hold whole float32s. Keep it below the threshold if either changes.
 */
export const DECRYPT_PIECE_BYTES = 16 * 1024;

/**
 * `decrypt` into `out` (at least `h.length` bytes, which the caller reuses across envelopes):
 * node:crypto has no decryption into a given buffer, so the ciphertext is decrypted a piece at
 * a time and each piece copied in. `piece(offset, length)` is called after each piece is in
 * `out`, so that a caller can hash and scan it while it is in cache (one pass less over the
 * payload), but what it finds counts only once this returns: the tag is checked at the end, and
 * an envelope that does not authenticate throws SEAL_TAMPERED as `decrypt` does. Returns the
 * plaintext, `out`'s first `h.length` bytes.
 */
export function decryptInto(dk: DecapsulationKey, context: SealContext, envelope: Uint8Array, h: EnvelopeHeader, associatedData: Uint8Array, out: Uint8Array, piece?: (offset: number, length: number) => void): Uint8Array {
  if (out.length < h.length) throw new Error(`decryptInto: a ${out.length}-byte buffer for ${h.length} bytes`);
  const { decipher, body } = decipherOf(dk, context, envelope, h, associatedData);
  let at = 0;
  const take = (p: Buffer) => {
    if (p.length === 0) return;
    out.set(p, at);
    piece?.(at, p.length);
    at += p.length;
  };
  for (let i = 0; i < body.length; i += DECRYPT_PIECE_BYTES) take(decipher.update(body.subarray(i, Math.min(body.length, i + DECRYPT_PIECE_BYTES))));
  take(finalOrTampered(decipher));
  return out.subarray(0, h.length);
}

/** One of a recipient's KEM keys and the window in which it accepts envelopes (ms since epoch). */
export interface KemKeyWindow {
  seed: Uint8Array;
  notBefore: number;
  /** Envelopes to this key are refused from this time on (KEM_KEY_EXPIRED); Infinity = no end. */
  notAfter: number;
}

export interface KeyRingOptions {
  /** Opened KEM ciphertexts remembered to refuse replays. 65,536 × ~80 bytes ≈ 5 MB; far more
   * than the updates a miner receives between two key rotations on our testnets (FIFO beyond). */
  replayCacheSize?: number;
}

interface HeldKey extends KemKeyWindow {
  keyId: string;
  dk: DecapsulationKey;
}

/**
 * A recipient's KEM keys (current and past, from rotations) and its replay cache. A ciphertext
 * counts as seen only once it has authenticated: an attacker cannot block an honest envelope by
 * sending a forgery with the same KEM ciphertext first.
 */
export class KemKeyRing {
  private readonly keys = new Map<string, HeldKey>();
  private readonly seen = new Set<string>();
  private readonly cacheSize: number;
  readonly kem: MlKem;

  constructor(keys: KemKeyWindow[], kem: MlKem = defaultMlKem(), opts: KeyRingOptions = {}) {
    this.kem = kem;
    this.cacheSize = opts.replayCacheSize ?? 65_536;
    for (const k of keys) this.add(k);
  }

  add(k: KemKeyWindow): void {
    const dk = this.kem.decapsulationKey(k.seed);
    const keyId = toHex(kemKeyId(dk.publicKey));
    this.keys.set(keyId, { ...k, keyId, dk });
  }

  /** The newest key (latest notBefore) valid at `now`: the one to announce. */
  current(now: number): { publicKey: Uint8Array; notBefore: number; notAfter: number } | undefined {
    let best: HeldKey | undefined;
    for (const k of this.keys.values()) if (k.notBefore <= now && now < k.notAfter && (!best || k.notBefore > best.notBefore)) best = k;
    return best && { publicKey: best.dk.publicKey, notBefore: best.notBefore, notAfter: best.notAfter };
  }

  publicKeys(): Uint8Array[] {
    return [...this.keys.values()].map((k) => k.dk.publicKey);
  }

  /**
   * Open an envelope addressed to one of our keys. Checks cheapest first: shape, which key,
   * its window, replay, then decapsulation and the AEAD tag.
   */
  open(context: SealContext, envelope: Uint8Array, associatedData: Uint8Array, now: number, maxPlaintextBytes: number): Uint8Array {
    const c = this.check(envelope, now, maxPlaintextBytes);
    const plaintext = decrypt(c.key.dk, context, envelope, c.header, associatedData);
    this.opened(c.ciphertextId);
    return plaintext;
  }

  /**
   * `open`'s checks before the decryption (shape, which key, its window, replay), for a caller
   * that decrypts elsewhere (a worker thread: issue 12) and calls `opened` once it authenticated.
   */
  check(envelope: Uint8Array, now: number, maxPlaintextBytes: number): { header: EnvelopeHeader; key: KemKeyWindow & { dk: DecapsulationKey }; ciphertextId: string } {
    const h = parseEnvelope(envelope, maxPlaintextBytes);
    const id = toHex(h.keyId);
    const k = this.keys.get(id);
    if (!k) throw new BflError(ErrorCode.KEM_WRONG_KEY, `sealed to KEM key ${id.slice(0, 16)}…, which we do not hold; fetch our current key from our peer record`);
    if (now >= k.notAfter) throw new BflError(ErrorCode.KEM_KEY_EXPIRED, `sealed to KEM key ${id.slice(0, 16)}…, expired at ${new Date(k.notAfter).toISOString()}; use our current key`);
    if (now < k.notBefore) throw new BflError(ErrorCode.KEM_KEY_EXPIRED, `sealed to KEM key ${id.slice(0, 16)}…, not valid before ${new Date(k.notBefore).toISOString()}`);
    // the whole digest as a one-byte (latin1) string, not hex: ~69 bytes of JS heap per entry of
    // the replay cache instead of ~101, ~4.5 MB instead of ~6.6 MB when its 65,536 are full
    // (hours into a soak's upload rate; "A miner's memory", ninth look). Same digest, same check.
    const ciphertextId = replayKey(sha256(h.kemCiphertext));
    if (this.seen.has(ciphertextId)) throw replayed();
    return { header: h, key: k, ciphertextId };
  }

  /** An envelope of this KEM ciphertext authenticated: remember it (SEAL_REPLAYED if another one with it got here first, while this one was being opened elsewhere). */
  opened(ciphertextId: string): void {
    if (this.seen.has(ciphertextId)) throw replayed();
    this.seen.add(ciphertextId);
    if (this.seen.size > this.cacheSize) this.seen.delete(this.seen.values().next().value!);
  }
}

/** A replay-cache key: the digest's bytes one char each (latin1 maps every byte to one char, so distinct digests stay distinct). */
export function replayKey(digest: Uint8Array): string {
  return Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString('latin1');
}

function replayed(): BflError {
  return new BflError(ErrorCode.SEAL_REPLAYED, 'sealed payload replayed (its KEM ciphertext was opened before); seal each message afresh');
}
