import { describe, expect, it } from 'vitest';
import { ChainStore } from '../../src/chain/store.ts';
import { UpdatePool, poolKey } from '../../src/chain/update-pool.ts';
import { SigningContext } from '../../src/core/contexts.ts';
import { claimOfRecord, encodeUpdateClaim } from '../../src/core/encoding.ts';
import { BflError, ErrorCode } from '../../src/core/errors.ts';
import { sha256 } from '../../src/core/hash.ts';
import { encodeSignedUpdate } from '../../src/core/update.ts';
import { parseNetworkConfig } from '../../src/config/network.ts';
import { generateIdentity } from '../../src/crypto/keyfile.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { protocols } from '../../src/net/protocols.ts';
import { UpdateFetcher } from '../../src/node/update-fetcher.ts';
import { UpdateIntake, type UpdateIntakeComponents, type UpdateIntakeInit } from '../../src/node/update-intake.ts';
import { Verdicts } from '../../src/node/verdicts.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { makeNetwork, mineBlock, nextAggregation, signedRecord } from '../helpers/network.ts';
import { tmpDir } from '../helpers/tmp.ts';

const NOW = 1_700_001_000_000;

/** The intake's unrecorded set on a real store and pool; the network parts are never called here. */
async function setUp() {
  const net = makeNetwork({ phi: 2 });
  const store = await ChainStore.open({ datadir: await tmpDir('bfl-intake-chain-'), params: net.params, signatures: new InThreadVerifier(), now: () => NOW });
  const pool = await UpdatePool.open(await tmpDir('bfl-intake-pool-'));
  const unused = {} as never;
  const components: UpdateIntakeComponents = { store, pool, fetcher: { onStored: () => {} } as never, transport: unused, peers: unused, verdicts: unused, clock: unused, logger: unused };
  const intake = new UpdateIntake({ config: unused, minerId: net.miners[0].id } as UpdateIntakeInit, components);
  const add = (clientIdx: number, baseModelHash: Uint8Array, seed: number, createdAt = NOW) => {
    const payload = new Uint8Array(16).fill(seed);
    return pool.add({ clientId: net.clients[clientIdx].id, minerId: net.miners[0].id, baseModelHash, updateDigest: sha256(payload), sampleCount: 10, createdAt, signature: new Uint8Array(8), payloadBytes: payload.length, payload }, NOW);
  };
  return { net, store, pool, intake, add, close: async () => (await store.close(), await pool.close()) };
}

describe('update intake', () => {
  it('an update built on a model that is not on the canonical chain is not counted as unrecorded (it can never be recorded here)', async () => {
    const { store, intake, add, close } = await setUp();
    try {
      await add(0, store.tip.modelHash, 1); // built on the genesis model: recordable
      await add(1, sha256(new Uint8Array([9])), 2); // built on a model of a branch we do not hold
      await intake.recompute();
      expect(intake.size).toBe(1);
      const candidates = await intake.candidates(10);
      expect(candidates.map((e) => e.baseModelHash)).toEqual([store.tip.modelHash]);
      // a new global model on the tip brings back the pool's updates built on it (and only those)
      await intake.readmit(sha256(new Uint8Array([9])));
      expect(intake.size).toBe(2);
      await intake.candidates(10); // the model is still not on our chain: dropped again
      expect(intake.size).toBe(1);
    } finally {
      await close();
    }
  });

  it('the chain checks, remembered per tip, follow the tip: recorded once a block records the update, a new model known once its block connects', async () => {
    const { net, store, intake, close } = await setUp();
    try {
      const record = (c: number, seed: number) => signedRecord(net, net.clients[c], net.miners[0].id, store.tip.modelHash, { digest: sha256(new Uint8Array([seed])) });
      const r1 = record(0, 1);
      expect(await intake.isRecorded(r1)).toBe(false);
      expect(await intake.isRecorded(r1)).toBe(false); // remembered
      expect(await intake.baseModelKnown(store.tip.modelHash)).toBe(true);
      const b1 = mineBlock(net, store.tip, net.miners[0], { records: [r1] });
      expect((await store.addBlock(b1)).status).toBe('connected');
      expect(await intake.isRecorded(r1)).toBe(true);
      // ϕ = 2: the next record brings an aggregation and a new global model
      const r2 = record(1, 2);
      const agg = nextAggregation(net, store.tip, [r2])!;
      expect(await intake.baseModelKnown(agg.modelHash)).toBe(false);
      expect((await store.addBlock(mineBlock(net, store.tip, net.miners[0], { records: [r2], aggregation: agg }))).status).toBe('connected');
      expect(await intake.baseModelKnown(agg.modelHash)).toBe(true);
      expect(await intake.isRecorded(r2)).toBe(true);
    } finally {
      await close();
    }
  });

  it('one update per client per aggregation: the newest (ties by digest, whatever the arrival order); later ones wait, older ones are superseded', async () => {
    const pick = async (order: number[]) => {
      const { net, store, pool, intake, add, close } = await setUp();
      try {
        const base = store.tip.modelHash;
        // client-1: four updates, two of them created at the same instant (the newest); client-2: one
        const c1 = [
          { seed: 1, at: NOW - 3000 },
          { seed: 2, at: NOW - 1000 },
          { seed: 3, at: NOW - 1000 },
          { seed: 4, at: NOW - 2000 },
        ];
        for (const i of order) await add(0, base, c1[i].seed, c1[i].at);
        await add(1, base, 9, NOW - 5000);
        await intake.recompute();
        const first = await intake.candidates(64);
        const tie = [2, 3].map((seed) => sha256(new Uint8Array(16).fill(seed))).sort(Buffer.compare)[0];
        expect(first.map((e) => e.clientId).sort()).toEqual([net.clients[0].id, net.clients[1].id]);
        expect(first.find((e) => e.clientId === net.clients[0].id)!.updateDigest).toEqual(tie);
        // a block records client-1's newest (ϕ = 2 is not reached): client-1 has voted, its other updates wait
        const vote = first.find((e) => e.clientId === net.clients[0].id)!;
        const r = signedRecord(net, net.clients[0], net.miners[0].id, base, { digest: vote.updateDigest, createdAt: vote.createdAt });
        await store.addBlock(mineBlock(net, store.tip, net.miners[0], { records: [r], timestamp: NOW }));
        intake.recorded([r]);
        expect((await intake.candidates(64)).map((e) => e.clientId)).toEqual([net.clients[1].id]);
        expect(intake.size).toBe(1);
        // a newer update of client-1 arrives and waits too; the older ones are superseded for good
        await add(0, base, 5, NOW);
        await intake.recompute(); // as after a reorg: the same answer from the chain
        expect((await intake.candidates(64)).map((e) => e.clientId)).toEqual([net.clients[1].id]);
        // the aggregation: client-1 votes again, with the newer update only
        const r2 = signedRecord(net, net.clients[1], net.miners[0].id, base, { digest: sha256(new Uint8Array(16).fill(9)), createdAt: NOW - 5000 });
        await store.addBlock(mineBlock(net, store.tip, net.miners[0], { records: [r2], aggregation: nextAggregation(net, store.tip, [r2]), timestamp: NOW }));
        intake.recorded([r2]);
        await intake.readmit(store.tip.modelHash);
        const next = await intake.candidates(64);
        expect(next.map((e) => [e.clientId, e.key])).toEqual([[net.clients[0].id, poolKey(net.clients[0].id, sha256(new Uint8Array(16).fill(5)))]]);
        expect(pool.size).toBe(6);
        // the payloads the recorded vote superseded (client-1's three older ones; not the vote, not the newer one, not client-2's)
        const key = (seed: number) => poolKey(net.clients[0].id, sha256(new Uint8Array(16).fill(seed)));
        expect((await intake.supersededBy([r])).sort()).toEqual([1, 2, 3, 4].map(key).filter((k) => k !== vote.key).sort());
        return first.map((e) => e.key);
      } finally {
        await close();
      }
    };
    expect(await pick([0, 1, 2, 3])).toEqual(await pick([3, 2, 1, 0]));
  });
  it("a client's update with the most samples is recorded first (an offline average is not superseded by the regular update after it); the later one waits", async () => {
    const { net, store, pool, intake, close } = await setUp();
    try {
      const base = store.tip.modelHash;
      const put = (seed: number, sampleCount: number, createdAt: number) => {
        const payload = new Uint8Array(16).fill(seed);
        return pool.add({ clientId: net.clients[0].id, minerId: net.miners[0].id, baseModelHash: base, updateDigest: sha256(payload), sampleCount, createdAt, signature: new Uint8Array(8), payloadBytes: 16, payload }, NOW);
      };
      await put(1, 300, NOW - 1000); // the average of 3 buffered updates
      await put(2, 100, NOW); // the next regular update, a moment later
      await intake.recompute();
      const [first] = await intake.candidates(64);
      expect(first.sampleCount).toBe(300);
      const r = signedRecord(net, net.clients[0], net.miners[0].id, base, { digest: first.updateDigest, createdAt: first.createdAt });
      await store.addBlock(mineBlock(net, store.tip, net.miners[0], { records: [{ ...r }], timestamp: NOW }));
      intake.recorded([r]);
      expect(await intake.candidates(64)).toEqual([]); // waits for the aggregation, not superseded (created later)
      await intake.recompute();
      expect(intake.size).toBe(0);
      // another client closes the round (ϕ = 2): the regular update is next
      const other = signedRecord(net, net.clients[1], net.miners[0].id, base, { createdAt: NOW });
      await store.addBlock(mineBlock(net, store.tip, net.miners[0], { records: [other], aggregation: nextAggregation(net, store.tip, [other]), timestamp: NOW }));
      intake.recorded([other]);
      expect((await intake.candidates(64)).map((e) => e.sampleCount)).toEqual([100]);
    } finally {
      await close();
    }
  });
});

describe('per-client upload rate limit', () => {
  /** The intake's submit handler on a real store, pool, fetcher and signature check; the transport only records the handlers. */
  async function setUpSubmit(p2p: { clientUpdatesPerMinute: number; clientUpdateBurst: number }) {
    const net = makeNetwork({ phi: 2, clients: 2 });
    let now = NOW;
    const clock = { now: () => now } as never;
    const store = await ChainStore.open({ datadir: await tmpDir('bfl-intake-chain-'), params: net.params, signatures: new InThreadVerifier(), now: () => now });
    const pool = await UpdatePool.open(await tmpDir('bfl-intake-pool-'));
    const config = { networkId: net.params.networkId, genesisTime: net.params.genesisTime, chain: { maxFutureMs: net.params.maxFutureMs }, p2p: { maxUpdateBytes: 1024, requestTimeoutMs: 1000, sealUpdates: false, ...p2p } } as never;
    const handlers = new Map<string, (req: Uint8Array, peer: string) => Promise<Uint8Array>>();
    const transport = { serve: async (proto: string, h: (req: Uint8Array, peer: string) => Promise<Uint8Array>) => void handlers.set(proto, h), subscribe: () => {}, publish: async () => {} } as never;
    // every uploader is an admitted member here (admission itself: test/unit/net-harden.test.ts)
    const peers = { penalise: () => {}, info: () => undefined, admit: async () => ({ memberId: 'client', role: 'client' }), member: async () => ({ memberId: 'client', role: 'client' }) } as never;
    const verdicts = new Verdicts({ peers, logger: silentLogger });
    const fetcher = new UpdateFetcher({ config, membership: store.membership, pool, transport, peers, verifier: new InThreadVerifier(), verdicts, clock, logger: silentLogger }, net.params.initialModel.length);
    const intake = new UpdateIntake({ config, minerId: net.miners[0].id } as UpdateIntakeInit, { store, pool, fetcher, transport, peers, verdicts, clock, logger: silentLogger });
    await intake.start();
    let seq = 0;
    const upload = async (client: number, o: { forged?: boolean } = {}): Promise<string> => {
      const payload = new Uint8Array(net.params.initialModel.length).fill(++seq);
      const u = { clientId: net.clients[client].id, minerId: net.miners[0].id, baseModelHash: store.tip.modelHash, updateDigest: sha256(payload), sampleCount: 10, createdAt: now, payloadBytes: payload.length, payload };
      const signature = net.clients[o.forged ? 1 - client : client].key.sign(encodeUpdateClaim(claimOfRecord(net.params.networkId, u)), SigningContext.update);
      try {
        await handlers.get(protocols(net.params.networkId).submit)!(encodeSignedUpdate({ ...u, signature }), 'peer');
        return 'ok';
      } catch (e) {
        return e instanceof BflError ? `${e.code}/${e.action}` : String(e);
      }
    };
    return { upload, tick: (ms: number) => void (now += ms), close: async () => (await store.close(), await pool.close()) };
  }

  it('refuses a client beyond its burst and rate with CLIENT_RATE_LIMITED (IGNORE); forged uploads in its name do not spend its budget; other clients are unaffected', async () => {
    const { upload, tick, close } = await setUpSubmit({ clientUpdatesPerMinute: 60, clientUpdateBurst: 3 });
    try {
      // uploads signed by another key fail the signature check and cost client-1 nothing
      for (let i = 0; i < 4; i++) expect(await upload(0, { forged: true })).toBe('BAD_SIGNATURE/REJECT');
      expect([await upload(0), await upload(0), await upload(0)]).toEqual(['ok', 'ok', 'ok']);
      expect(await upload(0)).toBe(`${ErrorCode.CLIENT_RATE_LIMITED}/IGNORE`);
      expect(await upload(1)).toBe('ok');
      tick(1000); // one token a second at 60 a minute
      expect(await upload(0)).toBe('ok');
      expect(await upload(0)).toBe(`${ErrorCode.CLIENT_RATE_LIMITED}/IGNORE`);
      tick(60_000); // refilled to the burst, not beyond
      expect([await upload(0), await upload(0), await upload(0), await upload(0)]).toEqual(['ok', 'ok', 'ok', `${ErrorCode.CLIENT_RATE_LIMITED}/IGNORE`]);
    } finally {
      await close();
    }
  });

  it('the limit settings are checked by the config: a negative rate or a burst below 1 is one BAD_CONFIG line naming the path', () => {
    const pk = generateIdentity('m', 'miner').json.publicKey;
    const base = { networkId: 'n', genesisTime: 0, members: [{ id: 'miner-1', role: 'miner', publicKey: pk }] };
    const problem = (p2p: Record<string, unknown>) => {
      try {
        parseNetworkConfig({ ...base, p2p } as never);
        return 'NO_ERROR';
      } catch (e) {
        expect((e as BflError).code).toBe(ErrorCode.BAD_CONFIG);
        return (e as BflError).message;
      }
    };
    expect(problem({ clientUpdatesPerMinute: -1 })).toMatch(/^p2p\.clientUpdatesPerMinute: expected a number >= 0/);
    expect(problem({ clientUpdateBurst: 0 })).toMatch(/^p2p\.clientUpdateBurst: expected an integer >= 1/);
    expect(problem({ clientUpdatesPerMinute: 0, clientUpdateBurst: 1 })).toBe('NO_ERROR');
  });

  it('0 updates a minute turns the limit off', async () => {
    const { upload, close } = await setUpSubmit({ clientUpdatesPerMinute: 0, clientUpdateBurst: 1 });
    try {
      for (let i = 0; i < 5; i++) expect(await upload(0)).toBe('ok');
    } finally {
      await close();
    }
  });
});
