/**
 * ML-KEM-768 (FIPS 203) behind one interface, two implementations, like ML-DSA (mldsa.ts):
 * - `native`: Node's crypto on OpenSSL >= 3.5 (crypto.encapsulate / crypto.decapsulate),
 * - `noble`: @noble/post-quantum, pure JS, the portable reference.
 * Both derive the key pair from the same 64-byte seed d‖z (FIPS 203 ML-KEM.KeyGen_internal), so a
 * key file works with either, and each decapsulates the other's ciphertexts (test/unit/mlkem.test.ts).
 */
import * as nodeCrypto from 'node:crypto';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { BflError, ErrorCode } from '../core/errors.ts';

export type MlKemParams = 'ML-KEM-768';

/** NIST category 3, the parameter set of TLS's X25519MLKEM768 and of Signal's PQXDH successor. */
export const KEM_PARAMS: MlKemParams = 'ML-KEM-768';

/** FIPS 203 Table 3 sizes for ML-KEM-768 (bytes). */
export const KEM_SIZES = { seed: 64, publicKey: 1184, ciphertext: 1088, sharedSecret: 32 } as const;

export interface KemKeyPair {
  seed: Uint8Array; // 64-byte d‖z; the secret from which everything else is derived
  publicKey: Uint8Array; // the encapsulation key ek
}

/** A decapsulation key ready for use (implementation-specific material cached inside). */
export interface DecapsulationKey {
  readonly publicKey: Uint8Array;
  /** ML-KEM decapsulation never fails on a well-sized ciphertext (implicit rejection: a wrong one
   * gives a pseudorandom secret); only a wrong length throws (SEAL_TRUNCATED / MALFORMED). */
  decapsulate(ciphertext: Uint8Array): Uint8Array;
}

export interface Encapsulation {
  ciphertext: Uint8Array;
  sharedSecret: Uint8Array;
}

export interface MlKem {
  readonly name: 'native' | 'noble';
  readonly params: MlKemParams;
  keygen(seed?: Uint8Array): KemKeyPair;
  decapsulationKey(seed: Uint8Array): DecapsulationKey;
  /** MALFORMED for a public key of the wrong length or failing FIPS 203's modulus check. */
  encapsulate(publicKey: Uint8Array): Encapsulation;
}

function checkSeed(seed: Uint8Array): void {
  if (!(seed instanceof Uint8Array) || seed.length !== KEM_SIZES.seed) throw new RangeError(`ML-KEM seed must be ${KEM_SIZES.seed} bytes (d‖z), got ${seed?.length}`);
}

function checkCiphertext(ct: Uint8Array): void {
  if (ct.length < KEM_SIZES.ciphertext) throw new BflError(ErrorCode.SEAL_TRUNCATED, `ML-KEM ciphertext of ${ct.length} bytes, expected ${KEM_SIZES.ciphertext}`);
  if (ct.length !== KEM_SIZES.ciphertext) throw new BflError(ErrorCode.MALFORMED, `ML-KEM ciphertext of ${ct.length} bytes, expected ${KEM_SIZES.ciphertext}`);
}

function badPublicKey(detail: string): BflError {
  return new BflError(ErrorCode.MALFORMED, `not an ML-KEM-768 encapsulation key: ${detail}`);
}

export class NobleMlKem implements MlKem {
  readonly name = 'noble' as const;
  readonly params = KEM_PARAMS;

  keygen(seed: Uint8Array = nodeCrypto.randomBytes(KEM_SIZES.seed)): KemKeyPair {
    checkSeed(seed);
    return { seed: Uint8Array.from(seed), publicKey: ml_kem768.keygen(seed).publicKey };
  }

  decapsulationKey(seed: Uint8Array): DecapsulationKey {
    checkSeed(seed);
    const { publicKey, secretKey } = ml_kem768.keygen(seed);
    return {
      publicKey,
      decapsulate: (ct) => {
        checkCiphertext(ct);
        return ml_kem768.decapsulate(ct, secretKey);
      },
    };
  }

  encapsulate(publicKey: Uint8Array): Encapsulation {
    if (publicKey.length !== KEM_SIZES.publicKey) throw badPublicKey(`${publicKey.length} bytes, expected ${KEM_SIZES.publicKey}`);
    try {
      const { cipherText, sharedSecret } = ml_kem768.encapsulate(publicKey);
      return { ciphertext: cipherText, sharedSecret };
    } catch (e) {
      throw badPublicKey((e as Error).message);
    }
  }

  /** FIPS 203 ML-KEM.Encaps_internal with a given m: for known-answer tests only (noble only:
   * OpenSSL does not expose the deterministic form). */
  encapsulateDeterministic(publicKey: Uint8Array, m: Uint8Array): Encapsulation {
    const { cipherText, sharedSecret } = ml_kem768.encapsulate(publicKey, m);
    return { ciphertext: cipherText, sharedSecret };
  }
}

// DER forms (draft-ietf-lamps-kyber-certificates): SPKI with the raw encapsulation
// key, and the seed-only PKCS#8 private key ([0] IMPLICIT OCTET STRING of d‖z), so both
// implementations share the 64-byte seed. OID id-alg-ml-kem-768 = 2.16.840.1.101.3.4.4.2.
const OID_ML_KEM_768 = [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, 0x02];
const SPKI_PREFIX = Buffer.from([0x30, 0x82, 0x04, 0xb2, 0x30, 0x0b, ...OID_ML_KEM_768, 0x03, 0x82, 0x04, 0xa1, 0x00]);
const PKCS8_SEED_PREFIX = Buffer.from([0x30, 0x54, 0x02, 0x01, 0x00, 0x30, 0x0b, ...OID_ML_KEM_768, 0x04, 0x42, 0x80, 0x40]);

export function nativeMlKemAvailable(): boolean {
  try {
    if (typeof nodeCrypto.encapsulate !== 'function' || typeof nodeCrypto.decapsulate !== 'function') return false;
    nodeCrypto.createPrivateKey({ key: Buffer.concat([PKCS8_SEED_PREFIX, new Uint8Array(64)]), format: 'der', type: 'pkcs8' });
    return true;
  } catch {
    return false;
  }
}

export class NativeMlKem implements MlKem {
  readonly name = 'native' as const;
  readonly params = KEM_PARAMS;
  // Parsing an SPKI costs about as much as an encapsulation; recipients repeat (a client uploads
  // to one miner), so cache a few.
  private readonly keyCache = new Map<string, nodeCrypto.KeyObject>();
  private static readonly CACHE_LIMIT = 256;

  keygen(seed: Uint8Array = nodeCrypto.randomBytes(KEM_SIZES.seed)): KemKeyPair {
    return { seed: Uint8Array.from(seed), publicKey: this.decapsulationKey(seed).publicKey };
  }

  decapsulationKey(seed: Uint8Array): DecapsulationKey {
    checkSeed(seed);
    const priv = nodeCrypto.createPrivateKey({ key: Buffer.concat([PKCS8_SEED_PREFIX, seed]), format: 'der', type: 'pkcs8' });
    const spki = nodeCrypto.createPublicKey(priv).export({ format: 'der', type: 'spki' });
    return {
      publicKey: new Uint8Array(spki.subarray(SPKI_PREFIX.length)),
      decapsulate: (ct) => {
        checkCiphertext(ct);
        return new Uint8Array(nodeCrypto.decapsulate(priv, ct));
      },
    };
  }

  encapsulate(publicKey: Uint8Array): Encapsulation {
    if (publicKey.length !== KEM_SIZES.publicKey) throw badPublicKey(`${publicKey.length} bytes, expected ${KEM_SIZES.publicKey}`);
    const { ciphertext, sharedKey } = nodeCrypto.encapsulate(this.publicKeyObject(publicKey));
    return { ciphertext: new Uint8Array(ciphertext), sharedSecret: new Uint8Array(sharedKey) };
  }

  private publicKeyObject(publicKey: Uint8Array): nodeCrypto.KeyObject {
    const id = Buffer.from(publicKey).toString('base64');
    let key = this.keyCache.get(id);
    if (!key) {
      try {
        // OpenSSL runs FIPS 203's modulus check on import.
        key = nodeCrypto.createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
      } catch (e) {
        throw badPublicKey((e as Error).message);
      }
      if (this.keyCache.size >= NativeMlKem.CACHE_LIMIT) this.keyCache.delete(this.keyCache.keys().next().value!);
      this.keyCache.set(id, key);
    }
    return key;
  }
}

/** The native implementation where OpenSSL has ML-KEM, else noble. */
export function defaultMlKem(): MlKem {
  return nativeMlKemAvailable() ? new NativeMlKem() : new NobleMlKem();
}
