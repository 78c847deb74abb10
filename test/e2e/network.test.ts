/**
 * The daemon end to end: real bfl-node processes (miners and clients) on loopback.
 */
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { ChainStore } from '../../src/chain/store.ts';
import { verifyChain } from '../../src/chain/verify.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { Cluster, type Status } from '../helpers/cluster.ts';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.stopAll();
  cluster = undefined;
});

const chainDir = (c: Cluster, id: string) => join(c.node(id).datadir, 'chain');
const minerIds = (n: number) => Array.from({ length: n }, (_, i) => `miner-${i + 1}`);

/** Stop the clients, then wait until the miners hold no unrecorded update and share one tip. */
async function quiesce(c: Cluster, miners: string[], clients: string[]): Promise<Status[]> {
  for (const id of clients) await c.stop(id);
  return c.waitStable(miners, (s) => new Set(s.map((x) => x.tip)).size === 1 && s.every((x) => x.pool.unrecorded === 0), 60_000, 'miners to converge');
}

it('2 miners and 3 clients reach 3 aggregations and converge on one tip; chain verify passes', { timeout: 240_000 }, async () => {
  const c = (cluster = await Cluster.create({ miners: 2, clients: 3, phi: 3 }));
  const all = c.init.nodes.map((n) => n.id);
  for (const id of all) c.start(id);
  await c.waitFor(minerIds(2), (s) => s.every((x) => x.aggregations >= 3), 90_000, '3 aggregations on both miners');
  const metrics = await (await fetch(`${c.node('miner-1').api}/metrics`)).text();
  expect(metrics).toMatch(/^bfl_chain_height\{node="miner-1"\} \d+$/m);
  expect(metrics).toMatch(/^bfl_miner_blocks_mined_total\{node="miner-1"\} \d+$/m);
  expect(metrics).toMatch(/^bfl_model_accuracy_ratio\{node="miner-1"\} 0\.\d+$/m);
  // every worker isolate's heap, the proof-of-work workers' too (read while they search)
  for (const w of ['aggregation', 'verifier', 'pow']) expect(metrics).toMatch(new RegExp(`^bfl_worker_memory_bytes\\{[^}]*worker="${w}"[^}]*kind="heap_used"[^}]*\\} [1-9]\\d*$`, 'm'));
  const [m1, m2] = await quiesce(c, minerIds(2), ['client-1', 'client-2', 'client-3']);
  expect(m1.tip).toBe(m2.tip);
  expect(m1.aggregations).toBeGreaterThanOrEqual(3);
  // the model learnt something: random is 0.1. Each client trains 2 epochs on 50 digits, so after
  // 3-6 aggregations the model is at 0.49-0.64 (seen alone and beside another test file): a bar
  // at 0.5 failed on load, not on learning; three times chance is the claim.
  expect(m1.lastAccuracy).toBeGreaterThan(0.3);
  await c.stopAll();
  for (const id of minerIds(2)) {
    const r = await verifyChain(chainDir(c, id), new InThreadVerifier());
    expect(r.valid, JSON.stringify(r.error)).toBe(true);
    expect(r.tip).toBe(m1.tip);
  }
});

it('a miner killed with SIGKILL restarts, resumes and catches up; chain verify passes', { timeout: 300_000 }, async () => {
  const c = (cluster = await Cluster.create({ miners: 2, clients: 2, phi: 2 }));
  for (const n of c.init.nodes) c.start(n.id);
  await c.waitFor(['miner-2'], ([s]) => s.aggregations >= 2, 90_000, 'miner-2 to aggregate twice');
  await c.stop('miner-2', 'SIGKILL');
  const [before] = await c.waitFor(['miner-1'], ([s]) => s.aggregations >= 4, 90_000, 'miner-1 to go on alone');
  c.start('miner-2');
  await c.waitFor(['miner-2'], ([s]) => s.height >= before.height, 60_000, 'the restarted miner to catch up');
  const [m1, m2] = await quiesce(c, minerIds(2), ['client-1', 'client-2']);
  expect(m2.tip).toBe(m1.tip);
  await c.stopAll();
  const r = await verifyChain(chainDir(c, 'miner-2'), new InThreadVerifier());
  expect(r.valid, JSON.stringify(r.error)).toBe(true);
  expect(r.height).toBeGreaterThanOrEqual(before.height);
});

it('two miners mining apart, then reconnected, converge on the most-work chain with its ledger', { timeout: 240_000 }, async () => {
  const c = (cluster = await Cluster.create({ miners: 2, clients: 2, phi: 1 }));
  // apart: miner-1 with client-1 first, then miner-2 with client-2 (never connected to each other)
  c.start('miner-1');
  c.start('client-1');
  await c.waitFor(['miner-1'], ([s]) => s.aggregations >= 8, 90_000, 'miner-1 alone to aggregate 8 times');
  await c.stop('client-1');
  const [a] = await c.waitFor(['miner-1'], ([s]) => s.pool.unrecorded === 0, 30_000, 'miner-1 to record everything');
  await c.stop('miner-1');
  c.start('miner-2');
  c.start('client-2');
  await c.waitFor(['miner-2'], ([s]) => s.aggregations >= 1, 90_000, 'miner-2 alone to aggregate');
  await c.stop('client-2');
  const [b] = await c.waitFor(['miner-2'], ([s]) => s.pool.unrecorded === 0, 30_000, 'miner-2 to record everything');
  expect(BigInt(b.work)).toBeLessThan(BigInt(a.work)); // miner-1's chain has more work
  // reconnected
  c.start('miner-1');
  // after the reorg, miner-2's updates from its abandoned branch are recorded again on the
  // winning chain: wait until the miners agree and stay agreed
  const [m1, m2] = await c.waitStable(minerIds(2), (s) => s[0].tip === s[1].tip && s.every((x) => x.pool.unrecorded === 0), 60_000, 'the miners to converge');
  expect(BigInt(m1.work)).toBeGreaterThanOrEqual(BigInt(a.work));
  const rewards = await Promise.all(c.init.nodes.filter((n) => n.role === 'miner').map(async (n) => (await fetch(`${n.api}/rewards`)).json()));
  expect(rewards[1]).toEqual(rewards[0]);
  await c.stopAll();
  for (const id of minerIds(2)) {
    const r = await verifyChain(chainDir(c, id), new InThreadVerifier());
    expect(r.valid, JSON.stringify(r.error)).toBe(true);
    expect(r.tip).toBe(m1.tip);
    expect(r.balances).toEqual(rewards[0]); // the ledger is the winning chain's
  }
  expect(m2.tip).toBe(m1.tip);
});

it('a client cut off from every miner buffers its updates and uploads their average on reconnect', { timeout: 180_000 }, async () => {
  const c = (cluster = await Cluster.create({ miners: 1, clients: 1, phi: 1 }));
  c.start('miner-1');
  c.start('client-1');
  await c.waitFor(['client-1'], ([s]) => s.uploaded >= 1, 60_000, 'a first upload');
  await c.stop('miner-1', 'SIGKILL');
  const [offline] = await c.waitFor(['client-1'], ([s]) => s.buffered >= 2, 60_000, 'two buffered updates');
  expect(offline.nearest).toBeNull();
  c.start('miner-1');
  const [back] = await c.waitFor(['client-1'], ([s]) => s.buffered === 0 && s.lastAveragedUpload !== null, 60_000, 'the averaged upload');
  const avgUpload = back.lastAveragedUpload;
  const N = 50;
  expect(avgUpload.averaged).toBeGreaterThanOrEqual(2);
  expect(avgUpload.samples).toBe(avgUpload.averaged * N);
  await c.waitFor(['miner-1'], ([s]) => s.pool.unrecorded === 0, 30_000, 'the miner to record it');
  await c.stopAll();
  // the averaged update is on chain, with the summed sample count, signed by the client
  const store = await ChainStore.open({ datadir: chainDir(c, 'miner-1'), signatures: new InThreadVerifier() });
  try {
    const records = [];
    for (let h = 1; h <= store.tip.height; h++) for (const tx of (await store.blockAt(h))!.txs) if (tx.type === 'record') records.push(tx);
    const avg = records.find((r) => Buffer.from(r.updateDigest).toString('hex') === avgUpload.digest);
    expect(avg).toBeDefined();
    expect(avg!.sampleCount).toBe(avgUpload.samples);
  } finally {
    await store.close();
  }
});
