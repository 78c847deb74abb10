import { describe, expect, it } from 'vitest';
import { ChainAggregation, type UpdateSource } from '../../src/chain/aggregation.ts';
import { InThreadAggregationEngine, aggregatorOf } from '../../src/chain/aggregation-engine.ts';
import { stateFromJson, stateToJson } from '../../src/chain/state-json.ts';
import { ChainStore } from '../../src/chain/store.ts';
import { aggregationConfigOfRules, defaultAggregationConfig, rulesOf } from '../../src/config/network.ts';
import { toHex } from '../../src/core/bytes.ts';
import { encodeTx } from '../../src/core/encoding.ts';
import { sha256 } from '../../src/core/hash.ts';
import { deltaToPayload } from '../../src/core/update.ts';
import { pendingOf, sortedPending } from '../../src/core/validation.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { makeNetwork, signedRecord } from '../helpers/network.ts';
import { tmpDir } from '../helpers/tmp.ts';

const NOW = 1_700_001_000_000;

describe('an aggregation weighs the claim the chain recorded, not the one a pool kept', () => {
  it('two miners whose pools kept other claims for the same payloads (other sample counts and bases) compute the same aggregation', async () => {
    const net = makeNetwork({ phi: 3, clients: 3 });
    const store = await ChainStore.open({ datadir: await tmpDir('bfl-claim-'), params: net.params, signatures: new InThreadVerifier(), now: () => NOW });
    const tip = store.tip;
    const payloads = [0.1, -0.2, 0.3].map((x, i) => deltaToPayload(Float32Array.from({ length: 8 }, (_, k) => x * (k + 1 + i))));
    const records = payloads.map((p, i) => signedRecord(net, net.clients[i], net.miners[0].id, tip.modelHash, { digest: sha256(p) }));
    // miner A's pool holds the recorded claims; miner B's holds other claims by the same clients for the same payloads
    const pool = (claim: (i: number) => { sampleCount: number; baseModelHash: Uint8Array }): UpdateSource => ({
      get: async (_c, d) => {
        const i = payloads.findIndex((p) => toHex(sha256(p)) === toHex(d));
        return i < 0 ? undefined : { payload: payloads[i], ...claim(i) };
      },
    });
    const fedavg = () => new InThreadAggregationEngine(aggregatorOf({ ...defaultAggregationConfig, aggregator: 'fedavg', stalenessDamping: 0.5 }));
    const a = new ChainAggregation({ engine: fedavg(), updates: pool((i) => ({ sampleCount: records[i].sampleCount, baseModelHash: records[i].baseModelHash })) });
    const b = new ChainAggregation({ engine: fedavg(), updates: pool((i) => ({ sampleCount: 100 + 900 * i, baseModelHash: new Uint8Array(32).fill(i) })) });
    const pending = sortedPending(records.map(pendingOf));
    const txA = await a.compute(store, tip, pending);
    const txB = await b.compute(store, tip, pending);
    expect(toHex(encodeTx(txB))).toBe(toHex(encodeTx(txA)));
    // the control: with the pool's claims (the pending list without the recorded fields, as before) they differ
    const bare = pending.map((p) => ({ clientId: p.clientId, updateDigest: p.updateDigest }));
    const b2 = new ChainAggregation({ engine: fedavg(), updates: pool((i) => ({ sampleCount: 100 + 900 * i, baseModelHash: records[i].baseModelHash })) });
    expect(toHex(encodeTx(await b2.compute(store, tip, bare)))).not.toBe(toHex(encodeTx(txA)));
    await store.close();
  });

  it('a chain state keeps the recorded claims through its stored form, and reads the older form without them', () => {
    const net = makeNetwork({ clients: 2 });
    const r = signedRecord(net, net.clients[0], net.miners[0].id, new Uint8Array(32).fill(9));
    const state = { hash: new Uint8Array(32).fill(1), parentHash: new Uint8Array(32), height: 1, timestamp: NOW, work: 5n, rounds: 1, anchor: new Uint8Array(32), modelHash: new Uint8Array(32), pending: [pendingOf(r)] };
    const back = stateFromJson(JSON.parse(JSON.stringify(stateToJson(state))));
    expect(back.pending[0]).toEqual({ clientId: r.clientId, updateDigest: r.updateDigest, baseModelHash: r.baseModelHash, sampleCount: r.sampleCount });
    const older = { ...stateToJson(state), pending: [[r.clientId, toHex(r.updateDigest)] as [string, string]] };
    expect(stateFromJson(older).pending[0]).toEqual({ clientId: r.clientId, updateDigest: r.updateDigest });
  });

  it('the genesis rules read back give the aggregator they were made from (chain verify), with and without staleness damping', () => {
    for (const stalenessDamping of [0, 0.5]) {
      const cfg = { ...defaultAggregationConfig, stalenessDamping };
      expect(aggregationConfigOfRules(rulesOf(cfg))).toEqual(cfg);
      expect(aggregatorOf(aggregationConfigOfRules(rulesOf(cfg))).name).toBe('bfl-mec');
    }
  });
});
