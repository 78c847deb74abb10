/**
 * The paper's Table II, measured here: key generation, signing and verification times (median
 * of repeated runs) and key and signature sizes, for ML-DSA-44/65/87 (native OpenSSL and noble),
 * Falcon-512/1024 (noble), SLH-DSA-SHA2-128f (native and noble), RSA-2048/3072 PKCS#1 v1.5 and
 * Ed25519 (native). `bfl-node bench signatures [--json]`.
 */
import * as nodeCrypto from 'node:crypto';
import { falcon1024, falcon512 } from '@noble/post-quantum/falcon.js';
import { slh_dsa_sha2_128f } from '@noble/post-quantum/slh-dsa.js';
import { NativeMlDsa, NobleMlDsa, type MlDsaParams } from '../src/crypto/mldsa.ts';
import { timeMs } from './stats.ts';

export interface SignatureRow {
  scheme: string;
  implementation: 'native' | 'noble';
  keygenMs: number;
  signMs: number;
  verifyMs: number;
  publicKeyBytes: number;
  signatureBytes: number;
  runs: number;
}

interface Scheme {
  scheme: string;
  implementation: 'native' | 'noble';
  /** Slow schemes get fewer runs (RSA key generation, SLH-DSA and Falcon in JS). */
  weight: number;
  keygen(): { sign(m: Uint8Array): Uint8Array; verify(m: Uint8Array, s: Uint8Array): boolean; publicKeyBytes: number };
}

const MESSAGE = nodeCrypto.randomBytes(32); // what we sign in practice: a digest-sized claim

function mldsa(params: MlDsaParams, impl: 'native' | 'noble'): Scheme {
  const m = impl === 'native' ? new NativeMlDsa(params) : new NobleMlDsa(params);
  return {
    scheme: params,
    implementation: impl,
    weight: impl === 'native' ? 1 : 0.3,
    keygen() {
      const k = m.signingKey(nodeCrypto.randomBytes(32));
      return { sign: (x) => k.sign(x, 'bfl/update/v1'), verify: (x, s) => m.verify(k.publicKey, x, s, 'bfl/update/v1'), publicKeyBytes: k.publicKey.length };
    },
  };
}

function nodeScheme(scheme: string, type: string, opts: object, weight: number, rawPublicKeyBytes?: (k: nodeCrypto.KeyObject) => number): Scheme {
  return {
    scheme,
    implementation: 'native',
    weight,
    keygen() {
      const { publicKey, privateKey } = nodeCrypto.generateKeyPairSync(type as 'rsa', opts as nodeCrypto.RSAKeyPairOptions<'pem', 'pem'>) as unknown as nodeCrypto.KeyPairKeyObjectResult;
      const alg = type === 'rsa' ? 'sha256' : null; // RSA: PKCS#1 v1.5 with SHA-256 (the default padding)
      return {
        sign: (x) => nodeCrypto.sign(alg, x, privateKey),
        verify: (x, s) => nodeCrypto.verify(alg, x, publicKey, s),
        publicKeyBytes: rawPublicKeyBytes ? rawPublicKeyBytes(publicKey) : publicKey.export({ format: 'der', type: 'spki' }).length,
      };
    },
  };
}

function nobleScheme(scheme: string, impl: { keygen(): { publicKey: Uint8Array; secretKey: Uint8Array }; sign(m: Uint8Array, sk: Uint8Array): Uint8Array; verify(s: Uint8Array, m: Uint8Array, pk: Uint8Array): boolean }, weight: number): Scheme {
  return {
    scheme,
    implementation: 'noble',
    weight,
    keygen() {
      const k = impl.keygen();
      return { sign: (x) => impl.sign(x, k.secretKey), verify: (x, s) => impl.verify(s, x, k.publicKey), publicKeyBytes: k.publicKey.length };
    },
  };
}

const rsaModulusBytes = (k: nodeCrypto.KeyObject) => (k.asymmetricKeyDetails!.modulusLength! / 8) | 0;

export function schemes(): Scheme[] {
  return [
    mldsa('ML-DSA-44', 'native'),
    mldsa('ML-DSA-44', 'noble'),
    mldsa('ML-DSA-65', 'native'),
    mldsa('ML-DSA-65', 'noble'),
    mldsa('ML-DSA-87', 'native'),
    mldsa('ML-DSA-87', 'noble'),
    nobleScheme('Falcon-512', falcon512, 0.1),
    nobleScheme('Falcon-1024', falcon1024, 0.05),
    nodeScheme('SLH-DSA-SHA2-128f', 'slh-dsa-sha2-128f', {}, 0.1, () => 32),
    nobleScheme('SLH-DSA-SHA2-128f', slh_dsa_sha2_128f, 0.03),
    // Public key size reported as the modulus (what the paper's table lists), not the DER.
    nodeScheme('RSA-2048', 'rsa', { modulusLength: 2048 }, 0.2, rsaModulusBytes),
    nodeScheme('RSA-3072', 'rsa', { modulusLength: 3072 }, 0.1, rsaModulusBytes),
    nodeScheme('Ed25519', 'ed25519', {}, 1, () => 32),
  ];
}

export function benchSignatures(opts: { runs?: number; filter?: RegExp; onRow?: (r: SignatureRow) => void } = {}): SignatureRow[] {
  const base = opts.runs ?? 50;
  const rows: SignatureRow[] = [];
  for (const s of schemes()) {
    if (opts.filter && !opts.filter.test(`${s.scheme} ${s.implementation}`)) continue;
    const runs = Math.max(3, Math.round(base * s.weight));
    const keygenMs = timeMs(() => s.keygen(), runs, 1);
    const k = s.keygen();
    const sig = k.sign(MESSAGE);
    if (!k.verify(MESSAGE, sig)) throw new Error(`${s.scheme} (${s.implementation}): a fresh signature does not verify`);
    const row: SignatureRow = {
      scheme: s.scheme,
      implementation: s.implementation,
      keygenMs,
      signMs: timeMs(() => k.sign(MESSAGE), runs),
      verifyMs: timeMs(() => k.verify(MESSAGE, sig), runs),
      publicKeyBytes: k.publicKeyBytes,
      signatureBytes: sig.length,
      runs,
    };
    rows.push(row);
    opts.onRow?.(row);
  }
  return rows;
}

export function formatSignatureTable(rows: SignatureRow[]): string {
  const head = ['scheme', 'impl', 'keygen ms', 'sign ms', 'verify ms', 'pk bytes', 'sig bytes', 'runs'];
  const body = rows.map((r) => [r.scheme, r.implementation, r.keygenMs.toFixed(3), r.signMs.toFixed(3), r.verifyMs.toFixed(3), String(r.publicKeyBytes), String(r.signatureBytes), String(r.runs)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}
