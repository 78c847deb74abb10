/**
 * The per-update work of a sealed upload that needs no shared state, as one job (issue 12, fifth
 * pass): decapsulate and decrypt the envelope, check the payload's length, float32 shape,
 * digest and finiteness, verify the client's ML-DSA signature on its claim, and write the
 * payload to the pool's file for it. The miner's event loop keeps what needs its state
 * (admission, the envelope's key, window and replay checks, duplicates, base model, the pool's
 * bookkeeping) and hands this job to the verifier's worker thread (crypto/verifier.ts): there
 * the decryption's output, the hash and the NaN scan of 636 kB per update cost the event loop
 * nothing, and its isolate never holds the plaintext (no payload-sized allocation per update
 * for its garbage collector to chase). `InThreadOpener` runs the same function in the calling
 * thread (tests, tools: STYLE.md habit 7).
 *
 * Refusals keep the codes and the order of the in-thread path (`UpdateSealing.decode`, then the
 * intake's checks): seal, length, shape, digest, NaN here; the signature's verdict comes back as
 * a boolean for the intake to apply after its own cheaper checks.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { equalBytes, toHex } from '../core/bytes.ts';
import { BflError, type ErrorAction, ErrorCode, isBflError } from '../core/errors.ts';
import { allFinite, assertFinitePayload } from '../core/update.ts';
import { type MlDsa, defaultMlDsa } from './mldsa.ts';
import { type DecapsulationKey, type MlKem, defaultMlKem } from './mlkem.ts';
import { type SealContext, decryptInto, parseEnvelope } from './seal.ts';

export interface OpenJob {
  /**
   * The sealed envelope is bytes [offset, offset + length) of `buffer`. The job owns `buffer`:
   * a worker receives it by transfer (no copy) and transfers it back in the result, for reuse.
   */
  buffer: ArrayBuffer;
  offset: number;
  length: number;
  /** The seed of our KEM key the envelope names (the caller checked its window and replay). */
  kemSeed: Uint8Array;
  context: SealContext;
  /** The encoded claim: the envelope's associated data, and the message the client signed. */
  associatedData: Uint8Array;
  maxPlaintextBytes: number;
  /** What the announcement says of the payload. */
  payloadBytes: number;
  updateDigest: Uint8Array;
  /** The client's key and signature over `associatedData`; absent for a sender who is no member (the intake refuses it). */
  signature?: { publicKey: Uint8Array; signature: Uint8Array; context: string };
  /**
   * Where to write the payload once everything, the signature too, verified (none: the caller
   * will refuse the update anyway, a duplicate). `exclusive`: the file must not exist (the
   * pool's own name for the payload, UpdatePool.payloadFile: a file already there is another
   * writer's, and is left alone).
   */
  file?: { path: string; exclusive: boolean };
}

/** A refusal as data (it crosses a thread boundary): rebuilt as a BflError by `errorOf`. */
export interface OpenRefusal {
  code: ErrorCode;
  message: string;
  action: ErrorAction;
  details?: Record<string, unknown>;
}

export interface OpenResult {
  /** The job's buffer, back for reuse (frames.ts's frame buffers). */
  buffer: ArrayBuffer;
  refusal?: OpenRefusal;
  /** Our own failure (the payload file could not be written): the upload fails, nobody is blamed. */
  failure?: string;
  /** Set when the payload passed every check: the signature's verdict (undefined without a signature to check). */
  signatureValid?: boolean;
  /** The payload is in `job.file` (every check passed, the signature too, and a file was asked for). */
  written: boolean;
  /** CPU ms of the opening alone (decapsulation, decryption, payload checks), for the sealing stats. */
  openCpuMs: number;
}

export function errorOf(r: OpenRefusal): BflError {
  return new BflError(r.code, r.message, { action: r.action, details: r.details });
}

/** CPU ms of this thread (Node >= 23.9), wall ms where that is missing. */
function cpuNow(): number {
  if (typeof process.threadCpuUsage === 'function') {
    const u = process.threadCpuUsage();
    return (u.user + u.system) / 1000;
  }
  return performance.now();
}

/** Decapsulation keys by seed: building one (a key object, its public key) costs more than a decapsulation. */
export class DecapsulationKeys {
  private readonly kem: MlKem;
  private readonly keys = new Map<string, DecapsulationKey>();

  constructor(kem: MlKem = defaultMlKem()) {
    this.kem = kem;
  }

  of(seed: Uint8Array): DecapsulationKey {
    const id = toHex(seed);
    let k = this.keys.get(id);
    if (!k) {
      // a miner holds its current key and the few it rotated away from
      if (this.keys.size >= 16) this.keys.delete(this.keys.keys().next().value!);
      k = this.kem.decapsulationKey(seed);
      this.keys.set(id, k);
    }
    return k;
  }
}

/** Run one job (in whichever thread calls it). */
export function openSealedUpdate(job: OpenJob, keys: DecapsulationKeys, mldsa: MlDsa): OpenResult {
  try {
    return openOne(job, keys, mldsa);
  } catch (e) {
    return { buffer: job.buffer, failure: (e as Error).message, written: false, openCpuMs: 0 };
  }
}

/**
 * The plaintext of the job being opened: one buffer per thread, reused (a job runs to its end
 * synchronously, the file written from it before the next), grown to the largest payload seen
 * (at most maxUpdateBytes). Issue 12, sixth pass: a fresh 636 kB output per update cost the
 * worker a mapping, its page faults and unmapping in the kernel, and its isolate a collection.
 */
let plain = new Uint8Array(0);

function openOne(job: OpenJob, keys: DecapsulationKeys, mldsa: MlDsa): OpenResult {
  const t0 = cpuNow();
  let payload: Uint8Array;
  try {
    const envelope = new Uint8Array(job.buffer, job.offset, job.length);
    const h = parseEnvelope(envelope, job.maxPlaintextBytes);
    if (plain.length < h.length) plain = new Uint8Array(h.length);
    // SHA-256 and the NaN/Inf scan of each piece as it is decrypted, while it is in cache; their
    // verdicts count only after the tag authenticated (decryptInto throws first otherwise), and
    // in UpdateSealing.decode's order: seal, length, shape, digest, finiteness
    const hash = createHash('sha256');
    const words = h.length % 4 === 0;
    let finite = true;
    payload = decryptInto(keys.of(job.kemSeed), job.context, envelope, h, job.associatedData, plain, (at, n) => {
      const p = plain.subarray(at, at + n);
      hash.update(p);
      if (words && finite) finite = n % 4 === 0 ? allFinite(p) : false; // a ragged piece (GCM gives none): scanned whole below
    });
    if (payload.length !== job.payloadBytes) throw new BflError(ErrorCode.MALFORMED, `payload is ${payload.length} bytes, announced ${job.payloadBytes}`);
    if (payload.length % 4 !== 0) throw new BflError(ErrorCode.MALFORMED, 'payload is not a whole number of float32 values');
    if (!equalBytes(new Uint8Array(hash.digest()), job.updateDigest)) throw new BflError(ErrorCode.MALFORMED, 'payload does not hash to the update digest');
    if (!finite) assertFinitePayload(payload); // names the first bad parameter
  } catch (e) {
    if (!isBflError(e)) throw e;
    return { buffer: job.buffer, refusal: { code: e.code, message: e.message, action: e.action, details: e.details }, written: false, openCpuMs: cpuNow() - t0 };
  }
  const openCpuMs = cpuNow() - t0;
  const s = job.signature;
  const signatureValid = s ? mldsa.verify(s.publicKey, job.associatedData, s.signature, s.context) : undefined;
  const written = signatureValid === true && job.file !== undefined;
  if (written) writeFileSync(job.file!.path, payload, { flag: job.file!.exclusive ? 'wx' : 'w' });
  return { buffer: job.buffer, signatureValid, written, openCpuMs };
}

/** Where sealed uploads are opened: a worker thread (the daemon: WorkerVerifierPool) or the calling thread. */
export interface SealedOpener {
  openSealed(job: OpenJob): Promise<OpenResult>;
}

export class InThreadOpener implements SealedOpener {
  private readonly keys: DecapsulationKeys;
  private readonly mldsa: MlDsa;

  constructor(mldsa: MlDsa = defaultMlDsa(), kem?: MlKem) {
    this.mldsa = mldsa;
    this.keys = new DecapsulationKeys(kem);
  }

  async openSealed(job: OpenJob): Promise<OpenResult> {
    return openSealedUpdate(job, this.keys, this.mldsa);
  }
}
