/**
 * The chain store's record filter (chain/record-filter.ts, issue 12): no false negatives, few
 * false positives, and the store's answers unchanged by it: recorded updates found on every
 * branch and after a reopen (the filter is rebuilt from the index), new ones not.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RecordFilter } from '../../src/chain/record-filter.ts';
import { ChainStore } from '../../src/chain/store.ts';
import { toHex } from '../../src/core/bytes.ts';
import { sha256 } from '../../src/core/hash.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { makeNetwork, mineBlock, nextAggregation, signedRecord } from '../helpers/network.ts';
import { tmpDir } from '../helpers/tmp.ts';

const NOW = 1_700_001_000_000;

describe('record filter', () => {
  it('never misses a key it holds; other keys mostly miss (the same digest under another client too)', () => {
    const f = new RecordFilter();
    const held = Array.from({ length: 20_000 }, (_, i) => ({ client: `client-${i % 50}`, digest: sha256(randomBytes(16)) }));
    for (const k of held) f.add(k.client, k.digest);
    expect(f.size).toBe(held.length);
    for (const k of held) expect(f.mayHave(k.client, k.digest)).toBe(true);
    let falsePositives = 0;
    for (let i = 0; i < 20_000; i++) if (f.mayHave(`client-${i % 50}`, sha256(randomBytes(16)))) falsePositives++;
    for (const k of held.slice(0, 5_000)) if (f.mayHave(`${k.client}x`, k.digest)) falsePositives++;
    expect(falsePositives).toBeLessThan(5); // ~1e-7 expected at 20,000 keys in 2^23 bits
  });

  it('the store finds recorded updates on both branches of a fork and after a reopen, and answers none for new ones', async () => {
    const net = makeNetwork({ phi: 3 });
    const datadir = await tmpDir('bfl-record-filter-');
    const store = await ChainStore.open({ datadir, params: net.params, signatures: new InThreadVerifier(), now: () => NOW });
    const g = store.tip;
    const recA = signedRecord(net, net.clients[0], net.miners[0].id, g.modelHash);
    const recB = signedRecord(net, net.clients[1], net.miners[1].id, g.modelHash);
    const a = mineBlock(net, g, net.miners[0], { records: [recA], aggregation: nextAggregation(net, g, [recA]), timestamp: g.timestamp + 1 });
    const b = mineBlock(net, g, net.miners[1], { records: [recB], aggregation: nextAggregation(net, g, [recB]), timestamp: g.timestamp + 2 });
    const ra = await store.addBlock(a);
    const rb = await store.addBlock(b);
    const hashes = async (r: typeof recA) => (await store.blocksWithRecord(r.clientId, r.updateDigest)).map(toHex);
    expect(await hashes(recA)).toEqual([ra.hash]);
    expect(await hashes(recB)).toEqual([rb.hash]);
    expect(await store.blocksWithRecord(net.clients[0].id, sha256(randomBytes(8)))).toEqual([]);
    // the digest of a record under another client: not recorded
    expect(await store.blocksWithRecord(net.clients[1].id, recA.updateDigest)).toEqual([]);
    await store.close();
    const again = await ChainStore.open({ datadir, signatures: new InThreadVerifier(), now: () => NOW });
    try {
      expect((await again.blocksWithRecord(recA.clientId, recA.updateDigest)).map(toHex)).toEqual([ra.hash]);
      expect((await again.blocksWithRecord(recB.clientId, recB.updateDigest)).map(toHex)).toEqual([rb.hash]);
      expect(await again.blocksWithRecord(net.clients[2].id, sha256(randomBytes(8)))).toEqual([]);
    } finally {
      await again.close();
    }
  });
});
