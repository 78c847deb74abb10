/**
 * Split learning end to end over libp2p (issue 19): `bfl-node testnet --mode split` with 2
 * miners and 3 clients on the embedded MNIST. Clients train their heads with their miner over
 * the split protocol; miners record and aggregate their body updates on chain. Kept short: a
 * low difficulty and 3 aggregations.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ChainStore } from '../../src/chain/store.ts';
import { aggregationTxOf } from '../../src/core/chain.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { tmpDir } from '../helpers/tmp.ts';

const BIN = new URL('../../bin/bfl-node.js', import.meta.url).pathname;

it('bfl-node testnet --mode split: split rounds happen, blocks carry the miners\' body aggregations, client accuracy rises above chance', { timeout: 400_000 }, async () => {
  const dir = await tmpDir('bfl-split-testnet-');
  const r = spawnSync(process.execPath, [BIN, 'testnet', '--mode', 'split', '--clients', '3', '--aggregations', '3', '--dir', dir, '--timeout', '300', '--json'], {
    encoding: 'utf8',
    timeout: 390_000,
    env: { ...process.env, BFL_LOG_LEVEL: 'info' },
  });
  expect(r.status, r.stderr.slice(-2000)).toBe(0);
  const s = JSON.parse(r.stdout);
  expect(s.mode).toBe('split');
  expect(s.aggregations).toBeGreaterThanOrEqual(3);
  expect(s.converged).toBe(true);
  // chance is 0.1 on MNIST's 10 classes; each client's own head on the aggregated body
  expect(s.finalAccuracy).toBeGreaterThan(0.5);
  for (const c of s.clients) {
    expect(c.mode).toBe('split');
    expect(c.uploaded).toBeGreaterThan(0); // split rounds trained with a miner
  }
  const batches = s.miners.reduce((n: number, m: { split: { batches: number } }) => n + m.split.batches, 0);
  expect(batches).toBeGreaterThan(0);
  expect(s.miners.every((m: { lastAccuracy: number | null }) => m.lastAccuracy === null)).toBe(true); // a miner holds no head

  // The chain: every record and every aggregation entry is a miner's body update, none a client's.
  const store = await ChainStore.open({ datadir: join(dir, 'data', 'miner-1', 'chain'), signatures: new InThreadVerifier(), readOnly: true });
  try {
    const miners = new Set(['miner-1', 'miner-2']);
    let aggregations = 0;
    for (let h = 1; h <= store.tip.height; h++) {
      const block = (await store.blockAt(h))!;
      for (const tx of block.txs) if (tx.type === 'record') expect(miners.has(tx.clientId)).toBe(true);
      const agg = aggregationTxOf(block);
      if (!agg) continue;
      aggregations++;
      expect(agg.entries.length).toBeGreaterThan(0);
      for (const e of agg.entries) expect(miners.has(e.clientId)).toBe(true);
      for (const w of agg.rewards) expect(miners.has(w.id)).toBe(true);
    }
    expect(aggregations).toBeGreaterThanOrEqual(3);
  } finally {
    await store.close();
  }
});
