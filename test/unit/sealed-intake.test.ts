/**
 * Sealed uploads opened off the event loop (crypto/open-sealed.ts, issue 12): the intake with a
 * worker opener (the daemon's WorkerVerifierPool) or the in-thread one answers every upload
 * with the code the in-thread `UpdateSealing.decode` path gives, stores the same payload, and
 * leaves no temporary file behind a refusal.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ChainStore } from '../../src/chain/store.ts';
import { UpdatePool } from '../../src/chain/update-pool.ts';
import { SigningContext } from '../../src/core/contexts.ts';
import { claimOfRecord, encodeUpdateClaim } from '../../src/core/encoding.ts';
import { BflError } from '../../src/core/errors.ts';
import { sha256 } from '../../src/core/hash.ts';
import { KemDirectory } from '../../src/crypto/kem-keys.ts';
import { NativeMlKem } from '../../src/crypto/mlkem.ts';
import { InThreadOpener, type SealedOpener } from '../../src/crypto/open-sealed.ts';
import { KemKeyRing } from '../../src/crypto/seal.ts';
import { InThreadVerifier, WorkerVerifierPool } from '../../src/crypto/verifier.ts';
import { UpdateSealing, sealedProtocols } from '../../src/net/sealed-updates.ts';
import { UpdateFetcher } from '../../src/node/update-fetcher.ts';
import { UpdateIntake, type UpdateIntakeInit } from '../../src/node/update-intake.ts';
import { Verdicts } from '../../src/node/verdicts.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { makeNetwork } from '../helpers/network.ts';
import { tmpDir } from '../helpers/tmp.ts';

const NOW = 1_700_001_000_000;
const pool = new WorkerVerifierPool({ workers: 1 });
afterAll(() => pool.close());

/** A miner's intake with sealing on, its submit-sealed handler, and a client's sealing towards it. */
async function setUp(opener: SealedOpener | undefined) {
  // 160 kB payloads: several pieces of the worker's decryption (seal.ts, DECRYPT_PIECE_BYTES)
  const net = makeNetwork({ phi: 2, clients: 2, modelFloats: 40_000 });
  const clock = { now: () => NOW } as never;
  const store = await ChainStore.open({ datadir: await tmpDir('bfl-sealed-intake-chain-'), params: net.params, signatures: new InThreadVerifier(), now: () => NOW });
  const poolDir = await tmpDir('bfl-sealed-intake-pool-');
  const updates = await UpdatePool.open(poolDir);
  const config = { networkId: net.params.networkId, genesisTime: net.params.genesisTime, chain: { maxFutureMs: net.params.maxFutureMs }, p2p: { maxUpdateBytes: net.params.initialModel.length, requestTimeoutMs: 1000, sealUpdates: true, clientUpdatesPerMinute: 0, clientUpdateBurst: 1 } } as never;
  const kem = new NativeMlKem();
  const minerKem = kem.keygen();
  const minerId = net.miners[0].id;
  const sealing = new UpdateSealing({ networkId: net.params.networkId, directory: new KemDirectory(), keyRing: new KemKeyRing([{ seed: minerKem.seed, notBefore: 0, notAfter: Number.POSITIVE_INFINITY }], kem) });
  const toMiner = (id = minerId) => new UpdateSealing({ networkId: net.params.networkId, directory: new KemDirectory([{ id, kemPublicKey: minerKem.publicKey }]) });
  const handlers = new Map<string, (req: Uint8Array, peer: string) => Promise<Uint8Array>>();
  const transport = { serve: async (proto: string, h: (req: Uint8Array, peer: string) => Promise<Uint8Array>) => void handlers.set(proto, h), subscribe: () => {}, publish: async () => {} } as never;
  const peers = { penalise: () => {}, info: () => undefined, admit: async () => ({ memberId: 'client', role: 'client' }), member: async () => ({ memberId: 'client', role: 'client' }) } as never;
  const verdicts = new Verdicts({ peers, logger: silentLogger });
  const fetcher = new UpdateFetcher({ config, membership: store.membership, pool: updates, transport, peers, verifier: new InThreadVerifier(), verdicts, clock, logger: silentLogger }, net.params.initialModel.length);
  const intake = new UpdateIntake({ config, minerId } as UpdateIntakeInit, { store, pool: updates, fetcher, transport, peers, verdicts, clock, logger: silentLogger, sealing, opener });
  await intake.start();
  const submit = handlers.get(sealedProtocols(net.params.networkId).submit)!;
  const model = new Float32Array(net.params.initialModel.slice().buffer);
  let seq = 0;
  /** A sealed upload of client 0; `o` spoils one part of it. */
  const upload = (o: { payload?: Float32Array; digestOf?: Uint8Array; signer?: number; to?: string; base?: Uint8Array } = {}) => {
    const payload = new Uint8Array((o.payload ?? Float32Array.from(model, (x, i) => x + (i === 0 ? ++seq : 0))).buffer);
    const u = { clientId: net.clients[0].id, minerId: o.to ?? minerId, baseModelHash: o.base ?? store.tip.modelHash, updateDigest: sha256(o.digestOf ?? payload), sampleCount: 10, createdAt: NOW, payloadBytes: payload.length, payload };
    const signature = net.clients[o.signer ?? 0].key.sign(encodeUpdateClaim(claimOfRecord(net.params.networkId, u)), SigningContext.update);
    return toMiner(o.to).encode({ ...u, signature }, 'upload', o.to ?? minerId, NOW);
  };
  const code = async (req: Uint8Array) => {
    try {
      await submit(req, 'peer');
      return 'OK';
    } catch (e) {
      return e instanceof BflError ? e.code : `not a BflError: ${(e as Error).message}`;
    }
  };
  return { net, model, updates, poolDir, upload, code, stats: () => sealing.stats(), close: async () => (await store.close(), await updates.close()) };
}

describe('sealed uploads opened off the event loop', () => {
  it('the worker, the in-thread opener and the in-thread decode answer every case with the same code; accepted payloads are stored whole, refused ones leave no file', { timeout: 30_000 }, async () => {
    const answers: Record<string, string[]> = {};
    for (const [name, opener] of [['decode', undefined], ['in-thread', new InThreadOpener()], ['worker', pool]] as const) {
      const s = await setUp(opener);
      try {
        const good = s.upload();
        const nan = Float32Array.from(s.model);
        nan[7] = Number.NaN;
        const tampered = s.upload();
        tampered[tampered.length - 3] ^= 1;
        // in the last piece of the worker's decryption (seal.ts, DECRYPT_PIECE_BYTES)
        const lateNan = Float32Array.from(s.model);
        lateNan[lateNan.length - 2] = Number.POSITIVE_INFINITY;
        const tamperedNan = s.upload({ payload: nan });
        tamperedNan[tamperedNan.length - 3] ^= 1;
        const other = Float32Array.from(s.model, (x) => x + 1);
        const whole = s.upload();
        const cases: [string, Uint8Array][] = [
          ['good', good],
          ['replay', good.slice()],
          ['tampered', tampered],
          ['truncated', whole.subarray(0, whole.length - 10)],
          ['wrong digest', s.upload({ payload: other, digestOf: new Uint8Array(8) })],
          ['NaN', s.upload({ payload: nan })],
          ['infinity in the last piece', s.upload({ payload: lateNan })],
          ['tampered NaN', tamperedNan],
          ['wrong digest of a NaN payload', s.upload({ payload: nan, digestOf: new Uint8Array(8) })],
          ['forged signature', s.upload({ signer: 1 })],
          ['other miner', s.upload({ to: s.net.miners[1].id })],
          ['unknown base model', s.upload({ base: sha256(new Uint8Array([1])) })],
          ['second good', s.upload()],
        ];
        const got: string[] = [];
        for (const [, req] of cases) got.push(await s.code(req));
        // the same update sealed afresh: stored already
        const again = s.upload({ payload: other });
        got.push(await s.code(again), await s.code(s.upload({ payload: other })));
        // two copies of one envelope at once: one opens, the other is a replay
        const twice = s.upload();
        got.push((await Promise.all([s.code(twice), s.code(twice.slice())])).sort().join('+'));
        // many at once (the worker takes those that queued while it was busy in one message)
        got.push([...new Set(await Promise.all(Array.from({ length: 10 }, () => s.code(s.upload()))))].join('+'));
        answers[name] = got;
        expect(cases.map(([c], i) => `${c}: ${got[i]}`)).toEqual([
          'good: OK',
          'replay: SEAL_REPLAYED',
          'tampered: SEAL_TAMPERED',
          'truncated: SEAL_TRUNCATED',
          'wrong digest: MALFORMED',
          'NaN: NON_FINITE',
          'infinity in the last piece: NON_FINITE',
          'tampered NaN: SEAL_TAMPERED',
          'wrong digest of a NaN payload: MALFORMED',
          'forged signature: BAD_SIGNATURE',
          'other miner: MALFORMED',
          'unknown base model: UNKNOWN_BASE_MODEL',
          'second good: OK',
        ]);
        expect(got.slice(cases.length)).toEqual(['OK', 'DUPLICATE_RECORD', 'OK+SEAL_REPLAYED', 'OK']);
        // accepted: payload files with the uploaded bytes; nothing temporary left behind
        const stored = s.updates.live();
        expect(stored).toHaveLength(14);
        for (const e of stored) expect(sha256((await s.updates.payload(e.clientId, e.updateDigest))!)).toEqual(e.updateDigest);
        // one payload file per stored update, nothing temporary or refused left behind
        expect((await readdir(join(s.poolDir, 'payloads'))).sort()).toEqual(stored.map((e) => e.key.replace(':', '+')).sort());
        // envelopes that authenticated (the sealing stats in /status): the same count on every path
        got.push(`opened ${s.stats().opened}`);
      } finally {
        await s.close();
      }
    }
    expect(answers['in-thread']).toEqual(answers.decode);
    expect(answers.worker).toEqual(answers.decode);
  });
});
