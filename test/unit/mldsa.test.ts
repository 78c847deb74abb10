import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type MlDsa, NativeMlDsa, NobleMlDsa, PARAM_SIZES, nativeMlDsaAvailable } from '../../src/crypto/mldsa.ts';
import { InThreadVerifier, WorkerVerifierPool } from '../../src/crypto/verifier.ts';

const native = new NativeMlDsa();
const noble = new NobleMlDsa();
const msg = new TextEncoder().encode('update digest and claim');
const ctx = 'bfl/update/v1';

it('native ML-DSA is available on this Node (OpenSSL >= 3.5)', () => {
  expect(nativeMlDsaAvailable()).toBe(true);
});

describe.each([
  ['native signs, noble verifies', native, noble],
  ['noble signs, native verifies', noble, native],
  ['native both', native, native],
  ['noble both', noble, noble],
] as [string, MlDsa, MlDsa][])('%s', (_name, signer, verifier) => {
  const seed = randomBytes(32);
  const key = signer.signingKey(seed);
  const sig = key.sign(msg, ctx);

  it('same seed, same public key in both implementations', () => {
    expect(Buffer.from(native.keygen(seed).publicKey)).toEqual(Buffer.from(noble.keygen(seed).publicKey));
    expect(key.publicKey.length).toBe(PARAM_SIZES['ML-DSA-44'].publicKey);
    expect(sig.length).toBe(PARAM_SIZES['ML-DSA-44'].signature);
  });

  it('accepts a valid signature', () => {
    expect(verifier.verify(key.publicKey, msg, sig, ctx)).toBe(true);
  });

  it('rejects a wrong context string', () => {
    expect(verifier.verify(key.publicKey, msg, sig, 'bfl/block/v1')).toBe(false);
    expect(verifier.verify(key.publicKey, msg, sig, '')).toBe(false);
  });

  it('rejects a flipped bit in the signature and in the message', () => {
    for (const pos of [0, 100, sig.length - 1]) {
      const bad = Uint8Array.from(sig);
      bad[pos] ^= 1;
      expect(verifier.verify(key.publicKey, msg, bad, ctx)).toBe(false);
    }
    const m2 = Uint8Array.from(msg);
    m2[3] ^= 0x10;
    expect(verifier.verify(key.publicKey, m2, sig, ctx)).toBe(false);
  });

  it('rejects a truncated or extended signature without throwing', () => {
    expect(verifier.verify(key.publicKey, msg, sig.subarray(0, sig.length - 1), ctx)).toBe(false);
    expect(verifier.verify(key.publicKey, msg, new Uint8Array([...sig, 0]), ctx)).toBe(false);
    expect(verifier.verify(key.publicKey, msg, new Uint8Array(0), ctx)).toBe(false);
  });

  it("rejects another key's signature", () => {
    const other = signer.signingKey(randomBytes(32));
    expect(verifier.verify(other.publicKey, msg, sig, ctx)).toBe(false);
    expect(verifier.verify(key.publicKey, msg, other.sign(msg, ctx), ctx)).toBe(false);
  });
});

describe('parameter sets', () => {
  it('a signature of another parameter set is rejected, both ways', () => {
    for (const [a, b] of [
      [new NativeMlDsa('ML-DSA-65'), native],
      [new NobleMlDsa('ML-DSA-87'), noble],
      [native, new NativeMlDsa('ML-DSA-65')],
    ] as [MlDsa, MlDsa][]) {
      const k = a.signingKey(randomBytes(32));
      const s = k.sign(msg, ctx);
      expect(a.verify(k.publicKey, msg, s, ctx)).toBe(true);
      expect(b.verify(k.publicKey, msg, s, ctx)).toBe(false);
    }
  });

  it('65 and 87 interoperate between the implementations too', () => {
    for (const p of ['ML-DSA-65', 'ML-DSA-87'] as const) {
      const seed = randomBytes(32);
      const k = new NativeMlDsa(p).signingKey(seed);
      expect(Buffer.from(k.publicKey)).toEqual(Buffer.from(new NobleMlDsa(p).keygen(seed).publicKey));
      expect(new NobleMlDsa(p).verify(k.publicKey, msg, k.sign(msg, ctx), ctx)).toBe(true);
    }
  });
});

describe('verifiers', () => {
  const keys = Array.from({ length: 6 }, () => native.signingKey(randomBytes(32)));
  const jobs = keys.map((k, i) => ({ publicKey: k.publicKey, message: msg, signature: k.sign(msg, ctx), context: ctx, ok: i % 2 === 0 }));
  for (const j of jobs) if (!j.ok) j.signature = Uint8Array.from(j.signature).fill(7, 10, 20);

  it('in-thread verifier returns one result per job, in order', async () => {
    expect(await new InThreadVerifier().verify(jobs)).toEqual(jobs.map((j) => j.ok));
  });

  it('worker pool gives the same answers as the in-thread verifier, with concurrent batches', async () => {
    const pool = new WorkerVerifierPool({ workers: 2 });
    try {
      const batches = await Promise.all([pool.verify(jobs), pool.verify(jobs.slice(2)), pool.verify([]), pool.verify(jobs.slice(0, 1))]);
      expect(batches[0]).toEqual(jobs.map((j) => j.ok));
      expect(batches[1]).toEqual(jobs.slice(2).map((j) => j.ok));
      expect(batches[2]).toEqual([]);
      expect(batches[3]).toEqual([true]);
      // bfl_worker_memory_bytes{worker="verifier"}: both workers' heaps together (each isolate holds a few MB)
      const heap = await pool.heapStatistics();
      expect(heap!.heapUsed).toBeGreaterThan(2 * 1_000_000);
      expect(heap!.external).toBeGreaterThan(0);
    } finally {
      await pool.close();
    }
    await expect(pool.verify(jobs)).rejects.toThrow(/closed/);
    expect(await pool.heapStatistics()).toBeUndefined();
  });

  it('calls made while the worker is busy go out as one batch and each gets its own answers, in order', async () => {
    const pool = new WorkerVerifierPool({ workers: 1, maxMessagesPerWorker: 1 });
    try {
      // the first call takes the worker's only slot; the next ones queue and share one message
      const calls = Array.from({ length: 9 }, (_, i) => jobs.slice(i % jobs.length, (i % jobs.length) + 1 + (i % 3)));
      const answers = await Promise.all(calls.map((c) => pool.verify(c)));
      expect(answers).toEqual(calls.map((c) => c.map((j) => j.ok)));
    } finally {
      await pool.close();
    }
  });
});
