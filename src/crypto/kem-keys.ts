/**
 * Miners' ML-KEM-768 keys: how they are stored, announced, rotated and looked up.
 *
 * - A miner's key file holds its KEM keys next to its ML-DSA identity (`kem`, a list): the first
 *   is the key committed in the network config and genesis; `bfl-node keygen --rotate-kem`
 *   appends a new one and ends the previous one's window after an overlap.
 * - A miner announces its current key in a `KemKeyAnnouncement` signed by its ML-DSA key
 *   (context `bfl/kem-key/v1`), carried in its peer record, with the key's validity window.
 * - Senders keep a `KemDirectory`: the committed keys from the config plus verified
 *   announcements; they seal to the newest key whose window holds now. The recipient refuses
 *   envelopes to its own keys outside their windows (KemKeyRing in seal.ts, KEM_KEY_EXPIRED).
 */
import { Reader, Writer, assertId, equalBytes, fromHex, toHex } from '../core/bytes.ts';
import { checkedId, MAX_SIGNATURE_BYTES } from '../core/encoding.ts';
import { SigningContext } from '../core/contexts.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import { KEM_PARAMS, KEM_SIZES, type MlKem, defaultMlKem } from './mlkem.ts';
import type { KemKeyWindow } from './seal.ts';
import type { SigningKey } from './mldsa.ts';

/** FIPS 204 context of KEM key announcements (domain separation from updates, blocks, peer records). */
export const KEM_KEY_CONTEXT = SigningContext.kemKey;

/** "No end" on the wire and in key files (u64 needs a finite number). */
export const NO_END = Number.MAX_SAFE_INTEGER;

/** How long an old key keeps being accepted after a rotation: in-flight uploads still open,
 * and peers that have not yet seen the new announcement get KEM_KEY_EXPIRED only after it. */
export const DEFAULT_ROTATION_OVERLAP_MS = 10 * 60_000;

export interface KemKey extends KemKeyWindow {
  publicKey: Uint8Array;
}

/** One entry of a key file's `kem` list. */
export interface KemKeyJson {
  algorithm: 'ML-KEM-768';
  publicKey: string;
  secretKey: string;
  secretKeyFormat: 'fips203-seed';
  notBefore: number;
  /** null: no end. */
  notAfter: number | null;
  createdAt: string;
}

export function generateKemKey(kem: MlKem = defaultMlKem(), notBefore = 0, notAfter = NO_END): { key: KemKey; json: KemKeyJson } {
  const kp = kem.keygen();
  const key = { seed: kp.seed, publicKey: kp.publicKey, notBefore, notAfter };
  return { key, json: kemKeyToJson(key) };
}

export function kemKeyToJson(k: KemKey): KemKeyJson {
  return {
    algorithm: KEM_PARAMS,
    publicKey: toHex(k.publicKey),
    secretKey: toHex(k.seed),
    secretKeyFormat: 'fips203-seed',
    notBefore: k.notBefore,
    notAfter: k.notAfter >= NO_END ? null : k.notAfter,
    createdAt: new Date().toISOString(),
  };
}

/** Parse a key file's `kem` list; the public keys are re-derived and must match (like ML-DSA's). */
export function parseKemKeys(list: unknown, bad: (msg: string) => Error, kem: MlKem = defaultMlKem()): KemKey[] {
  if (list === undefined) return []; // key files from before ML-KEM: still loadable
  if (!Array.isArray(list)) throw bad('"kem" must be a list of ML-KEM keys');
  return list.map((e: Partial<KemKeyJson>, i) => {
    const where = `kem[${i}]`;
    if (e === null || typeof e !== 'object') throw bad(`${where} must be an object`);
    if (e.algorithm !== KEM_PARAMS) throw bad(`${where}.algorithm must be ${KEM_PARAMS}, got ${JSON.stringify(e.algorithm)}`);
    if (e.secretKeyFormat !== 'fips203-seed') throw bad(`${where}.secretKeyFormat must be "fips203-seed"`);
    let seed: Uint8Array;
    let publicKey: Uint8Array;
    try {
      seed = fromHex(String(e.secretKey), KEM_SIZES.seed);
      publicKey = fromHex(String(e.publicKey), KEM_SIZES.publicKey);
    } catch (err) {
      throw bad(`${where}: ${(err as Error).message}`);
    }
    if (!Number.isSafeInteger(e.notBefore) || e.notBefore! < 0) throw bad(`${where}.notBefore must be a time in ms since the epoch`);
    if (e.notAfter !== null && (!Number.isSafeInteger(e.notAfter) || e.notAfter! <= e.notBefore!)) throw bad(`${where}.notAfter must be null or a time after notBefore`);
    if (!equalBytes(kem.keygen(seed).publicKey, publicKey)) throw bad(`${where}.publicKey does not match its secret key (damaged or edited file)`);
    return { seed, publicKey, notBefore: e.notBefore!, notAfter: e.notAfter ?? NO_END };
  });
}

/**
 * Rotate: a fresh key valid from `now` (for `validForMs`, or without end), the previous keys'
 * windows cut to end `overlapMs` after `now`. The first key stays first: it is the one the
 * genesis commits to.
 */
export function rotateKemKeys(keys: KemKey[], now: number, opts: { validForMs?: number; overlapMs?: number; kem?: MlKem } = {}): KemKey[] {
  const end = now + (opts.overlapMs ?? DEFAULT_ROTATION_OVERLAP_MS);
  const old = keys.map((k) => ({ ...k, notAfter: Math.min(k.notAfter, end) }));
  const fresh = generateKemKey(opts.kem, now, opts.validForMs ? now + opts.validForMs : NO_END).key;
  return [...old, fresh];
}

/** A miner's signed statement "this is my KEM key from notBefore until notAfter". */
export interface KemKeyAnnouncement {
  memberId: string;
  publicKey: Uint8Array;
  notBefore: number;
  notAfter: number;
  signature: Uint8Array;
}

export function kemAnnouncementMessage(networkId: string, a: Omit<KemKeyAnnouncement, 'signature'>): Uint8Array {
  return new Writer(1300).str(networkId).str(assertId(a.memberId, 'memberId')).fixed(a.publicKey, KEM_SIZES.publicKey).u64(a.notBefore).u64(a.notAfter).finish();
}

export function signKemAnnouncement(networkId: string, memberId: string, key: SigningKey, k: Pick<KemKey, 'publicKey' | 'notBefore' | 'notAfter'>): KemKeyAnnouncement {
  const body = { memberId, publicKey: k.publicKey, notBefore: k.notBefore, notAfter: Math.min(k.notAfter, NO_END) };
  return { ...body, signature: key.sign(kemAnnouncementMessage(networkId, body), KEM_KEY_CONTEXT) };
}

export function encodeKemAnnouncement(a: KemKeyAnnouncement): Uint8Array {
  return new Writer(3800).str(a.memberId).fixed(a.publicKey, KEM_SIZES.publicKey).u64(a.notBefore).u64(a.notAfter).bytes(a.signature).finish();
}

export function decodeKemAnnouncement(bytes: Uint8Array): KemKeyAnnouncement {
  if (bytes.length > 8192) throw new BflError(ErrorCode.OVERSIZED, `KEM key announcement of ${bytes.length} bytes`);
  const r = new Reader(bytes, 'KEM key announcement');
  const a = {
    memberId: checkedId(r.str('memberId'), 'memberId'),
    publicKey: r.fixed(KEM_SIZES.publicKey, 'publicKey'),
    notBefore: r.u64n('notBefore'),
    notAfter: r.u64n('notAfter'),
    signature: r.bytes('signature', MAX_SIGNATURE_BYTES),
  };
  r.end();
  if (a.notAfter <= a.notBefore) throw new BflError(ErrorCode.MALFORMED, 'KEM key announcement: notAfter is not after notBefore');
  return a;
}

interface DirectoryEntry {
  publicKey: Uint8Array;
  notBefore: number;
  notAfter: number;
}

/**
 * The sender's view of each miner's KEM keys: the genesis-committed key (valid from the start,
 * no end) plus announcements whose ML-DSA signature the caller has verified.
 */
export class KemDirectory {
  private readonly keys = new Map<string, DirectoryEntry[]>();

  constructor(committed: { id: string; kemPublicKey?: Uint8Array }[] = []) {
    for (const m of committed) if (m.kemPublicKey) this.keys.set(m.id, [{ publicKey: m.kemPublicKey, notBefore: 0, notAfter: NO_END }]);
  }

  /** Record a verified announcement (the caller checked the signature against the member's key). */
  learn(a: KemKeyAnnouncement): void {
    const list = this.keys.get(a.memberId) ?? [];
    const same = list.find((e) => equalBytes(e.publicKey, a.publicKey));
    if (same) {
      same.notBefore = a.notBefore;
      same.notAfter = a.notAfter;
    } else list.push({ publicKey: a.publicKey, notBefore: a.notBefore, notAfter: a.notAfter });
    this.keys.set(a.memberId, list);
  }

  /**
   * The key to seal to for `memberId` at `now`: the newest one already started (latest
   * notBefore ≤ now); a newer key supersedes the older ones. Undefined if that key's window has
   * ended: the miner has rotated since, and its peer record must be fetched again.
   */
  keyFor(memberId: string, now: number): Uint8Array | undefined {
    let best: DirectoryEntry | undefined;
    for (const e of this.keys.get(memberId) ?? []) if (e.notBefore <= now && (!best || e.notBefore >= best.notBefore)) best = e;
    return best && now < best.notAfter ? best.publicKey : undefined;
  }
}
