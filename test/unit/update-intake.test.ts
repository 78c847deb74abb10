import { describe, expect, it } from 'vitest';
import { ChainStore } from '../../src/chain/store.ts';
import { UpdatePool } from '../../src/chain/update-pool.ts';
import { sha256 } from '../../src/core/hash.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { UpdateIntake, type UpdateIntakeComponents, type UpdateIntakeInit } from '../../src/node/update-intake.ts';
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
  const add = (clientIdx: number, baseModelHash: Uint8Array, seed: number) => {
    const payload = new Uint8Array(16).fill(seed);
    return pool.add({ clientId: net.clients[clientIdx].id, minerId: net.miners[0].id, baseModelHash, updateDigest: sha256(payload), sampleCount: 10, createdAt: NOW, signature: new Uint8Array(8), payloadBytes: payload.length, payload }, NOW);
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
});
