/**
 * ML-DSA key files (`bfl-node keygen`). JSON, mode 0600:
 *   { id, role, algorithm: "ML-DSA-44", publicKey: hex, secretKey: hex, secretKeyFormat: "fips204-seed", createdAt,
 *     kem?: [{ algorithm: "ML-KEM-768", publicKey, secretKey, secretKeyFormat: "fips203-seed", notBefore, notAfter, createdAt }] }
 * The secret key is the 32-byte FIPS 204 seed ξ (the compact form both implementations accept);
 * the public key is re-derived on load and must match, so a damaged file is caught at start-up.
 * Miners also hold ML-KEM-768 keys (kem-keys.ts): the first is committed in the genesis, later
 * ones come from rotations. Files without `kem` (written before it) still load.
 */
import { open, readFile, stat } from 'node:fs/promises';
import { assertId, fromHex, toHex } from '../core/bytes.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import type { Role } from '../core/types.ts';
import { DEFAULT_PARAMS, type MlDsa, type SigningKey, defaultMlDsa } from './mldsa.ts';
import { type KemKey, type KemKeyJson, generateKemKey, kemKeyToJson, parseKemKeys, rotateKemKeys } from './kem-keys.ts';

export interface Identity {
  id: string;
  role: Role;
  publicKey: Uint8Array;
  key: SigningKey;
  /** ML-KEM-768 keys, oldest first (empty for clients and for key files from before ML-KEM). */
  kemKeys?: KemKey[];
}

export interface KeyFileJson {
  id: string;
  role: Role;
  algorithm: string;
  publicKey: string;
  secretKey: string;
  secretKeyFormat: 'fips204-seed';
  createdAt: string;
  /** The node's libp2p identity (Ed25519, libp2p protobuf encoding, hex) and its PeerId.
   * Separate from the ML-DSA identity; the node proves the link with a signed peer record. */
  peerKey?: string;
  peerId?: string;
  kem?: KemKeyJson[];
}

export function generateIdentity(id: string, role: Role, mldsa: MlDsa = defaultMlDsa()): { identity: Identity; json: KeyFileJson } {
  assertId(id, 'key id');
  const kp = mldsa.keygen();
  const key = mldsa.signingKey(kp.seed);
  const json: KeyFileJson = {
    id,
    role,
    algorithm: mldsa.params,
    publicKey: toHex(kp.publicKey),
    secretKey: toHex(kp.seed),
    secretKeyFormat: 'fips204-seed',
    createdAt: new Date().toISOString(),
  };
  // Only miners receive sealed updates; a client's key file stays as it was.
  const kem = role === 'miner' ? generateKemKey() : undefined;
  if (kem) json.kem = [kem.json];
  return { identity: { id, role, publicKey: kp.publicKey, key, kemKeys: kem ? [kem.key] : [] }, json };
}

/** Write a key file with mode 0600. Refuses to replace an existing file unless `force`. */
export async function writeKeyFile(path: string, json: KeyFileJson, opts: { force?: boolean } = {}): Promise<void> {
  let fh;
  try {
    // 'wx' fails if the file exists: no window in which an existing key is truncated.
    fh = await open(path, opts.force ? 'w' : 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new BflError(ErrorCode.BAD_KEY_FILE, `${path} already exists; pass --force to overwrite it`);
    }
    throw e;
  }
  try {
    await fh.chmod(0o600); // also when overwriting a file that had looser permissions
    await fh.writeFile(JSON.stringify(json, null, 2) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Add a fresh libp2p Ed25519 identity to a key file's JSON. */
export async function withPeerKey(json: KeyFileJson): Promise<KeyFileJson> {
  const { generateKeyPair, privateKeyToProtobuf } = await import('@libp2p/crypto/keys');
  const { peerIdFromPrivateKey } = await import('@libp2p/peer-id');
  const key = await generateKeyPair('Ed25519');
  return { ...json, peerKey: toHex(privateKeyToProtobuf(key)), peerId: peerIdFromPrivateKey(key).toString() };
}

/** The libp2p private key of a key file (BAD_KEY_FILE if it has none). */
export async function loadPeerKey(path: string) {
  const j = JSON.parse(await readFile(path, 'utf8')) as Partial<KeyFileJson>;
  if (typeof j.peerKey !== 'string') throw new BflError(ErrorCode.BAD_KEY_FILE, `key file ${path} has no peerKey (libp2p identity); create it with bfl-node keygen or init`);
  const { privateKeyFromProtobuf } = await import('@libp2p/crypto/keys');
  try {
    return privateKeyFromProtobuf(fromHex(j.peerKey));
  } catch (e) {
    throw new BflError(ErrorCode.BAD_KEY_FILE, `key file ${path}: bad peerKey (${(e as Error).message})`);
  }
}

export async function loadKeyFile(path: string, mldsa: MlDsa = defaultMlDsa()): Promise<Identity> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new BflError(ErrorCode.BAD_KEY_FILE, `cannot read key file ${path}: ${(e as Error).message}`);
  }
  const st = await stat(path);
  if ((st.mode & 0o077) !== 0) {
    throw new BflError(ErrorCode.BAD_KEY_FILE, `key file ${path} is readable by others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 ${path}`);
  }
  return parseKeyFile(text, path, mldsa);
}

export function parseKeyFile(text: string, where: string, mldsa: MlDsa = defaultMlDsa()): Identity {
  const bad = (msg: string) => new BflError(ErrorCode.BAD_KEY_FILE, `key file ${where}: ${msg}`);
  let j: Partial<KeyFileJson>;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw bad(`not JSON (${(e as Error).message})`);
  }
  if (j === null || typeof j !== 'object') throw bad('expected a JSON object');
  if (j.algorithm !== DEFAULT_PARAMS || mldsa.params !== DEFAULT_PARAMS) {
    throw bad(`algorithm must be ${DEFAULT_PARAMS} (the network's parameter set), got ${JSON.stringify(j.algorithm)}`);
  }
  if (j.role !== 'miner' && j.role !== 'client') throw bad(`role must be "miner" or "client", got ${JSON.stringify(j.role)}`);
  let id: string;
  let seed: Uint8Array;
  let publicKey: Uint8Array;
  try {
    id = assertId(j.id, 'id');
    seed = fromHex(String(j.secretKey), 32);
    publicKey = fromHex(String(j.publicKey));
  } catch (e) {
    throw bad((e as Error).message);
  }
  const key = mldsa.signingKey(seed);
  if (Buffer.compare(Buffer.from(key.publicKey), Buffer.from(publicKey)) !== 0) {
    throw bad('publicKey does not match the secret key (damaged or edited file)');
  }
  return { id, role: j.role, publicKey, key, kemKeys: parseKemKeys(j.kem, bad) };
}

/**
 * Rotate a miner's ML-KEM key in its key file (`bfl-node keygen --rotate-kem`): a fresh key
 * valid from `now`, the older ones accepted until `now + overlapMs` (kem-keys.ts). The daemon
 * announces the new key in its peer record from its next start.
 */
export async function rotateKemInKeyFile(path: string, now: number, opts: { validForMs?: number; overlapMs?: number } = {}): Promise<{ json: KeyFileJson; key: KemKey }> {
  const identity = await loadKeyFile(path);
  if (identity.role !== 'miner') throw new BflError(ErrorCode.BAD_KEY_FILE, `key file ${path} is a client's; only miners hold ML-KEM keys`);
  const json = JSON.parse(await readFile(path, 'utf8')) as KeyFileJson;
  const old = identity.kemKeys ?? [];
  const keys = old.length === 0 ? [generateKemKey().key] : rotateKemKeys(old, now, opts);
  json.kem = keys.map((k, i) => ({ ...kemKeyToJson(k), createdAt: json.kem?.[i]?.createdAt ?? new Date(now).toISOString() }));
  await writeKeyFile(path, json, { force: true });
  return { json, key: keys[keys.length - 1] };
}
