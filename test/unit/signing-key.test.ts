import { describe, expect, it } from 'vitest';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { Uint8ArrayList } from 'uint8arraylist';
import { withCachedSigningKey } from '../../src/net/signing-key.ts';

describe('libp2p key with a cached signing key object', () => {
  it('signs exactly as @libp2p/crypto does (Ed25519 is deterministic), and the signature verifies', async () => {
    const key = await generateKeyPair('Ed25519');
    const cached = withCachedSigningKey(key);
    for (const msg of [new Uint8Array(0), new Uint8Array(2800).fill(5), new TextEncoder().encode('announcement')]) {
      const sig = await cached.sign(msg);
      expect(Buffer.from(sig)).toEqual(Buffer.from(await key.sign(msg)));
      expect(await key.publicKey.verify(msg, sig)).toBe(true);
    }
    const list = new Uint8ArrayList(new Uint8Array([1, 2]), new Uint8Array([3]));
    expect(Buffer.from(await cached.sign(list as unknown as Parameters<typeof cached.sign>[0]))).toEqual(Buffer.from(await key.sign(new Uint8Array([1, 2, 3]))));
    // still the same key to libp2p
    expect(cached.type).toBe('Ed25519');
    expect(cached.equals(key)).toBe(true);
    expect(cached.publicKey.equals(key.publicKey)).toBe(true);
    expect(Object.getPrototypeOf(cached)).toBe(Object.getPrototypeOf(key));
    await expect(Promise.resolve().then(() => cached.sign(new Uint8Array(1), { signal: AbortSignal.abort() }))).rejects.toThrow();
  });

  it('leaves other key types as they are', async () => {
    const key = await generateKeyPair('secp256k1');
    expect(withCachedSigningKey(key)).toBe(key);
  });
});
