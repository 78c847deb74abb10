/**
 * Our libp2p private key with its signing key object built once (issue 12, update ingestion):
 * @libp2p/crypto's Ed25519 `sign` parses the key from a JWK into a new node:crypto KeyObject on
 * every call, and gossipsub signs every message we publish (an announcement per accepted upload):
 * the parse took longer than the signature (1.8 ms against 0.8 ms per sign, measured at load 14).
 * Same bytes out: Ed25519 signatures are deterministic (RFC 8032).
 */
import { createPrivateKey, sign } from 'node:crypto';
import type { PrivateKey } from '@libp2p/interface';

/** Ed25519 seed ‖ public key, as @libp2p/crypto holds it. */
const RAW_BYTES = 64;

export function withCachedSigningKey<K extends PrivateKey>(key: K): K {
  if (key.type !== 'Ed25519' || key.raw.length !== RAW_BYTES) return key;
  const b64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
  const obj = createPrivateKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', d: b64(key.raw.subarray(0, 32)), x: b64(key.raw.subarray(32)) } });
  // the same class (libp2p reads `type`, `raw`, `publicKey`, `equals`), with sign overridden
  const out = Object.create(Object.getPrototypeOf(key) as object, Object.getOwnPropertyDescriptors(key)) as K;
  out.sign = (message: Parameters<PrivateKey['sign']>[0], options?: Parameters<PrivateKey['sign']>[1]) => {
    options?.signal?.throwIfAborted();
    return sign(null, message instanceof Uint8Array ? message : message.subarray(), obj);
  };
  return out;
}
