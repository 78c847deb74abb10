import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { ChainStore } from '../../src/chain/store.ts';
import { encodeBlock } from '../../src/core/encoding.ts';
import { BflError } from '../../src/core/errors.ts';
import { sha256 } from '../../src/core/hash.ts';
import { blockHash } from '../../src/core/encoding.ts';
import { meetsTarget } from '../../src/core/pow.ts';
import { signBlock } from '../../src/core/block-builder.ts';
import { validateBlock } from '../../src/core/validation.ts';
import { generateIdentity } from '../../src/crypto/keyfile.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { type TestNetwork, forgeBlock, makeNetwork, mineBlock, nextAggregation, signedRecord, simpleAggregation } from '../helpers/network.ts';
import { tmpDir } from '../helpers/tmp.ts';

const NOW = 1_700_000_500_000;
let net: TestNetwork;
let store: ChainStore;

async function open(n = net): Promise<ChainStore> {
  return ChainStore.open({ datadir: await tmpDir('bfl-val-'), params: n.params, signatures: new InThreadVerifier(), now: () => NOW });
}

async function rejection(p: Promise<unknown>): Promise<BflError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(BflError);
    return e as BflError;
  }
  throw new Error('expected the block to be rejected');
}

beforeEach(async () => {
  net = makeNetwork({ clients: 3, miners: 2, phi: 3 });
  store = await open();
  return () => store.close();
});

const [m1, m2] = [0, 1];
const rec = (c = 0, over: { digest?: Uint8Array; createdAt?: number } = {}) => signedRecord(net, net.clients[c], net.miners[m1].id, store.tip.modelHash, over);

describe('a valid chain', () => {
  it('accepts blocks with records, and the aggregation when ϕ is reached', async () => {
    const r1 = [rec(0), rec(1)];
    const b1 = mineBlock(net, store.tip, net.miners[m1], { records: r1 });
    expect((await store.addBlock(b1)).status).toBe('connected');
    expect(store.tip.pending).toHaveLength(2);
    const r2 = [rec(2)];
    const b2 = mineBlock(net, store.tip, net.miners[m2], { records: r2, aggregation: nextAggregation(net, store.tip, r2) });
    expect((await store.addBlock(b2)).status).toBe('connected');
    expect(store.tip.pending).toHaveLength(0);
    expect(store.tip.rounds).toBe(2);
    expect(store.tip.height).toBe(2);
  });
});

it('two clients recording the same update digest can still be aggregated (regression: liveness)', async () => {
  const digest = sha256(Uint8Array.of(7, 7, 7));
  const same = [rec(0, { digest }), rec(1, { digest }), rec(2)];
  const b = mineBlock(net, store.tip, net.miners[m1], { records: same, aggregation: nextAggregation(net, store.tip, same) });
  expect((await store.addBlock(b)).status).toBe('connected');
  expect(store.tip.rounds).toBe(2);
});

describe('one rejection per code', () => {
  it('BAD_POW: a header whose hash misses the target', async () => {
    const good = mineBlock(net, store.tip, net.miners[m1], { records: [rec()] });
    let nonce = good.header.nonce + 1;
    while (meetsTarget(blockHash({ ...good.header, nonce }), net.params.difficulty)) nonce++;
    const bad = signBlock({ ...good, header: { ...good.header, nonce } }, net.params.networkId, net.miners[m1].key);
    const e = await rejection(store.addBlock(bad));
    expect(e.code).toBe('BAD_POW');
    expect(e.action).toBe('REJECT');
  });

  it('BAD_DIFFICULTY: a header claiming an easier difficulty than the network', async () => {
    const e = await rejection(store.addBlock(forgeBlock(net, store.tip, net.miners[m1], { header: { difficulty: 1n } })));
    expect(e.code).toBe('BAD_DIFFICULTY');
  });

  it('UNKNOWN_PARENT: validation says IGNORE; the store keeps the block as an orphan', async () => {
    const parent = { ...store.tip, hash: sha256(randomBytes(8)), height: 5 };
    const b = forgeBlock(net, parent, net.miners[m1]);
    const e = await rejection(
      validateBlock(b, { params: net.params, membership: store.membership, view: store, signatures: new InThreadVerifier(), now: NOW }),
    );
    expect(e.code).toBe('UNKNOWN_PARENT');
    expect(e.action).toBe('IGNORE');
    expect((await store.addBlock(b)).status).toBe('orphan');
    expect(store.orphanCount).toBe(1);
  });

  it('BAD_HEIGHT: a height that is not the parent height + 1', async () => {
    const b = forgeBlock(net, store.tip, net.miners[m1], { header: { height: 2 }, txs: [{ type: 'coinbase', height: 2, minerId: net.miners[m1].id, amount: net.params.blockReward }] });
    expect((await rejection(store.addBlock(b))).code).toBe('BAD_HEIGHT');
  });

  it('BAD_MERKLE_ROOT: transactions that do not match the header', async () => {
    const b = forgeBlock(net, store.tip, net.miners[m1], { records: [rec()], header: { merkleRoot: sha256(Uint8Array.of(1)) } });
    expect((await rejection(store.addBlock(b))).code).toBe('BAD_MERKLE_ROOT');
  });

  it('TIMESTAMP_FUTURE: too far ahead of our clock (IGNORE: may be valid later)', async () => {
    const b = forgeBlock(net, store.tip, net.miners[m1], { timestamp: NOW + net.params.maxFutureMs + 1 });
    const e = await rejection(store.addBlock(b));
    expect(e.code).toBe('TIMESTAMP_FUTURE');
    expect(e.action).toBe('IGNORE');
    // at the limit it is fine
    expect((await store.addBlock(forgeBlock(net, store.tip, net.miners[m1], { timestamp: NOW + net.params.maxFutureMs }))).status).toBe('connected');
  });

  it('TIMESTAMP_BEFORE_PARENT', async () => {
    const b = forgeBlock(net, store.tip, net.miners[m1], { header: { timestamp: store.tip.timestamp - 1 } });
    expect((await rejection(store.addBlock(b))).code).toBe('TIMESTAMP_BEFORE_PARENT');
  });

  it('BAD_SIGNATURE: block signed by another miner', async () => {
    const b = forgeBlock(net, store.tip, net.miners[m1], { signer: net.miners[m2] });
    expect((await rejection(store.addBlock(b))).code).toBe('BAD_SIGNATURE');
  });

  it('BAD_SIGNATURE: a record whose claim was altered after signing', async () => {
    const r = rec();
    const b = forgeBlock(net, store.tip, net.miners[m1], { records: [{ ...r, sampleCount: r.sampleCount * 10 }] });
    const e = await rejection(store.addBlock(b));
    expect(e.code).toBe('BAD_SIGNATURE');
    expect(e.message).toMatch(/client-1/);
  });

  it('UNKNOWN_CLIENT: a record from a key not in the genesis', async () => {
    const outsider = generateIdentity('client-9', 'client').identity;
    const r = signedRecord(net, outsider, net.miners[m1].id, store.tip.modelHash);
    expect((await rejection(store.addBlock(forgeBlock(net, store.tip, net.miners[m1], { records: [r] })))).code).toBe('UNKNOWN_CLIENT');
    // a miner's id used as a client is not a client either
    const asClient = signedRecord(net, { ...net.miners[m2], role: 'client' }, net.miners[m1].id, store.tip.modelHash);
    expect((await rejection(store.addBlock(forgeBlock(net, store.tip, net.miners[m1], { records: [asClient] })))).code).toBe('UNKNOWN_CLIENT');
  });

  it('UNKNOWN_MINER: a block from a miner not in the genesis', async () => {
    const outsider = generateIdentity('miner-9', 'miner').identity;
    expect((await rejection(store.addBlock(forgeBlock(net, store.tip, outsider)))).code).toBe('UNKNOWN_MINER');
  });

  it('OVERSIZED: a block above maxBlockBytes, refused before parsing', async () => {
    const small = makeNetwork({ phi: 100 });
    small.params.maxBlockBytes = 6000;
    const s = await open(small);
    try {
      const recs = [0, 1, 2].map((c) => signedRecord(small, small.clients[c], small.miners[0].id, s.tip.modelHash));
      const b = mineBlock(small, s.tip, small.miners[0], { records: recs });
      expect(encodeBlock(b).length).toBeGreaterThan(6000);
      expect((await rejection(s.addBlock(b))).code).toBe('OVERSIZED');
    } finally {
      await s.close();
    }
  });

  it('MALFORMED: bytes that are not a block', async () => {
    const bytes = encodeBlock(mineBlock(net, store.tip, net.miners[m1]));
    expect((await rejection(store.addBlock(bytes.subarray(0, bytes.length - 3)))).code).toBe('MALFORMED');
  });

  it('DUPLICATE_RECORD: the same update twice in one block', async () => {
    const r = rec();
    expect((await rejection(store.addBlock(forgeBlock(net, store.tip, net.miners[m1], { records: [r, r] })))).code).toBe('DUPLICATE_RECORD');
  });

  it('DUPLICATE_RECORD: replay of an update recorded in an ancestor; allowed on a competing branch', async () => {
    const r = rec();
    const genesis = store.tip;
    const b1 = mineBlock(net, genesis, net.miners[m1], { records: [r] });
    await store.addBlock(b1);
    const e = await rejection(store.addBlock(forgeBlock(net, store.tip, net.miners[m2], { records: [r] })));
    expect(e.code).toBe('DUPLICATE_RECORD');
    // the other miner recording the same update on its own branch from genesis is fine
    const side = mineBlock(net, genesis, net.miners[m2], { records: [r], timestamp: genesis.timestamp + 2000 });
    // accepted: as a side branch, or as the tip if its hash is lower (equal work)
    expect(['side', 'connected']).toContain((await store.addBlock(side)).status);
  });

  it('CLIENT_ALREADY_VOTED: a second update of one client between two aggregations, in one block or after its pending one; fine again after the aggregation', async () => {
    const genesis = store.tip;
    expect((await rejection(store.addBlock(forgeBlock(net, genesis, net.miners[m1], { records: [rec(0), rec(1), rec(0)] })))).code).toBe('CLIENT_ALREADY_VOTED');
    await store.addBlock(mineBlock(net, genesis, net.miners[m1], { records: [rec(0)] }));
    const e = await rejection(store.addBlock(forgeBlock(net, store.tip, net.miners[m2], { records: [rec(1), rec(0)] })));
    expect([e.code, e.action]).toEqual(['CLIENT_ALREADY_VOTED', 'REJECT']);
    expect(e.message).toMatch(/client client-1 already has update .* recorded for this aggregation/);
    // the aggregation closes the round: client-1 may vote again in the next one
    const close = [rec(1), rec(2)];
    await store.addBlock(mineBlock(net, store.tip, net.miners[m2], { records: close, aggregation: nextAggregation(net, store.tip, close) }));
    expect(store.tip.rounds).toBe(2);
    expect((await store.addBlock(mineBlock(net, store.tip, net.miners[m1], { records: [rec(0)] }))).status).toBe('connected');
  });

  it('the ϕ rule counts clients: one client flooding updates cannot make a block aggregate', async () => {
    // ϕ = 3: three updates of two clients used to close the round and share its rewards 2 : 1
    const flood = [rec(0), rec(0), rec(1)];
    const agg = nextAggregation(net, store.tip, flood)!;
    expect((await rejection(store.addBlock(forgeBlock(net, store.tip, net.miners[m1], { records: flood, aggregation: agg })))).code).toBe('CLIENT_ALREADY_VOTED');
    const two = [rec(0), rec(1)];
    expect((await store.addBlock(mineBlock(net, store.tip, net.miners[m1], { records: two }))).status).toBe('connected');
    expect(store.tip.rounds).toBe(1); // 2 clients < ϕ: no aggregation yet
  });

  it('UNKNOWN_BASE_MODEL: an update trained on a model this chain never had', async () => {
    const r = signedRecord(net, net.clients[0], net.miners[m1].id, sha256(Uint8Array.of(42)));
    expect((await rejection(store.addBlock(forgeBlock(net, store.tip, net.miners[m1], { records: [r] })))).code).toBe('UNKNOWN_BASE_MODEL');
  });

  it('BAD_TX_ORDER and BAD_COINBASE', async () => {
    const r = rec();
    const cb = { type: 'coinbase' as const, height: 1, minerId: net.miners[m1].id, amount: net.params.blockReward };
    expect((await rejection(store.addBlock(forgeBlock(net, store.tip, net.miners[m1], { txs: [r, cb] })))).code).toBe('BAD_TX_ORDER');
    expect((await rejection(store.addBlock(forgeBlock(net, store.tip, net.miners[m1], { txs: [cb, cb] })))).code).toBe('BAD_TX_ORDER');
    expect((await rejection(store.addBlock(forgeBlock(net, store.tip, net.miners[m1], { txs: [{ ...cb, amount: 10n ** 12n }] })))).code).toBe('BAD_COINBASE');
    expect((await rejection(store.addBlock(forgeBlock(net, store.tip, net.miners[m1], { txs: [{ ...cb, minerId: net.miners[m2].id }] })))).code).toBe('BAD_COINBASE');
  });

  it('AGGREGATION_REQUIRED and UNEXPECTED_AGGREGATION: the ϕ rule', async () => {
    const three = [rec(0), rec(1), rec(2)];
    expect((await rejection(store.addBlock(forgeBlock(net, store.tip, net.miners[m1], { records: three })))).code).toBe('AGGREGATION_REQUIRED');
    const two = three.slice(0, 2);
    const early = simpleAggregation(net, store.tip, two.map((r) => ({ clientId: r.clientId, updateDigest: r.updateDigest })));
    expect((await rejection(store.addBlock(forgeBlock(net, store.tip, net.miners[m1], { records: two, aggregation: early })))).code).toBe('UNEXPECTED_AGGREGATION');
  });

  it('BAD_AGGREGATION: tampered model, missing update, inflated rewards, wrong round', async () => {
    const three = [rec(0), rec(1), rec(2)];
    const agg = nextAggregation(net, store.tip, three)!;
    const cases = {
      'tampered model': { ...agg, model: agg.model.map((v, i) => (i === 0 ? v ^ 1 : v)) },
      'missing update': { ...agg, entries: agg.entries.slice(1) },
      'inflated rewards': { ...agg, rewards: agg.rewards.map((r) => ({ ...r, amount: net.params.baseReward })) },
      'wrong round': { ...agg, round: agg.round + 1 },
      'reward to outsider': { ...agg, rewards: [{ id: net.miners[m2].id, amount: 1n }] },
      'weight above one': { ...agg, entries: agg.entries.map((e) => ({ ...e, weight: 1.5 })) },
    };
    for (const [name, bad] of Object.entries(cases)) {
      const e = await rejection(store.addBlock(forgeBlock(net, store.tip, net.miners[m1], { records: three, aggregation: bad })));
      expect(e.code, name).toBe('BAD_AGGREGATION');
    }
  });

  it('an aggregation check that recomputes can veto the block', async () => {
    const s = await ChainStore.open({
      datadir: await tmpDir('bfl-val-'),
      params: net.params,
      signatures: new InThreadVerifier(),
      now: () => NOW,
      aggregation: {
        async verify(_tx, input) {
          expect(input.records).toHaveLength(3);
          throw new BflError('BAD_AGGREGATION', 'recomputed model differs');
        },
      },
    });
    try {
      const three = [0, 1, 2].map((c) => signedRecord(net, net.clients[c], net.miners[m1].id, s.tip.modelHash));
      const b = mineBlock(net, s.tip, net.miners[m1], { records: three, aggregation: nextAggregation(net, s.tip, three) });
      expect((await rejection(s.addBlock(b))).code).toBe('BAD_AGGREGATION');
      expect(s.tip.height).toBe(0);
    } finally {
      await s.close();
    }
  });

  it('BAD_GENESIS: a second block at height 0', async () => {
    const b = forgeBlock(net, { ...store.tip, height: -1 }, net.miners[m1], { txs: [{ type: 'coinbase', height: 0, minerId: net.miners[m1].id, amount: net.params.blockReward }] });
    expect((await rejection(store.addBlock(b))).code).toBe('BAD_GENESIS');
  });
});
