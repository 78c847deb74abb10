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
import { type ChainState, pendingOf, sortedPending } from '../../src/core/validation.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { makeNetwork, mineBlock, signedRecord } from '../helpers/network.ts';
import { sameState } from '../../src/chain/verify.ts';
import { tmpDir } from '../helpers/tmp.ts';

const NOW = 1_700_001_000_000;

/** A fresh chain with three clients' records of three payloads on the genesis model (ϕ = 3). */
async function threeRecords() {
  const net = makeNetwork({ phi: 3, clients: 3 });
  const store = await ChainStore.open({ datadir: await tmpDir('bfl-claim-'), params: net.params, signatures: new InThreadVerifier(), now: () => NOW });
  const tip = store.tip;
  const payloads = [0.1, -0.2, 0.3].map((x, i) => deltaToPayload(Float32Array.from({ length: 8 }, (_, k) => x * (k + 1 + i))));
  const records = payloads.map((p, i) => signedRecord(net, net.clients[i], net.miners[0].id, tip.modelHash, { digest: sha256(p) }));
  return { net, store, tip, payloads, records };
}

describe('an aggregation weighs the claim the chain recorded, not the one a pool kept', () => {
  it('two miners whose pools kept other claims for the same payloads (other sample counts and bases) compute the same aggregation', async () => {
    const { store, tip, payloads, records } = await threeRecords();
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

  it('one miner\'s kept results are keyed by the recorded claims too: another claim on the same parent is computed, not taken from the cache', async () => {
    const { store, tip, payloads, records } = await threeRecords();
    const source: UpdateSource = { get: async (_c, d) => ({ payload: payloads.find((p) => toHex(sha256(p)) === toHex(d))!, sampleCount: 100, baseModelHash: tip.modelHash }) };
    const one = new ChainAggregation({ engine: new InThreadAggregationEngine(aggregatorOf({ ...defaultAggregationConfig, aggregator: 'fedavg' })), updates: source });
    const mine = sortedPending(records.map(pendingOf));
    const theirs = mine.map((p, i) => ({ ...p, sampleCount: 100 + 900 * i })); // a block by another miner, with the clients' other claims
    const a = toHex(encodeTx(await one.compute(store, tip, mine)));
    const b = toHex(encodeTx(await one.compute(store, tip, theirs)));
    expect(b).not.toBe(a);
    const fresh = new ChainAggregation({ engine: new InThreadAggregationEngine(aggregatorOf({ ...defaultAggregationConfig, aggregator: 'fedavg' })), updates: source });
    expect(toHex(encodeTx(await fresh.compute(store, tip, theirs)))).toBe(b);
    await store.close();
  });

  it('pending records of a state stored before the claims were kept are weighed by their record transactions, not the pool\'s claims', async () => {
    const { net, store, tip, payloads, records } = await threeRecords();
    // two records in a block without an aggregation (ϕ = 3); the next block's record makes three
    expect((await store.addBlock(mineBlock(net, tip, net.miners[0], { records: records.slice(0, 2) }))).status).toBe('connected');
    const parent = store.tip;
    expect(parent.pending).toHaveLength(2);
    const oldForm = { ...parent, pending: parent.pending.map((p) => ({ clientId: p.clientId, updateDigest: p.updateDigest })) }; // as read back from a state stored before
    const withThird = (s: ChainState) => sortedPending([...s.pending, pendingOf(records[2])]);
    const source = (sampleCount: (i: number) => number): UpdateSource => ({
      get: async (_c, d) => {
        const i = payloads.findIndex((p) => toHex(sha256(p)) === toHex(d));
        return { payload: payloads[i], sampleCount: sampleCount(i), baseModelHash: tip.modelHash };
      },
    });
    const fedavg = () => new InThreadAggregationEngine(aggregatorOf({ ...defaultAggregationConfig, aggregator: 'fedavg' }));
    const want = await new ChainAggregation({ engine: fedavg(), updates: source(() => 100) }).compute(store, parent, withThird(parent));
    const got = await new ChainAggregation({ engine: fedavg(), updates: source((i) => 100 + 900 * i) }).compute(store, oldForm, withThird(oldForm));
    expect(toHex(encodeTx(got))).toBe(toHex(encodeTx(want)));
    await store.close();
  });

  it('a missing aggregator state is rebuilt from the recorded claims, whatever claims the pool kept', async () => {
    const net = makeNetwork({ phi: 3, clients: 3, modelFloats: 64 });
    // bfl-mec keeps a state; with damping the base each claim names (its τ) changes the model
    const engine = () => new InThreadAggregationEngine(aggregatorOf({ ...defaultAggregationConfig, stalenessDamping: 0.5 }));
    // nearly parallel updates, so that the rule rates them high and the model moves
    const payloads = [0, 1].map((round) => [1, 1.1, 0.9].map((x, i) => deltaToPayload(Float32Array.from({ length: 64 }, (_, k) => 0.01 * (x * Math.sin(k + 1 + round) + 0.05 * Math.cos(7 * k + i))))));
    const recorded = new Map<string, Uint8Array>(); // digest → the base its record names
    const right: UpdateSource = { get: async (_c, d) => ({ payload: payloads.flat().find((p) => toHex(sha256(p)) === toHex(d))!, sampleCount: 100, baseModelHash: recorded.get(toHex(d))! }) };
    const producer = new ChainAggregation({ engine: engine(), updates: right });
    const p = await ChainStore.open({ datadir: await tmpDir('bfl-claim-'), params: net.params, signatures: new InThreadVerifier(), aggregation: producer, now: () => NOW });
    const genesisModel = p.tip.modelHash;
    const blocks = [];
    let firstModel = genesisModel;
    for (const round of [0, 1]) {
      const tip = p.tip;
      // both rounds' records name the genesis model: the second round's are one aggregation old
      const records = payloads[round].map((x, i) => signedRecord(net, net.clients[i], net.miners[0].id, genesisModel, { digest: sha256(x), createdAt: net.params.genesisTime + 1000 + round }));
      for (const r of records) recorded.set(toHex(r.updateDigest), r.baseModelHash);
      const block = mineBlock(net, tip, net.miners[0], { records, aggregation: await producer.compute(p, tip, sortedPending(records.map(pendingOf))), timestamp: net.params.genesisTime + 2000 + round });
      expect((await p.addBlock(block)).status).toBe('connected');
      blocks.push(block);
      if (round === 0) firstModel = p.tip.modelHash;
    }
    const hash = p.tip.hash;
    const expected = await p.aggregatorState(hash);
    expect(expected).toBeDefined();
    // a store written without the check keeps no states; its pool kept the clients' other claims,
    // which name the newest model as the second round's base (τ = 0 instead of 1)
    const z = await ChainStore.open({ datadir: await tmpDir('bfl-claim-'), params: net.params, signatures: new InThreadVerifier(), now: () => NOW });
    for (const b of blocks) await z.addBlock(b);
    expect(await z.aggregatorState(hash)).toBeUndefined();
    const second = new Set(payloads[1].map((x) => toHex(sha256(x))));
    const other: UpdateSource = { get: async (c, d) => ({ ...(await right.get(c, d))!, baseModelHash: second.has(toHex(d)) ? firstModel : genesisModel }) };
    const rebuilt = await new ChainAggregation({ engine: engine(), updates: other }).stateAt(z, hash);
    expect(toHex(rebuilt)).toBe(toHex(expected!));
    await p.close();
    await z.close();
  });

  it('chain verify compares a stored state entry by entry, also one stored half before the recorded claims were kept', () => {
    const net = makeNetwork({ clients: 2 });
    const rs = [0, 1].map((i) => signedRecord(net, net.clients[i], net.miners[0].id, new Uint8Array(32).fill(9)));
    const state = { hash: new Uint8Array(32).fill(1), parentHash: new Uint8Array(32), height: 1, timestamp: NOW, work: 5n, rounds: 1, anchor: new Uint8Array(32), modelHash: new Uint8Array(32), pending: rs.map(pendingOf) };
    const mixed = { ...state, pending: [{ clientId: rs[0].clientId, updateDigest: rs[0].updateDigest }, pendingOf(rs[1])] };
    expect(sameState(mixed, state)).toBe(true);
    expect(sameState(state, state)).toBe(true);
    const wrong = { ...state, pending: [pendingOf(rs[0]), { ...pendingOf(rs[1]), sampleCount: 7 }] };
    expect(sameState(wrong, state)).toBe(false);
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
