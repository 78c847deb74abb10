/**
 * Raw updates sealed between our nodes (issue 16; docs/decisions.md, "Post-quantum
 * confidentiality"): a client seals each update's payload to the miner it uploads to, and a
 * miner serving a raw update to another admitted miner seals it to that miner. The signed
 * announcement (claim, signature, sizes) stays in clear: miners gossip it anyway. The payload
 * is sealed with the encoded claim as associated data (crypto/seal.ts).
 *
 * Sealed traffic has its own protocol ids, so a node never guesses which form it was sent:
 *   submit-sealed:  request  = u32 n ‖ announcement (n bytes) ‖ envelope
 *   submit-sealed-stream: the same requests as frames on one long-lived stream (net/frames.ts)
 *   update-sealed:  request  = clientId ‖ digest (as `update`), response = the same sealed form
 * With `p2p.sealUpdates` on, a miner refuses the clear `submit` and `update` (SEAL_REQUIRED).
 */
import { claimOfRecord, encodeUpdateClaim } from '../core/encoding.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import { equalBytes } from '../core/bytes.ts';
import { sha256 } from '../core/hash.ts';
import type { KemDirectory } from '../crypto/kem-keys.ts';
import type { MlKem } from '../crypto/mlkem.ts';
import { type KemKeyRing, SEAL_OVERHEAD, SealContext, seal } from '../crypto/seal.ts';
import { type SignedUpdate, type UpdateAnnouncement, assertFinitePayload, decodeAnnouncement, encodeAnnouncement } from '../core/update.ts';

export const sealedProtocols = (networkId: string) => ({
  submit: `/bfl/${networkId}/submit-sealed/1.0.0`,
  /** Sealed uploads as pipelined frames on one long-lived stream (net/frames.ts). */
  submitStream: `/bfl/${networkId}/submit-sealed-stream/1.0.0`,
  update: `/bfl/${networkId}/update-sealed/1.0.0`,
});

export type SealKind = 'upload' | 'serve';

/** A sealed update checked up to its decryption (`UpdateSealing.prepareOpen`). */
export interface PreparedOpen {
  announcement: UpdateAnnouncement;
  /** Where the envelope is in the request's ArrayBuffer. */
  envelopeOffset: number;
  envelopeLength: number;
  kemSeed: Uint8Array;
  context: SealContext;
  /** The encoded claim: the envelope's associated data and the message the client signed. */
  associatedData: Uint8Array;
  ciphertextId: string;
}

export interface UpdateSealingOptions {
  networkId: string;
  /** Miners' KEM keys: committed in the config, learnt from signed peer records. */
  directory: KemDirectory;
  /** Our own KEM keys (miners only). */
  keyRing?: KemKeyRing;
  /** Ask a peer for its peer record again (it may have rotated its KEM key). */
  refresh?: (peer: string) => Promise<unknown>;
  kem?: MlKem;
}

/** What sealing has cost this node so far (in /status; `bench kem --testnet` sums it). CPU
 * time of the thread that seals, not wall time: on a loaded machine a 1 ms seal can take 20 ms of
 * wall time while other processes run, and that is not sealing's cost. */
export interface SealingStats {
  sealed: number;
  opened: number;
  sealMs: number;
  openMs: number;
  /** This process's whole CPU time (all threads), for the share that sealing takes. */
  processCpuMs: number;
}

/** CPU ms of this thread (Node >= 23.9), wall ms where that is missing. */
function cpuNow(): number {
  if (typeof process.threadCpuUsage === 'function') {
    const u = process.threadCpuUsage();
    return (u.user + u.system) / 1000;
  }
  return performance.now();
}

export class UpdateSealing {
  private readonly o: UpdateSealingOptions;
  private readonly counts = { sealed: 0, opened: 0, sealMs: 0, openMs: 0 };

  constructor(o: UpdateSealingOptions) {
    this.o = o;
  }

  get canOpen(): boolean {
    return this.o.keyRing !== undefined;
  }

  stats(): SealingStats {
    const cpu = process.cpuUsage();
    return { ...this.counts, processCpuMs: (cpu.user + cpu.system) / 1000 };
  }

  /** Seal `u` to `memberId`'s current KEM key; SEAL_REQUIRED (IGNORE) if we know none. */
  encode(u: SignedUpdate, kind: SealKind, memberId: string, now: number): Uint8Array {
    const t0 = cpuNow();
    const key = this.o.directory.keyFor(memberId, now);
    if (!key) throw new BflError(ErrorCode.SEAL_REQUIRED, `no current ML-KEM key of ${memberId} known: cannot send it an update sealed (give it a KEM key: bfl-node keygen --rotate-kem)`, { action: 'IGNORE' });
    const a: UpdateAnnouncement = { ...u, payloadBytes: u.payload.length };
    const announcement = encodeAnnouncement(a);
    const prefix = new Uint8Array(4 + announcement.length);
    new DataView(prefix.buffer).setUint32(0, announcement.length);
    prefix.set(announcement, 4);
    const out = seal({ context: contextOf(kind), recipientPublicKey: key, plaintext: u.payload, associatedData: encodeUpdateClaim(claimOfRecord(this.o.networkId, a)) }, this.o.kem, prefix);
    this.counts.sealed++;
    this.counts.sealMs += cpuNow() - t0;
    return out;
  }

  /** The checks before any decryption: our key, the sizes, the announcement's length and shape. */
  private header(bytes: Uint8Array, maxUpdateBytes: number) {
    const keyRing = this.o.keyRing;
    if (!keyRing) throw new BflError(ErrorCode.SEAL_REQUIRED, 'this node holds no ML-KEM key and cannot open sealed updates', { action: 'IGNORE' });
    if (bytes.length > maxUpdateBytes + SEAL_OVERHEAD + 8192) throw new BflError(ErrorCode.OVERSIZED, `sealed update of ${bytes.length} bytes, limit ${maxUpdateBytes}`);
    if (bytes.length < 4) throw new BflError(ErrorCode.SEAL_TRUNCATED, `sealed update of ${bytes.length} bytes`);
    const n = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
    if (n > 8192) throw new BflError(ErrorCode.MALFORMED, `sealed update: announcement of ${n} bytes`);
    if (bytes.length < 4 + n) throw new BflError(ErrorCode.SEAL_TRUNCATED, `sealed update of ${bytes.length} bytes, its announcement alone takes ${4 + n}`);
    const announcement = decodeAnnouncement(bytes.subarray(4, 4 + n));
    if (announcement.payloadBytes > maxUpdateBytes) throw new BflError(ErrorCode.OVERSIZED, `update of ${announcement.payloadBytes} bytes, limit ${maxUpdateBytes}`);
    return { n, announcement, keyRing };
  }

  /**
   * Open a sealed update addressed to us. Cheapest first: size, the announcement's shape, the
   * envelope (its key, window, replay, then decapsulation and tag), then the payload's digest.
   */
  decode(bytes: Uint8Array, kind: SealKind, now: number, maxUpdateBytes: number): SignedUpdate {
    const t0 = cpuNow();
    const { n, announcement: a, keyRing } = this.header(bytes, maxUpdateBytes);
    const payload = keyRing.open(contextOf(kind), bytes.subarray(4 + n), encodeUpdateClaim(claimOfRecord(this.o.networkId, a)), now, maxUpdateBytes);
    if (payload.length !== a.payloadBytes) throw new BflError(ErrorCode.MALFORMED, `payload is ${payload.length} bytes, announced ${a.payloadBytes}`);
    if (payload.length % 4 !== 0) throw new BflError(ErrorCode.MALFORMED, 'payload is not a whole number of float32 values');
    if (!equalBytes(sha256(payload), a.updateDigest)) throw new BflError(ErrorCode.MALFORMED, 'payload does not hash to the update digest');
    // as decodeSignedUpdate does for clear uploads: a sealed payload went around that check
    assertFinitePayload(payload);
    this.counts.opened++;
    this.counts.openMs += cpuNow() - t0;
    return { ...a, payload };
  }

  /**
   * `decode` in three steps, for a miner that opens uploads in a worker thread (issue 12):
   * `prepareOpen` makes `decode`'s checks up to the decryption (size, the announcement, the
   * envelope's key, window and replay) on the caller's thread and says where the envelope is;
   * crypto/open-sealed.ts decrypts and checks the payload elsewhere; `opened` then records the
   * authenticated envelope (its replay check again: two copies may have been open at once).
   */
  prepareOpen(bytes: Uint8Array, kind: SealKind, now: number, maxUpdateBytes: number): PreparedOpen {
    const t0 = cpuNow();
    const { n, announcement, keyRing } = this.header(bytes, maxUpdateBytes);
    const c = keyRing.check(bytes.subarray(4 + n), now, maxUpdateBytes);
    this.counts.openMs += cpuNow() - t0;
    return {
      announcement,
      envelopeOffset: bytes.byteOffset + 4 + n,
      envelopeLength: bytes.length - 4 - n,
      kemSeed: c.key.seed,
      context: contextOf(kind),
      associatedData: encodeUpdateClaim(claimOfRecord(this.o.networkId, announcement)),
      ciphertextId: c.ciphertextId,
    };
  }

  /** The envelope of `prepareOpen` authenticated (elsewhere, in `cpuMs` of CPU): SEAL_REPLAYED if a copy of it got there first. */
  opened(p: PreparedOpen, cpuMs: number): void {
    this.o.keyRing!.opened(p.ciphertextId);
    this.counts.opened++;
    this.counts.openMs += cpuMs;
  }

  /** Any message sealed to `memberId`'s current KEM key (split learning's batches: net/split.ts). */
  sealTo(memberId: string, context: SealContext, plaintext: Uint8Array, associatedData: Uint8Array, now: number): Uint8Array {
    const t0 = cpuNow();
    const key = this.o.directory.keyFor(memberId, now);
    if (!key) throw new BflError(ErrorCode.SEAL_REQUIRED, `no current ML-KEM key of ${memberId} known: cannot send it a sealed message (give it a KEM key: bfl-node keygen --rotate-kem)`, { action: 'IGNORE' });
    const out = seal({ context, recipientPublicKey: key, plaintext, associatedData }, this.o.kem);
    this.counts.sealed++;
    this.counts.sealMs += cpuNow() - t0;
    return out;
  }

  /** Open any message sealed to one of our keys (replay-checked by its KEM ciphertext). */
  open(context: SealContext, envelope: Uint8Array, associatedData: Uint8Array, now: number, maxBytes: number): Uint8Array {
    const t0 = cpuNow();
    if (!this.o.keyRing) throw new BflError(ErrorCode.SEAL_REQUIRED, 'this node holds no ML-KEM key and cannot open sealed messages', { action: 'IGNORE' });
    const out = this.o.keyRing.open(context, envelope, associatedData, now, maxBytes);
    this.counts.opened++;
    this.counts.openMs += cpuNow() - t0;
    return out;
  }

  /** After KEM_KEY_EXPIRED / KEM_WRONG_KEY from `peer`: fetch its peer record (and KEM key) again. */
  async refresh(peer: string): Promise<void> {
    await this.o.refresh?.(peer);
  }
}

function contextOf(kind: SealKind): SealContext {
  return kind === 'upload' ? SealContext.upload : SealContext.serve;
}

/** Refusals a sender can cause honestly with a stale view of our keys: retry after a refresh. */
export function isStaleKeyCode(code: string | undefined): boolean {
  return code === ErrorCode.KEM_KEY_EXPIRED || code === ErrorCode.KEM_WRONG_KEY;
}
