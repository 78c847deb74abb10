/**
 * Issue 13, item 2 with real bfl-node processes on loopback: a miner whose datadir is wiped
 * after the chain has grown past the 32-block pruning depth syncs it again (the oldest
 * aggregations accepted on the work built on them, the aggregator state fetched from the other
 * miner, the newer aggregations recomputed), then goes on validating and mining with it.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { verifyChain } from '../../src/chain/verify.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { Cluster } from '../helpers/cluster.ts';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.stopAll();
  cluster = undefined;
});

const HEIGHT = 45;

it(`a miner with a wiped datadir syncs ${HEIGHT}+ blocks past the pruning depth, then validates and mines; chain verify says what it recomputed`, { timeout: 900_000 }, async () => {
  const c = (cluster = await Cluster.create({ miners: 2, clients: 2, phi: 1 }));
  for (const n of c.init.nodes) c.start(n.id);
  await c.waitFor(['miner-1'], ([s]) => s.height >= HEIGHT, 240_000, `${HEIGHT} blocks`);
  await c.stop('miner-2', 'SIGKILL');
  const dir = c.node('miner-2').datadir;
  await rm(join(dir, 'chain'), { recursive: true });
  await rm(join(dir, 'updates'), { recursive: true });
  const [before] = await c.waitFor(['miner-1'], ([s]) => s.height >= HEIGHT + 2, 60_000, 'miner-1 to go on alone');
  c.start('miner-2');
  const t0 = Date.now();
  await c.waitFor(['miner-2'], ([s]) => s.height >= before.height, 480_000, 'the wiped miner to catch up');
  console.log(`the wiped miner caught up with height ${before.height} in ${Math.round((Date.now() - t0) / 1000)} s`);
  // caught up, it validates (and mines) what comes next
  const [caught] = await c.waitFor(['miner-2'], ([s]) => s.height > 0, 1000, 'a status');
  await c.waitFor(['miner-2'], ([s]) => s.aggregations >= caught.aggregations + 2, 180_000, 'two more aggregations on the wiped miner');
  for (const id of ['client-1', 'client-2']) await c.stop(id);
  const [m1, m2] = await c.waitStable(['miner-1', 'miner-2'], (s) => s[0].tip === s[1].tip && s.every((x) => x.pool.unrecorded === 0), 120_000, 'miners to converge');
  expect(m2.tip).toBe(m1.tip);
  await c.stopAll();
  const r = await verifyChain(join(dir, 'chain'), new InThreadVerifier(), { poolDir: join(dir, 'updates') });
  expect(r.valid, JSON.stringify(r.error)).toBe(true);
  const check = r.aggregationCheck!;
  expect(check.acceptedOnWork.length).toBeGreaterThan(0);
  expect(check.recomputed.length).toBeGreaterThan(0);
  expect(Math.max(...check.acceptedOnWork)).toBeLessThan(Math.min(...check.recomputed));
  // miner-1 went on mining (and pruning) while the wiped miner caught up: later syncs took more on work
  expect(Math.max(...check.acceptedOnWork)).toBeLessThanOrEqual(r.height - 32);
  console.log(`chain verify on the wiped miner: height ${r.height}, ${check.acceptedOnWork.length} aggregations accepted on work (heights ${check.acceptedOnWork[0]}..${check.acceptedOnWork.at(-1)}), ${check.recomputed.length} recomputed, ${check.checkedOnArrival.length} checked on arrival`);
});
