import { describe, expect, it } from 'vitest';
import { ChainStore } from '../../src/chain/store.ts';
import { verifyChain } from '../../src/chain/verify.ts';
import { toHex } from '../../src/core/bytes.ts';
import { BflError } from '../../src/core/errors.ts';
import type { ChainState } from '../../src/core/validation.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { Metrics } from '../../src/util/metrics.ts';
import { type TestNetwork, makeNetwork, mineBlock, nextAggregation, signedRecord } from '../helpers/network.ts';
import { tmpDir } from '../helpers/tmp.ts';

const NOW = 1_700_001_000_000;
const verifier = new InThreadVerifier();

async function openStore(net: TestNetwork, opts: { realClock?: boolean; metrics?: Metrics } = {}): Promise<{ store: ChainStore; datadir: string }> {
  const dir = await tmpDir('bfl-store-');
  return { store: await ChainStore.open({ datadir: dir, params: net.params, signatures: verifier, now: opts.realClock ? undefined : () => NOW, metrics: opts.metrics }), datadir: dir };
}

/** Mine `n` blocks on `parent` by `miner`, each recording one update of client c (aggregating at ϕ). */
async function extend(net: TestNetwork, store: ChainStore, parent: ChainState, minerIdx: number, n: number, ts: number) {
  let p = parent;
  const hashes: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = [signedRecord(net, net.clients[i % net.clients.length], net.miners[minerIdx].id, p.modelHash)];
    const b = mineBlock(net, p, net.miners[minerIdx], { records: r, aggregation: nextAggregation(net, p, r), timestamp: ts + i });
    const res = await store.addBlock(b);
    expect(['connected', 'side']).toContain(res.status);
    p = (await store.getState(Buffer.from(res.hash, 'hex')))!;
    hashes.push(res.hash);
  }
  return { tip: p, hashes };
}

/** Ledger recomputed from the canonical chain. */
async function ledgerFromChain(store: ChainStore): Promise<Record<string, string>> {
  const l = new Map<string, bigint>();
  for (let h = 1; h <= store.tip.height; h++) {
    for (const tx of (await store.blockAt(h))!.txs) {
      if (tx.type === 'coinbase') l.set(tx.minerId, (l.get(tx.minerId) ?? 0n) + tx.amount);
      if (tx.type === 'aggregation') for (const r of tx.rewards) l.set(r.id, (l.get(r.id) ?? 0n) + r.amount);
    }
  }
  return Object.fromEntries([...l].map(([k, v]) => [k, v.toString()]));
}

async function balancesJson(store: ChainStore) {
  return Object.fromEntries([...(await store.balances())].map(([k, v]) => [k, v.toString()]));
}

describe('chain store', () => {
  it('fork choice: equal work goes to the lower hash; more work reorgs, and the ledger follows', async () => {
    const net = makeNetwork({ phi: 2 });
    const { store } = await openStore(net);
    try {
      const g = store.tip;
      const a = await extend(net, store, g, 0, 3, g.timestamp + 1000);
      expect(store.tip.height).toBe(3);
      expect(await balancesJson(store)).toEqual(await ledgerFromChain(store));
      const minerA = net.miners[0].id;
      const minerB = net.miners[1].id;
      expect(await store.balance(minerA)).toBe(3n * net.params.blockReward);

      // competing branch of equal work: the lower tip hash wins, whichever came first
      const b = await extend(net, store, g, 1, 3, g.timestamp + 5000);
      const tieWinner = a.hashes[2] < b.hashes[2] ? 'a' : 'b';
      expect(toHex(store.tip.hash)).toBe(tieWinner === 'a' ? a.hashes[2] : b.hashes[2]);
      expect(await balancesJson(store)).toEqual(await ledgerFromChain(store));

      // one more block on branch B: it has more work now
      const tipEvents: unknown[] = [];
      store.on('tip', (_s, reorg) => tipEvents.push(reorg));
      const r = [signedRecord(net, net.clients[0], minerB, b.tip.modelHash)];
      const res = await store.addBlock(mineBlock(net, b.tip, net.miners[1], { records: r, aggregation: nextAggregation(net, b.tip, r) }));
      expect(res.status).toBe('connected');
      if (tieWinner === 'a') expect(res.reorg).toEqual({ forkHeight: 0, disconnected: [...a.hashes].reverse(), connected: [...b.hashes, res.hash] });
      else expect(res.reorg).toBeUndefined(); // B already was the tip: a plain extension
      expect(tipEvents).toHaveLength(1);
      expect(store.tip.height).toBe(4);
      for (let h = 1; h <= 3; h++) expect(await store.hashAt(h)).toBe(b.hashes[h - 1]);
      expect(await store.balance(minerA)).toBe(0n);
      expect(await store.balance(minerB)).toBe(4n * net.params.blockReward);
      expect(await balancesJson(store)).toEqual(await ledgerFromChain(store));

      // and back: branch A overtakes with two more blocks (reorg depth 4)
      await extend(net, store, a.tip, 0, 2, a.tip.timestamp + 10_000);
      expect(store.tip.height).toBe(5);
      expect(await store.hashAt(1)).toBe(a.hashes[0]);
      expect(await store.hashAt(6)).toBeUndefined();
      expect(await balancesJson(store)).toEqual(await ledgerFromChain(store));
    } finally {
      await store.close();
    }
  });

  it('a side branch with less work never touches the height index', async () => {
    const net = makeNetwork({ phi: 100, difficulty: 4n });
    const { store } = await openStore(net);
    try {
      const g = store.tip;
      const a = await extend(net, store, g, 0, 3, g.timestamp + 1);
      await extend(net, store, g, 1, 2, g.timestamp + 2);
      expect(await store.hashAt(3)).toBe(a.hashes[2]);
      expect(await store.hashAt(2)).toBe(a.hashes[1]);
    } finally {
      await store.close();
    }
  });

  it('its caches stay within their bounds, and the cached height index follows a reorg', async () => {
    const net = makeNetwork({ phi: 2, difficulty: 4n });
    const dir = await tmpDir('bfl-store-');
    let store = await ChainStore.open({ datadir: dir, params: net.params, signatures: verifier, now: () => NOW, caches: { states: 5, heights: 4 } });
    try {
      const g = store.tip;
      const a = await extend(net, store, g, 0, 6, g.timestamp + 1);
      for (let h = 1; h <= 6; h++) expect(await store.hashAt(h)).toBe(a.hashes[h - 1]);
      expect(store.cacheSizes()).toEqual({ states: 5, heights: 4 });
      // a branch with more work from genesis: every cached height now names its block
      const b = await extend(net, store, g, 1, 7, g.timestamp + 2);
      expect(store.tip.height).toBe(7);
      for (let h = 1; h <= 7; h++) expect(await store.hashAt(h)).toBe(b.hashes[h - 1]);
      expect(await store.isAncestor(Buffer.from(b.hashes[2], 'hex'), store.tip.hash)).toBe(true);
      expect(await store.isAncestor(Buffer.from(a.hashes[5], 'hex'), store.tip.hash)).toBe(false);
      expect(store.cacheSizes()).toEqual({ states: 5, heights: 4 });
      // the same answers from disk alone
      await store.close();
      store = await ChainStore.open({ datadir: dir, signatures: verifier, now: () => NOW });
      for (let h = 1; h <= 7; h++) expect(await store.hashAt(h)).toBe(b.hashes[h - 1]);
    } finally {
      await store.close();
    }
  });

  it('orphans connect when their parent arrives (and the metrics count it)', async () => {
    const net = makeNetwork({ phi: 100 });
    const metrics = new Metrics();
    const { store } = await openStore(net, { metrics });
    try {
      const g = store.tip;
      const b1 = mineBlock(net, g, net.miners[0]);
      const { store: scratch } = await openStore(net);
      await scratch.addBlock(b1);
      const b2 = mineBlock(net, scratch.tip, net.miners[0]);
      await scratch.addBlock(b2);
      const b3 = mineBlock(net, scratch.tip, net.miners[0]);
      await scratch.close();
      expect((await store.addBlock(b3)).status).toBe('orphan');
      expect((await store.addBlock(b2)).status).toBe('orphan');
      expect(store.orphanCount).toBe(2);
      const res = await store.addBlock(b1);
      expect(res.status).toBe('connected');
      expect(res.adopted.map((a) => a.status)).toEqual(['connected']);
      expect(res.adopted[0].adopted.map((a) => a.status)).toEqual(['connected']);
      expect(store.tip.height).toBe(3);
      expect(store.orphanCount).toBe(0);
      expect((await store.addBlock(b2)).status).toBe('duplicate');
      await expect(store.addBlock(new Uint8Array([1, 2, 3]))).rejects.toThrow();
      const text = await metrics.text();
      expect(text).toMatch(/bfl_chain_height 3/);
      expect(text).toMatch(/bfl_chain_blocks_total\{result="orphan"\} 2/);
      expect(text).toMatch(/bfl_chain_blocks_total\{result="connected"\} 3/);
      expect(text).toMatch(/bfl_chain_blocks_total\{result="MALFORMED"\} 1/);
    } finally {
      await store.close();
    }
  });

  it('reopens with the same tip and ledger; refuses a different network config', async () => {
    const net = makeNetwork({ phi: 2 });
    const { store, datadir } = await openStore(net);
    await extend(net, store, store.tip, 0, 5, store.tip.timestamp + 1);
    const tip = toHex(store.tip.hash);
    const bal = await balancesJson(store);
    await store.close();
    const again = await ChainStore.open({ datadir, signatures: verifier, now: () => NOW });
    expect(toHex(again.tip.hash)).toBe(tip);
    expect(await balancesJson(again)).toEqual(bal);
    await again.close();
    const other = makeNetwork({ phi: 2 });
    await expect(ChainStore.open({ datadir, params: other.params, signatures: verifier })).rejects.toSatisfy((e: unknown) => e instanceof BflError && e.code === 'NETWORK_MISMATCH');
    const empty = await tmpDir('bfl-empty-');
    await expect(ChainStore.open({ datadir: empty, signatures: verifier })).rejects.toSatisfy((e: unknown) => e instanceof BflError && e.code === 'BAD_CONFIG');
  });

  it('chain verify passes on a good store and names what is wrong on a damaged one', async () => {
    const net = makeNetwork({ phi: 2, now: Date.now() - 200_000 });
    const { store, datadir } = await openStore(net, { realClock: true });
    await extend(net, store, store.tip, 0, 4, Date.now() - 100_000);
    const tipHeight = store.tip.height;
    await store.close();
    const ok = await verifyChain(datadir, verifier);
    expect(ok).toMatchObject({ valid: true, height: tipHeight, blocks: tipHeight + 1, records: 4, aggregations: 3 });

    // damage: overwrite a balance, then a block body
    const { Level } = await import('level');
    const db = new Level<string, string>(datadir);
    await db.sublevel('bal').put(net.miners[0].id, '999');
    await db.close();
    const badLedger = await verifyChain(datadir, verifier);
    expect(badLedger.valid).toBe(false);
    expect(badLedger.error).toMatchObject({ code: 'STORE_CORRUPT' });
    expect(badLedger.error!.message).toMatch(/reward ledger/);

    const db2 = new Level<string, string>(datadir);
    const h2 = (await db2.sublevel('h').get('0000000002'))!;
    await db2.sublevel<string, Uint8Array>('b', { valueEncoding: 'view' }).del(h2);
    await db2.close();
    const badBlock = await verifyChain(datadir, verifier);
    expect(badBlock.valid).toBe(false);
    expect(badBlock.error).toMatchObject({ code: 'STORE_CORRUPT', height: 2 });
  });
});
