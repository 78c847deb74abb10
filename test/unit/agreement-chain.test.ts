/**
 * The default rule's state on the chain (issue 11): two stores that receive the same blocks in
 * another order hold the same state bytes, and a reorg takes the state of the winning branch.
 */
import { describe, expect, it } from 'vitest';
import { ChainAggregation, type UpdateSource } from '../../src/chain/aggregation.ts';
import { InThreadAggregationEngine } from '../../src/chain/aggregation-engine.ts';
import { ChainStore } from '../../src/chain/store.ts';
import { AgreementAggregator } from '../../src/core/aggregation/agreement.ts';
import { toHex } from '../../src/core/bytes.ts';
import { sha256 } from '../../src/core/hash.ts';
import type { Block } from '../../src/core/types.ts';
import { deltaToPayload } from '../../src/core/update.ts';
import { type ChainState, pendingOf, sortedPending } from '../../src/core/validation.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { makeNetwork, mineBlock, signedRecord } from '../helpers/network.ts';
import { tmpDir } from '../helpers/tmp.ts';

const NOW = 1_700_001_000_000;
const verifier = new InThreadVerifier();
const rule = () => new AgreementAggregator({ sketchSize: 64 });

describe('agreement scoring on the chain', () => {
  it('two miners given the same blocks in another order hold the same state; a reorg rolls it back to the winning branch', async () => {
    const net = makeNetwork({ phi: 3, clients: 3, modelFloats: 64 });
    const pool = new Map<string, { payload: Uint8Array; sampleCount: number; baseModelHash: Uint8Array }>();
    const source: UpdateSource = { get: async (_c, d) => pool.get(toHex(d)) };
    const open = async () => {
      const aggregation = new ChainAggregation({ engine: new InThreadAggregationEngine(rule()), updates: source });
      const store = await ChainStore.open({ datadir: await tmpDir('bfl-agreement-'), params: net.params, signatures: verifier, aggregation, now: () => NOW });
      return { store, aggregation };
    };
    const p = await open();
    let n = 0;
    // three clients, each with its own direction (label skew), one block per update
    const extend = async (parent: ChainState, miner: number, count: number, ts: number, flip = -1) => {
      const blocks: Block[] = [];
      let tip = parent;
      for (let i = 0; i < count; i++) {
        const c = n++ % 3;
        const delta = Float32Array.from({ length: 64 }, (_, k) => (c === flip ? -1 : 1) * (Math.sin((c + 1) * (k + 1)) + 1.5 + 0.05 * Math.cos(n * k)) / 100);
        const payload = deltaToPayload(delta);
        pool.set(toHex(sha256(payload)), { payload, sampleCount: 100, baseModelHash: tip.modelHash });
        const r = [signedRecord(net, net.clients[c], net.miners[miner].id, tip.modelHash, { digest: sha256(payload) })];
        const pending = [...tip.pending, ...r.map(pendingOf)];
        const aggregation = pending.length >= net.params.phi ? await p.aggregation.compute(p.store, tip, sortedPending(pending)) : undefined;
        const b = mineBlock(net, tip, net.miners[miner], { records: r, aggregation, timestamp: ts + i });
        const res = await p.store.addBlock(b);
        tip = (await p.store.getState(Buffer.from(res.hash, 'hex')))!;
        blocks.push(b);
      }
      return { blocks, tip };
    };
    const g = p.store.tip;
    const common = await extend(g, 0, 6, g.timestamp + 1000); // two aggregations: every client has a history
    const a = await extend(common.tip, 0, 3, g.timestamp + 2000, 1); // client-2 turns to sign flipping here
    const b = await extend(common.tip, 1, 6, g.timestamp + 3000); // honest, more work: the tip moves here
    expect(toHex(p.store.tip.hash)).toBe(toHex(b.tip.hash));
    const aTx = a.blocks.at(-1)!.txs[0];
    expect(aTx.type === 'aggregation' && aTx.entries.find((e) => e.clientId === 'client-2')!.high).toBe(false);

    const bytesAt = async (s: ChainStore, h: Uint8Array) => toHex((await s.aggregatorState(h)) ?? new Uint8Array(0));
    const winning = await bytesAt(p.store, b.tip.anchor);
    const losing = await bytesAt(p.store, a.tip.anchor);
    expect(winning).not.toBe(losing);
    // every client has a reference on the winning branch; on the losing one client-2's is its
    // honest past (the flipped update was low and left it alone)
    const decode = (hex: string) => rule().decodeState(Buffer.from(hex, 'hex'));
    expect([...decode(winning).references.keys()]).toEqual(['client-1', 'client-2', 'client-3']);
    expect(decode(losing).references.get('client-2')).toEqual(decode(await bytesAt(p.store, common.tip.anchor)).references.get('client-2'));
    const x = await open();
    for (const blk of [...common.blocks, ...a.blocks, ...b.blocks]) await x.store.addBlock(blk);
    const y = await open();
    for (const blk of [...[...b.blocks].reverse(), ...[...a.blocks].reverse(), ...[...common.blocks].reverse()]) await y.store.addBlock(blk);
    for (const s of [x.store, y.store]) {
      expect(toHex(s.tip.hash)).toBe(toHex(b.tip.hash));
      expect(await bytesAt(s, s.tip.anchor)).toBe(winning);
      expect(await bytesAt(s, a.tip.anchor)).toBe(losing);
    }
    for (const s of [p.store, x.store, y.store]) await s.close();
  });
});
