/**
 * A 4-miner partition (issue 13, "Also"): real bfl-node processes on loopback. Miners 1-2 with
 * clients 1-2 | miners 3-4 with clients 3-4, both sides mining and aggregating; then healed. All
 * converge on the most-work chain, and the reward ledger and every aggregator state match those
 * of a fresh miner (miner-5) that synced the winning chain and never saw the losing side.
 *
 * The partition is a matter of dialing: each side runs a config of the same network (the same
 * genesis: addresses are not consensus) that leaves the other side's addresses out, so nobody
 * dials across. Healing restarts miner-1 with the full config: it dials miners 3 and 4, and the
 * others converge through it (miners 2 and 4 never connect directly). Slow (minutes on a loaded
 * machine, 9 node processes): `npm run test:slow`.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { ChainStore } from '../../src/chain/store.ts';
import { verifyChain } from '../../src/chain/verify.ts';
import { toHex } from '../../src/core/bytes.ts';
import { aggregationTxOf } from '../../src/core/chain.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { Cluster, type Status } from '../helpers/cluster.ts';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.stopAll();
  cluster = undefined;
});

const A = { miners: ['miner-1', 'miner-2'], clients: ['client-1', 'client-2'] };
const B = { miners: ['miner-3', 'miner-4'], clients: ['client-3', 'client-4'] };
const FRESH = 'miner-5';
const chainDir = (c: Cluster, id: string) => join(c.node(id).datadir, 'chain');

/** The network file as seen from one side: the members outside `side` have no address to dial. */
async function sideConfig(c: Cluster, name: string, side: string[]): Promise<string> {
  const cfg = JSON.parse(await readFile(c.init.config, 'utf8'));
  for (const m of cfg.members) {
    if (side.includes(m.id)) continue;
    delete m.listen;
    delete m.dial;
  }
  const file = join(c.dir, `network-${name}.json`);
  await writeFile(file, JSON.stringify(cfg, null, 2));
  return file;
}

async function json(c: Cluster, id: string, path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${c.node(id).api}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.json() };
}

/** Every aggregation block of the canonical chain with the aggregator state stored beside it (hex). */
async function aggregatorStates(dir: string): Promise<Record<string, string>> {
  const store = await ChainStore.open({ datadir: dir, signatures: new InThreadVerifier(), readOnly: true });
  try {
    const out: Record<string, string> = {};
    for (let h = 0; h <= store.tip.height; h++) {
      const block = (await store.blockAt(h))!;
      const hash = (await store.hashAt(h))!;
      if (!aggregationTxOf(block)) continue;
      const state = await store.aggregatorState(Buffer.from(hash, 'hex'));
      out[`${h}:${hash.slice(0, 16)}`] = state ? toHex(state) : 'missing';
    }
    return out;
  } finally {
    await store.close();
  }
}

const settled = (s: Status[]) => new Set(s.map((x) => x.tip)).size === 1 && s.every((x) => x.pool.unrecorded === 0);

it('4 miners split 2 | 2, both sides aggregating, then healed: one most-work chain, and the ledger and every aggregator state of a miner that never saw the losing side', { timeout: 900_000 }, async () => {
  // clients upload every ~2.5 s (20 samples/s, N = 50), so the chain stays short of the 32-block
  // payload pruning: the fresh miner must recompute every aggregation from the raw updates
  const c = (cluster = await Cluster.create({ miners: 5, clients: 4, phi: 2, learning: { rate: 20 } }));
  const configA = await sideConfig(c, 'a', [...A.miners, ...A.clients]);
  const configB = await sideConfig(c, 'b', [...B.miners, ...B.clients]);
  for (const id of [...A.miners, ...A.clients]) c.start(id, { config: configA });
  for (const id of [...B.miners, ...B.clients]) c.start(id, { config: configB });

  // both sides mine and aggregate, apart
  await c.waitFor([...A.miners, ...B.miners], (s) => s.every((x) => x.aggregations >= 2), 300_000, 'both sides to aggregate twice');
  for (const id of B.clients) await c.stop(id);
  const [b] = await c.waitStable(B.miners, settled, 120_000, 'side B to settle');
  // nobody is connected across the partition
  for (const side of [A, B]) for (const id of side.miners) expect((await c.status(id))!.miners, id).toEqual(side.miners.filter((m) => m !== id));
  // side A goes on until it holds clearly more work, then settles too
  await c.waitFor(A.miners, (s) => s.every((x) => x.height >= b.height + 3 && x.aggregations > b.aggregations), 300_000, 'side A to pull ahead');
  for (const id of A.clients) await c.stop(id);
  const [a] = await c.waitStable(A.miners, settled, 120_000, 'side A to settle');
  expect(BigInt(a.work)).toBeGreaterThan(BigInt(b.work));
  expect(a.tip).not.toBe(b.tip);

  // heal: miner-1 comes back knowing every address
  await c.stop('miner-1');
  c.start('miner-1');
  const all = [...A.miners, ...B.miners];
  const healed = await c.waitStable(all, settled, 300_000, 'the four miners to converge', 3000);
  for (const id of all) {
    // the most-work chain: A's tip is on it (B's updates built on genesis may have been recorded after it), B's is not
    expect((await json(c, id, `/api/blocks/${a.tip}`)).body.canonical, `${id}: A's tip canonical`).toBe(true);
    const lost = await json(c, id, `/api/blocks/${b.tip}`);
    if (lost.status === 200) expect(lost.body.canonical, `${id}: B's tip canonical`).toBe(false);
  }
  expect(BigInt(healed[0].work)).toBeGreaterThanOrEqual(BigInt(a.work));
  console.log(`side A: height ${a.height}, ${a.aggregations} aggregations; side B: height ${b.height}, ${b.aggregations} aggregations; healed: height ${healed[0].height}, ${healed[0].aggregations} aggregations`);

  // a fresh miner syncs the winning chain; it never holds the losing side's tip
  c.start(FRESH);
  const [fresh] = await c.waitFor([FRESH], ([s]) => s.tip === healed[0].tip, 300_000, 'the fresh miner to sync');
  expect(fresh.height).toBe(healed[0].height);
  expect((await json(c, FRESH, `/api/blocks/${b.tip}`)).status).toBe(404);
  const ledgers = await Promise.all([...all, FRESH].map(async (id) => (await json(c, id, '/rewards')).body));
  for (const l of ledgers) expect(l).toEqual(ledgers[4]);
  const aggregations = await Promise.all([...all, FRESH].map(async (id) => (await json(c, id, '/api/aggregations?limit=1000')).body));
  const view = (x: any) => x.aggregations.map(({ round, height, hash, modelHash, labels, rewards, high, low }: any) => ({ round, height, hash, modelHash, labels, rewards, high, low }));
  expect(view(aggregations[4]).length).toBeGreaterThanOrEqual(a.aggregations + 1);
  for (const x of aggregations) expect(view(x)).toEqual(view(aggregations[4]));
  await c.stopAll();

  // every aggregator state along the winning chain, byte for byte, and chain verify on every store
  const reference = await aggregatorStates(chainDir(c, FRESH));
  expect(Object.keys(reference).length).toBeGreaterThanOrEqual(a.aggregations + 1); // genesis and every aggregation
  expect(Object.values(reference).slice(1)).not.toContain('missing');
  for (const id of all) expect(await aggregatorStates(chainDir(c, id)), `${id}'s aggregator states`).toEqual(reference);
  for (const id of [...all, FRESH]) {
    const r = await verifyChain(chainDir(c, id), new InThreadVerifier());
    expect(r.valid, `${id}: ${JSON.stringify(r.error)}`).toBe(true);
    expect(r.tip).toBe(healed[0].tip);
    expect(r.balances).toEqual(ledgers[4]);
  }
});
