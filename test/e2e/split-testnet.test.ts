/**
 * Split learning end to end over libp2p (issue 19): the testnet of `bfl-node testnet --mode
 * split` (runTestnet: every node its own daemon process) with 2 miners and 3 clients on the
 * embedded MNIST; clients 1 and 2 share their heads (eq. 4), client 3 keeps its head private.
 * Clients train their heads with their miner over the split protocol; miners record and
 * aggregate their body updates on chain. Kept short: 3 aggregations.
 */
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ChainStore } from '../../src/chain/store.ts';
import { aggregationTxOf } from '../../src/core/chain.ts';
import type { Block } from '../../src/core/types.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { payloadToDelta } from '../../src/core/update.ts';
import { DEFAULT_MODEL } from '../../src/learn/model.ts';
import { headShareAccount } from '../../src/learn/privacy.ts';
import { splitParams } from '../../src/learn/split.ts';
import { runTestnet } from '../../src/node/testnet.ts';
import { formatStatus } from '../../src/cli/status/index.ts';
import { tmpDir } from '../helpers/tmp.ts';

const BIN = new URL('../../bin/bfl-node.js', import.meta.url).pathname;

it('testnet --mode: a bad mode, or attackers in split mode, is a one-line usage error (exit 2)', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [BIN, 'testnet', ...args], { encoding: 'utf8', timeout: 60_000 });
  const bogus = run('--mode', 'bogus');
  expect(bogus.status).toBe(2);
  expect(bogus.stderr.trim()).toMatch(/^error: option '--mode <mode>' argument 'bogus' is invalid\. Allowed choices are federated, split\.$/);
  const attack = run('--mode', 'split', '--attackers', '1');
  expect(attack.status).toBe(2);
  expect(attack.stderr.trim()).toMatch(/^error: --attackers needs --mode federated/);
});

it('testnet --mode split: split rounds happen, blocks carry the miners\' body aggregations, heads are aggregated for those who share, client accuracy rises above chance', { timeout: 400_000 }, async () => {
  const dir = await tmpDir('bfl-split-testnet-');
  // small noise: the test is about the path, not the privacy budget (docs/decisions.md)
  const s = await runTestnet({ miners: 2, clients: 3, aggregations: 3, mode: 'split', dir, keep: true, timeoutSeconds: 300, learning: { split: { headSharing: { clients: ['client-1', 'client-2'], clip: 5, noise: 0.0002 } } } });
  expect(s.error).toBeUndefined();
  expect(s.mode).toBe('split');
  expect(s.aggregations).toBeGreaterThanOrEqual(3);
  expect(s.converged).toBe(true);
  // chance is 0.1 on MNIST's 10 classes; each client's own head on the aggregated body, as it is
  // after a round the client trained once the target was reached. (It used to be read at the
  // moment the target was reached: a client that had not finished its first round still showed
  // the genesis model's ~0.1, and one that had just taken a new body its stale head on it, 0.34
  // once; means of 0.433 and 0.403 were seen in loaded full-suite runs.)
  expect(s.finalAccuracy).toBeGreaterThan(0.5);
  for (const c of s.clients) {
    const rounds = (await readFile(join(dir, 'logs', `${c.id}.log`), 'utf8'))
      .split('\n')
      .filter((l) => l.includes('"split round done"'))
      .map((l) => JSON.parse(l) as { accuracy: number | null });
    expect(rounds.length).toBeGreaterThanOrEqual(1); // (a round's line follows its count in /status by the evaluation)
    // every round's head was evaluated when the round ended, and one round (5 epochs of 100
    // samples) lifts a head well above chance (measured 0.58-0.69 after the first)
    for (const r of rounds) expect(r.accuracy).toBeGreaterThan(0.2);
    // the summary's figure is each client's after a round it trained once the target was reached
    // (runTestnet waits for it), not its stale head on a newer body nor the genesis model
    expect(rounds.map((r) => r.accuracy)).toContain(c.lastAccuracy);
    expect(c.mode).toBe('split');
    expect(c.uploaded).toBeGreaterThan(0); // split rounds trained with a miner
    // /status: a sharing client's privacy account is the accountant's after its shares; a private head has none
    if (c.id === 'client-3') expect(c.headSharing).toBeNull();
    else {
      const shares = c.headSharing!.shares;
      expect(shares).toBeGreaterThanOrEqual(1); // every round (every: 1), and it trained rounds
      expect(c.headSharing).toEqual({ every: 1, shares, clip: 5, noise: 0.0002, delta: 1e-5, epsilon: headShareAccount({ clip: 5, noise: 0.0002, releases: shares, delta: 1e-5 }).epsilon });
    }
    // /status `split`: its rounds with a miner (counted just before `uploaded`), that miner, the last loss
    const sp = c.split!;
    expect(sp.rounds).toBeGreaterThanOrEqual(c.uploaded);
    expect(sp.rounds).toBeLessThanOrEqual(c.uploaded + 1);
    expect(['miner-1', 'miner-2']).toContain(sp.miner);
    expect(sp.lastLoss).toBeGreaterThan(0);
    expect(sp.lastLoss).toBeLessThan(10);
    expect(sp.lastRoundAt).toBeGreaterThan(Date.now() - 300_000);
    expect(sp.failed).toBeGreaterThanOrEqual(0);
  }
  // a miner's /status `split` (what `bfl-node status` prints): the clients it served in the last
  // minute, batches answered and refused, body updates, samples towards the next one
  const served = new Set<string>();
  for (const m of s.miners) {
    const sp = m.split!;
    expect(sp.samplesPerUpdate).toBe(500); // learning.split.samplesPerUpdate's default
    expect(sp.sinceUpdate).toBeGreaterThanOrEqual(0);
    expect(sp.sinceUpdate).toBeLessThan(sp.samplesPerUpdate);
    expect(sp.sinceUpdate).toBeLessThanOrEqual(sp.pending);
    expect(sp.clientWindowMs).toBeGreaterThanOrEqual(60_000);
    expect(sp.refused).toBeGreaterThanOrEqual(0);
    expect(sp.bodyUpdatesRefused).toBeGreaterThanOrEqual(0);
    if (sp.lastError) expect(sp.lastError.code).toMatch(/^[A-Z_]+$|Error$/);
    expect(sp.clients).toEqual([...sp.clients].sort());
    sp.clients.forEach((id) => served.add(id));
    if (sp.batches > 0) expect(sp.lastLoss).toBeGreaterThan(0);
    // `bfl-node status` on this miner's /status: its split rows
    const text = formatStatus(m, { base: 'http://127.0.0.1:1' }).join('\n');
    expect(text).toMatch(new RegExp(`^ {2}split batches +${sp.batches} answered \\(${sp.samples} samples, last loss \\d\\.\\d{4}\\), ${sp.refused} refused$`, 'm'));
    expect(text).toMatch(new RegExp(`^ {2}body updates +${sp.bodyUpdates} made, ${sp.bodyUpdatesRefused} refused by its intake; the next after ${sp.sinceUpdate} of 500 samples`, 'm'));
  }
  for (const c of s.clients) expect(formatStatus(c, { base: 'http://127.0.0.1:1' }).join('\n')).toMatch(new RegExp(`^ {2}split rounds +${c.split!.rounds} trained with a miner \\(the last with miner-[12] at `, 'm'));
  // every client trains a round every few seconds: each was served within the window
  expect([...served].sort()).toEqual(['client-1', 'client-2', 'client-3']);
  expect(s.miners.reduce((n, m) => n + m.split!.bodyUpdates, 0)).toBeGreaterThanOrEqual(1);
  const batches = s.miners.reduce((n, m) => n + m.split!.batches, 0);
  expect(batches).toBeGreaterThan(0);
  // p2p.sealUpdates is on (the default): every batch reached its miner sealed with ML-KEM
  expect(s.miners.reduce((n, m) => n + (m.sealing?.opened ?? 0), 0)).toBeGreaterThanOrEqual(batches);
  expect(s.miners.reduce((n, m) => n + m.split!.headShares, 0)).toBeGreaterThan(0);
  expect(s.miners.every((m) => m.lastAccuracy === null)).toBe(true); // a miner holds no head

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
    // the shared heads were aggregated: the global model's head moved away from the genesis head
    const partsOf = (b: Block) => splitParams(payloadToDelta(aggregationTxOf(b)!.model), DEFAULT_MODEL, 1);
    const genesis = partsOf((await store.blockAt(0))!);
    const tip = partsOf((await store.getBlock(store.tip.anchor))!);
    expect(tip.head).not.toEqual(genesis.head);
    expect(tip.body).not.toEqual(genesis.body);
  } finally {
    await store.close();
  }
});
