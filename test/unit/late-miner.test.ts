/**
 * Issue 13, item 2: a miner that joins after the raw updates of the oldest aggregations were
 * pruned everywhere syncs (those aggregations accepted on the work built on them, the recent
 * ones recomputed, the state in between fetched and checked against the chain), then validates
 * new blocks fully; `chain verify` says which aggregations it recomputed.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { blockDetail } from '../../src/api/explorer.ts';
import { verifyChain } from '../../src/chain/verify.ts';
import { toHex } from '../../src/core/bytes.ts';
import { aggregationTxOf } from '../../src/core/chain.ts';
import { ErrorCode } from '../../src/core/errors.ts';
import { sha256 } from '../../src/core/hash.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { PRUNE_DEPTH, lateMiner, producer } from '../helpers/late-miner.ts';
import { forgeBlock } from '../helpers/network.ts';

const BLOCKS = 45;

describe('a miner that joins after the updates were pruned', () => {
  it(`syncs ${BLOCKS} blocks, recomputes what it can, accepts the rest on work, then validates new blocks fully`, { timeout: 60_000 }, async () => {
    const p = await producer(BLOCKS);
    const tip = p.store.tip;
    expect(tip.height).toBe(BLOCKS);
    const l = await lateMiner(p);
    await l.catchUp();
    expect(l.store.tip.height).toBe(tip.height);
    expect(toHex(l.store.tip.hash)).toBe(toHex(tip.hash));
    expect(Object.fromEntries(await l.store.balances())).toEqual(Object.fromEntries(await p.store.balances()));

    // aggregations buried PRUNE_DEPTH deep were accepted on work; the newer ones recomputed
    const deep: number[] = [];
    const recent: number[] = [];
    for (let h = 1; h <= tip.height; h++) {
      const b = (await l.store.blockAt(h))!;
      if (!aggregationTxOf(b)) continue;
      const onWork = await l.store.acceptedOnWork((await l.store.hashAt(h))!);
      (h <= tip.height - PRUNE_DEPTH ? deep : recent).push(h);
      expect(onWork, `height ${h}`).toBe(h <= tip.height - PRUNE_DEPTH);
      expect((await blockDetail(l.store, String(h)))!.acceptedOnWork, `explorer, height ${h}`).toBe(onWork);
    }
    expect(deep.length).toBeGreaterThan(0);
    expect(recent.length).toBeGreaterThan(0);
    expect(l.aggregation.computed).toBe(recent.length);
    // the state after the last aggregation taken on work came from the producer, checked against
    // the block's stateHash; from it the miner computed the producer's state bit for bit
    const state = await l.store.aggregatorState(l.store.tip.anchor);
    expect(state!.length).toBeGreaterThan(0); // BFL-MEC keeps per-client history: a state that matters
    expect(state).toEqual(await p.store.aggregatorState(p.store.tip.anchor));

    // caught up: a new block's aggregation is recomputed, and one that lies about it is refused
    let next = await p.mine();
    while (!aggregationTxOf(next)) next = await p.mine();
    const before = l.aggregation.computed;
    await l.catchUp();
    expect(toHex(l.store.tip.hash)).toBe(toHex(p.store.tip.hash));
    expect(l.aggregation.computed).toBe(before + 1);
    let honest = await p.mine({ forge: (b) => b });
    while (!aggregationTxOf(honest)) {
      await p.store.addBlock(honest);
      await l.catchUp();
      honest = await p.mine({ forge: (b) => b });
    }
    // another global model (its hash updated, so only the recomputation can tell)
    const agg = aggregationTxOf(honest)!;
    const model = agg.model.slice();
    model[0] ^= 1;
    const lie = forgeBlock(p.net, l.store.tip, p.net.miners[1], {
      txs: [{ ...agg, model, modelHash: sha256(model) }, ...honest.txs.slice(1).map((t) => (t.type === 'coinbase' ? { ...t, minerId: p.net.miners[1].id } : t))],
    });
    await expect(l.store.addBlock(lie)).rejects.toMatchObject({ code: ErrorCode.BAD_AGGREGATION });
    // the state hash is part of what is recomputed
    const stateLie = forgeBlock(p.net, l.store.tip, p.net.miners[1], {
      txs: [{ ...agg, stateHash: sha256(agg.stateHash) }, ...honest.txs.slice(1).map((t) => (t.type === 'coinbase' ? { ...t, minerId: p.net.miners[1].id } : t))],
    });
    await expect(l.store.addBlock(stateLie)).rejects.toMatchObject({ code: ErrorCode.BAD_AGGREGATION, message: expect.stringMatching(/aggregator state hash/) });
    await expect(l.store.addBlock(honest)).resolves.toMatchObject({ status: 'connected' });

    // chain verify: which aggregations it could recompute (their updates are in the pool)
    await l.close();
    const report = await verifyChain(join(l.dir, 'chain'), new InThreadVerifier(), { poolDir: join(l.dir, 'updates') });
    expect(report.valid, JSON.stringify(report.error)).toBe(true);
    const c = report.aggregationCheck!;
    expect(c.aggregator).toBe('bfl-mec');
    expect(c.acceptedOnWork).toEqual(deep);
    expect(c.recomputed.length).toBeGreaterThan(recent.length); // the recent ones and the new ones
    expect(c.recomputed.every((h) => h > tip.height - PRUNE_DEPTH)).toBe(true);
    expect([...c.acceptedOnWork, ...c.recomputed, ...c.checkedOnArrival].sort((a, b) => a - b)).toEqual(
      [...Array(report.height + 1).keys()].filter((h) => h > 0 && h % 2 === 0),
    );
    await p.close();
  });

  it('without the work on top, a block whose updates are gone is not accepted', async () => {
    const p = await producer(PRUNE_DEPTH + 6);
    const l = await lateMiner(p);
    // the first aggregation block, offered alone: its updates are pruned and nothing vouches for it
    const first = (await p.store.blockAt(1))!;
    const second = (await p.store.blockAt(2))!;
    await l.store.addBlock(first);
    await expect(l.store.addBlock(second)).rejects.toMatchObject({ code: ErrorCode.UNAVAILABLE });
    // with fewer descendants than the depth, neither
    const headers = [];
    for (let h = 3; h < 3 + PRUNE_DEPTH - 1; h++) headers.push((await p.store.blockAt(h))!.header);
    await expect(l.store.addBlock(second, { descendants: headers })).rejects.toMatchObject({ code: ErrorCode.UNAVAILABLE });
    // descendants that do not link to it do not count
    const unlinked = [(await p.store.blockAt(3))!.header, ...headers];
    unlinked[1] = { ...unlinked[1], nonce: unlinked[1].nonce + 1 };
    await expect(l.store.addBlock(second, { descendants: unlinked })).rejects.toMatchObject({ code: ErrorCode.UNAVAILABLE });
    headers.push((await p.store.blockAt(3 + PRUNE_DEPTH - 1))!.header);
    await expect(l.store.addBlock(second, { descendants: headers })).resolves.toMatchObject({ status: 'connected' });
    expect(await l.store.acceptedOnWork((await l.store.hashAt(2))!)).toBe(true);
    await l.close();
    await p.close();
  });
});
