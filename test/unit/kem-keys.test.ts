import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseNetworkConfig, loadNetworkConfig } from '../../src/config/network.ts';
import { toHex } from '../../src/core/bytes.ts';
import { SigningContext } from '../../src/core/contexts.ts';
import { BflError } from '../../src/core/errors.ts';
import { paramsDigest, type ChainParams, paramsFromJson, paramsToJson } from '../../src/core/params.ts';
import { KemDirectory, NO_END, decodeKemAnnouncement, encodeKemAnnouncement, kemAnnouncementMessage, rotateKemKeys, signKemAnnouncement } from '../../src/crypto/kem-keys.ts';
import { generateIdentity, loadKeyFile, parseKeyFile, rotateKemInKeyFile, writeKeyFile } from '../../src/crypto/keyfile.ts';
import { NativeMlDsa } from '../../src/crypto/mldsa.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { KEM_SIZES, NativeMlKem } from '../../src/crypto/mlkem.ts';
import { KemKeyRing, SealContext, seal } from '../../src/crypto/seal.ts';
import { decodePeerRecord, encodePeerRecord } from '../../src/net/messages.ts';
import { codeOf } from '../helpers/errors.ts';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(BflError);
    return (e as BflError).code;
  }
  return 'NO_ERROR';
}

const kem = new NativeMlKem();

describe('KEM keys in key files', () => {
  it('a miner key file holds one ML-KEM-768 key (seed form) that loads back; a client has none', async () => {
    const dir = await tmpDir('bfl-kem-');
    const { identity, json } = generateIdentity('miner-1', 'miner');
    expect(json.kem).toHaveLength(1);
    expect(json.kem![0]).toMatchObject({ algorithm: 'ML-KEM-768', secretKeyFormat: 'fips203-seed', notBefore: 0, notAfter: null });
    expect(json.kem![0].secretKey).toHaveLength(KEM_SIZES.seed * 2);
    await writeKeyFile(join(dir, 'm.json'), json);
    const loaded = await loadKeyFile(join(dir, 'm.json'));
    expect(toHex(loaded.kemKeys![0].publicKey)).toBe(toHex(identity.kemKeys![0].publicKey));
    expect(toHex(kem.keygen(loaded.kemKeys![0].seed).publicKey)).toBe(json.kem![0].publicKey);
    expect(generateIdentity('client-1', 'client').json.kem).toBeUndefined();
  });

  it('key files from before ML-KEM still load (no KEM keys)', () => {
    const { json } = generateIdentity('miner-1', 'miner');
    delete json.kem;
    expect(parseKeyFile(JSON.stringify(json), 'old.json').kemKeys).toEqual([]);
  });

  it('a damaged KEM entry is BAD_KEY_FILE', () => {
    const { json } = generateIdentity('miner-1', 'miner');
    const bad = (patch: object) => codeOf(() => parseKeyFile(JSON.stringify({ ...json, kem: [{ ...json.kem![0], ...patch }] }), 'k.json'));
    expect(bad({ publicKey: json.kem![0].publicKey.replace(/^../, '00') })).toBe('BAD_KEY_FILE');
    expect(bad({ secretKey: 'abcd' })).toBe('BAD_KEY_FILE');
    expect(bad({ algorithm: 'ML-KEM-512' })).toBe('BAD_KEY_FILE');
    expect(bad({ notAfter: -1 })).toBe('BAD_KEY_FILE');
    expect(codeOf(() => parseKeyFile(JSON.stringify({ ...json, kem: 'x' }), 'k.json'))).toBe('BAD_KEY_FILE');
  });

  it('rotation appends a key valid from now and ends the older ones after the overlap; the first stays first', async () => {
    const dir = await tmpDir('bfl-kem-');
    const file = join(dir, 'm.json');
    const { json } = generateIdentity('miner-1', 'miner');
    await writeKeyFile(file, json);
    const now = 1_800_000_000_000;
    await rotateKemInKeyFile(file, now, { overlapMs: 60_000, validForMs: 86_400_000 });
    const id = await loadKeyFile(file);
    expect(id.kemKeys!.map((k) => [k.notBefore, k.notAfter])).toEqual([
      [0, now + 60_000],
      [now, now + 86_400_000],
    ]);
    expect(toHex(id.kemKeys![0].publicKey)).toBe(json.kem![0].publicKey);
    const client = join(dir, 'c.json');
    await writeKeyFile(client, generateIdentity('client-1', 'client').json);
    expect(await code(rotateKemInKeyFile(client, now))).toBe('BAD_KEY_FILE');

    // the recipient side: the old key opens until the overlap ends, then KEM_KEY_EXPIRED
    const ring = new KemKeyRing(id.kemKeys!);
    expect(toHex(ring.current(now + 1)!.publicKey)).toBe(toHex(id.kemKeys![1].publicKey));
    const aad = new Uint8Array([1]);
    const toOld = () => seal({ context: SealContext.upload, recipientPublicKey: id.kemKeys![0].publicKey, plaintext: new Uint8Array(8), associatedData: aad });
    expect(codeOf(() => ring.open(SealContext.upload, toOld(), aad, now + 59_999, 100))).toBe('NO_ERROR');
    expect(codeOf(() => ring.open(SealContext.upload, toOld(), aad, now + 60_000, 100))).toBe('KEM_KEY_EXPIRED');
  });

  it('rotateKemKeys without a validity keeps no end', () => {
    const keys = rotateKemKeys([{ ...kem.keygen(), notBefore: 0, notAfter: NO_END }], 1000, { overlapMs: 5 });
    expect(keys.map((k) => [k.notBefore, k.notAfter])).toEqual([
      [0, 1005],
      [1000, NO_END],
    ]);
  });
});

describe('KEM keys in the network config and genesis', () => {
  const mk = (id: string, role: 'miner' | 'client') => generateIdentity(id, role).identity;
  const miner = mk('miner-1', 'miner');
  const client = mk('client-1', 'client');
  const base = (m: object) => ({ networkId: 't', genesisTime: 1, members: [{ id: 'miner-1', role: 'miner', publicKey: toHex(miner.publicKey), ...m }, { id: 'client-1', role: 'client', publicKey: toHex(client.publicKey) }] });

  it('kemPublicKey (hex) is read, checked, and committed by the genesis digest', () => {
    const cfg = parseNetworkConfig(base({ kemPublicKey: toHex(miner.kemKeys![0].publicKey) }));
    expect(toHex(cfg.members[0].kemPublicKey!)).toBe(toHex(miner.kemKeys![0].publicKey));
    expect(codeOf(() => parseNetworkConfig(base({ kemPublicKey: 'abcd' })))).toBe('BAD_CONFIG');
    const withClientKem = base({});
    (withClientKem.members[1] as Record<string, unknown>).kemPublicKey = toHex(miner.kemKeys![0].publicKey);
    expect(codeOf(() => parseNetworkConfig(withClientKem))).toBe('BAD_CONFIG');

    const params = (members: ChainParams['members']): ChainParams => ({ networkId: 't', genesisTime: 1, difficulty: 1n, phi: 1, blockReward: 1n, baseReward: 1n, maxBlockBytes: 4096, maxFutureMs: 0, members, initialModel: new Uint8Array(8), rules: '{}' });
    const without = params(parseNetworkConfig(base({})).members);
    const withKem = params(cfg.members);
    const other = params(parseNetworkConfig(base({ kemPublicKey: toHex(kem.keygen().publicKey) })).members);
    expect(toHex(paramsDigest(withKem))).not.toBe(toHex(paramsDigest(without)));
    expect(toHex(paramsDigest(withKem))).not.toBe(toHex(paramsDigest(other)));
    expect(toHex(paramsDigest(paramsFromJson(paramsToJson(withKem))))).toBe(toHex(paramsDigest(withKem)));
    expect(paramsToJson(without).members[0]).not.toHaveProperty('kemPublicKey');
  });

  it('a keyFile member gets the first KEM key of its file, also after a rotation', async () => {
    const dir = await tmpDir('bfl-kem-');
    const { json } = generateIdentity('miner-1', 'miner');
    await writeKeyFile(join(dir, 'm.json'), json);
    const c = { networkId: 't', genesisTime: 1, members: [{ id: 'miner-1', role: 'miner', keyFile: 'm.json' }] };
    await writeFile(join(dir, 'net.json'), JSON.stringify(c));
    expect(toHex((await loadNetworkConfig(join(dir, 'net.json'))).members[0].kemPublicKey!)).toBe(json.kem![0].publicKey);
    await rotateKemInKeyFile(join(dir, 'm.json'), Date.now());
    expect(JSON.parse(await readFile(join(dir, 'm.json'), 'utf8')).kem).toHaveLength(2);
    expect(toHex((await loadNetworkConfig(join(dir, 'net.json'))).members[0].kemPublicKey!)).toBe(json.kem![0].publicKey);
    expect((await loadNetworkConfig(join(dir, 'net.json'))).p2p.sealUpdates).toBe(true);
  });
});

describe('KEM key announcements', () => {
  const mldsa = new NativeMlDsa();
  const miner = generateIdentity('miner-1', 'miner', mldsa).identity;
  const next = kem.keygen();

  it('signed by the ML-DSA key; round trip; any change fails verification', () => {
    const a = signKemAnnouncement('net', 'miner-1', miner.key, { publicKey: next.publicKey, notBefore: 10, notAfter: NO_END });
    const b = decodeKemAnnouncement(encodeKemAnnouncement(a));
    expect(b.notAfter).toBe(NO_END);
    const ok = (x: typeof a, net = 'net') => mldsa.verify(miner.publicKey, kemAnnouncementMessage(net, x), x.signature, SigningContext.kemKey);
    expect(ok(b)).toBe(true);
    expect(ok(b, 'other-net')).toBe(false);
    expect(ok({ ...b, notBefore: 11 })).toBe(false);
    expect(ok({ ...b, publicKey: miner.kemKeys![0].publicKey })).toBe(false);
    expect(mldsa.verify(miner.publicKey, kemAnnouncementMessage('net', b), b.signature, SigningContext.peer)).toBe(false);
    expect(codeOf(() => decodeKemAnnouncement(encodeKemAnnouncement(a).subarray(5)))).toBe('MALFORMED');
    expect(codeOf(() => decodeKemAnnouncement(encodeKemAnnouncement({ ...a, notAfter: 10 })))).toBe('MALFORMED');
  });

  it('travel in peer records; records without one still decode', () => {
    const a = encodeKemAnnouncement(signKemAnnouncement('net', 'miner-1', miner.key, { publicKey: next.publicKey, notBefore: 10, notAfter: 20 }));
    const rec = { memberId: 'miner-1', peerId: '12D3KooW', signature: new Uint8Array(2420) };
    expect(decodePeerRecord(encodePeerRecord(rec)).kem).toBeUndefined();
    expect(toHex(decodePeerRecord(encodePeerRecord({ ...rec, kem: a })).kem!)).toBe(toHex(a));
  });

  it('the directory seals to the newest started key; committed key until then; none once the newest ended', () => {
    const dir = new KemDirectory([{ id: 'miner-1', kemPublicKey: miner.kemKeys![0].publicKey }, { id: 'client-1' }]);
    expect(toHex(dir.keyFor('miner-1', 5)!)).toBe(toHex(miner.kemKeys![0].publicKey));
    expect(dir.keyFor('client-1', 5)).toBeUndefined();
    dir.learn({ memberId: 'miner-1', publicKey: next.publicKey, notBefore: 100, notAfter: 200, signature: new Uint8Array(0) });
    expect(toHex(dir.keyFor('miner-1', 99)!)).toBe(toHex(miner.kemKeys![0].publicKey));
    expect(toHex(dir.keyFor('miner-1', 100)!)).toBe(toHex(next.publicKey));
    expect(dir.keyFor('miner-1', 200)).toBeUndefined(); // the new one ended; the older one stays superseded
    const unknown = new KemDirectory();
    expect(unknown.keyFor('miner-1', 1)).toBeUndefined();
    unknown.learn({ memberId: 'miner-1', publicKey: next.publicKey, notBefore: 0, notAfter: NO_END, signature: new Uint8Array(0) });
    expect(toHex(unknown.keyFor('miner-1', 1)!)).toBe(toHex(next.publicKey));
  });
});
