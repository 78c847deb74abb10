/**
 * What bounds a miner's update pool (issue 13, eighth wave): it forgets an update once its
 * payload is gone and the chain answers for a replay of it (recorded, or superseded by its
 * client's vote), keeping each client's vote; a replay of a forgotten update is still refused
 * with DUPLICATE_RECORD, after a reorg within the pruning depth and after a restart too.
 * The intake, fetcher, pool and store are the real ones; the miner's tip handling
 * (node/miner.ts) is followed step by step: records noted, readmit on a new model, pruning.
 */
import { describe, expect, it } from 'vitest';
import { ChainStore } from '../../src/chain/store.ts';
import { UpdatePool } from '../../src/chain/update-pool.ts';
import { aggregationTxOf } from '../../src/core/chain.ts';
import { SigningContext } from '../../src/core/contexts.ts';
import { blockHash, claimOfRecord, encodeUpdateClaim } from '../../src/core/encoding.ts';
import { BflError, ErrorCode } from '../../src/core/errors.ts';
import { sha256 } from '../../src/core/hash.ts';
import type { Block } from '../../src/core/types.ts';
import { encodeSignedUpdate, recordOf } from '../../src/core/update.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { protocols } from '../../src/net/protocols.ts';
import { pruneBlock, pruneRange } from '../../src/node/miner.ts';
import { UpdateFetcher } from '../../src/node/update-fetcher.ts';
import { UpdateIntake, type UpdateIntakeInit } from '../../src/node/update-intake.ts';
import { Verdicts } from '../../src/node/verdicts.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { makeNetwork, mineBlock, nextAggregation } from '../helpers/network.ts';
import { tmpDir } from '../helpers/tmp.ts';

/** Payloads are dropped this many blocks deep (the miner's pruneDepth, 32 in service: smaller here to keep the test fast). */
const DEPTH = 4;

async function setUp() {
  const net = makeNetwork({ phi: 2, clients: 2 });
  let now = net.params.genesisTime + 1000;
  const clock = { now: () => now } as never;
  const chainDir = await tmpDir('bfl-bound-chain-');
  const poolDir = await tmpDir('bfl-bound-pool-');
  const store = await ChainStore.open({ datadir: chainDir, params: net.params, signatures: new InThreadVerifier(), now: () => now });
  const config = { networkId: net.params.networkId, genesisTime: net.params.genesisTime, chain: { maxFutureMs: net.params.maxFutureMs }, p2p: { maxUpdateBytes: 1024, requestTimeoutMs: 1000, sealUpdates: false, clientUpdatesPerMinute: 0, clientUpdateBurst: 1 } } as never;
  const peers = { penalise: () => {}, info: () => undefined, admit: async () => ({ memberId: 'client', role: 'client' }), member: async () => ({ memberId: 'client', role: 'client' }) } as never;
  const verdicts = new Verdicts({ peers, logger: silentLogger });

  /** A miner's pool, fetcher and intake over the store (again after a restart: `restart`). */
  const node = async () => {
    const pool = await UpdatePool.open(poolDir);
    const handlers = new Map<string, (req: Uint8Array, peer: string) => Promise<Uint8Array>>();
    const transport = { serve: async (proto: string, h: (req: Uint8Array, peer: string) => Promise<Uint8Array>) => void handlers.set(proto, h), subscribe: () => {}, publish: async () => {} } as never;
    const fetcher = new UpdateFetcher({ config, membership: store.membership, pool, transport, peers, verifier: new InThreadVerifier(), verdicts, clock, logger: silentLogger }, net.params.initialModel.length);
    const intake = new UpdateIntake({ config, minerId: net.miners[0].id } as UpdateIntakeInit, { store, pool, fetcher, transport, peers, verdicts, clock, logger: silentLogger });
    await intake.start();
    return { pool, intake, submit: handlers.get(protocols(net.params.networkId).submit)! };
  };
  let n = await node();
  let prunedTo = 0;
  let seq = 0;

  /** A signed upload of `client` built on the tip's model, created now (or `createdAt`). */
  const update = (client: number, createdAt = now) => {
    const payload = new Uint8Array(net.params.initialModel.length).fill(++seq % 256);
    payload[0] = seq >> 8;
    const u = { clientId: net.clients[client].id, minerId: net.miners[0].id, baseModelHash: store.tip.modelHash, updateDigest: sha256(payload), sampleCount: 10, createdAt, payloadBytes: payload.length, payload };
    return { clientId: u.clientId, digest: u.updateDigest, bytes: encodeSignedUpdate({ ...u, signature: net.clients[client].key.sign(encodeUpdateClaim(claimOfRecord(net.params.networkId, u)), SigningContext.update) }) };
  };
  const upload = async (u: { bytes: Uint8Array }): Promise<string> => {
    try {
      await n.submit(u.bytes, 'peer');
      return 'OK';
    } catch (e) {
      return e instanceof BflError ? e.code : String(e);
    }
  };
  /** The miner's tip handling (Miner.tipChanged): an extension's records and model, or a recompute after a reorg; then pruning. */
  const follow = async (block: Block | undefined) => {
    if (block) {
      n.intake.recorded(block.txs.flatMap((tx) => (tx.type === 'record' ? [tx] : [])));
      const agg = aggregationTxOf(block);
      if (agg) await n.intake.readmit(agg.modelHash);
    } else await n.intake.recompute();
    const r = pruneRange(prunedTo, store.tip.height, DEPTH);
    for (let h = r.from; h <= r.to; h++) await pruneBlock((await store.blockAt(h))!, n.pool, n.intake);
    prunedTo = r.prunedTo;
  };
  /** Mine what the intake offers (one update per client), on the tip. */
  const mine = async () => {
    now += 1000;
    const records = (await n.intake.candidates(64)).map(recordOf);
    const block = mineBlock(net, store.tip, net.miners[0], { records, aggregation: nextAggregation(net, store.tip, records), timestamp: now });
    expect((await store.addBlock(block)).status).toBe('connected');
    await follow(block);
    return records;
  };
  /** Entries in the pool's LevelDB (what a restart loads). */
  const onDisk = async () => {
    await n.pool.close();
    n = await node();
    return n.pool.size;
  };
  return {
    net,
    store,
    update,
    upload,
    mine,
    follow,
    onDisk,
    pool: () => n.pool,
    tick: (ms: number) => void (now += ms),
    restart: async () => {
      await n.pool.close();
      n = await node();
    },
    close: async () => (await n.pool.close(), await store.close()),
  };
}

describe('the update pool is bounded by the pruning depth, and a replay of what it forgot is still refused', () => {
  it('a flood of one client over 30 blocks leaves the pool within (depth + 1) × uploads a block + one vote per client, in memory and on disk', async () => {
    const t = await setUp();
    try {
      const perBlock = 4; // client-1 uploads three a block (two of them superseded), client-2 one
      let accepted = 0;
      for (let b = 0; b < 30; b++) {
        for (let i = 0; i < 3; i++) {
          t.tick(10);
          expect(await t.upload(t.update(0))).toBe('OK');
        }
        expect(await t.upload(t.update(1))).toBe('OK');
        accepted += perBlock;
        const records = await t.mine();
        expect(records).toHaveLength(2);
      }
      const bound = (DEPTH + 1) * perBlock + 2;
      expect(accepted).toBe(120);
      expect(t.pool().size).toBeLessThanOrEqual(bound);
      // without a payload, at most each client's vote (here their newest votes still have theirs)
      const settled = t.pool().settled().map((e) => e.clientId);
      expect(new Set(settled).size).toBe(settled.length);
      expect(t.pool().live().length).toBeGreaterThan(0);
      expect(await t.onDisk()).toBeLessThanOrEqual(bound);
    } finally {
      await t.close();
    }
  });

  it('a recorded update and a superseded one, forgotten once buried, are refused as DUPLICATE_RECORD: at once, after a reorg within the depth, after a restart', async () => {
    const t = await setUp();
    try {
      const older = t.update(0);
      t.tick(10);
      const vote = t.update(0);
      const other = t.update(1);
      for (const u of [older, vote, other]) expect(await t.upload(u)).toBe('OK');
      const [r1] = await t.mine(); // records client-1's newest (the vote) and client-2's; `older` is superseded
      expect(r1.updateDigest).toEqual(vote.digest);
      // the replay record is kept while the payload is (DEPTH blocks)
      expect(await t.upload(older)).toBe(ErrorCode.DUPLICATE_RECORD);
      expect(await t.upload(vote)).toBe(ErrorCode.DUPLICATE_RECORD);
      // the clients go on voting: the first votes are not their newest any more
      for (let b = 0; b < DEPTH + 2; b++) {
        t.tick(1000);
        for (const c of [0, 1]) expect(await t.upload(t.update(c))).toBe('OK');
        await t.mine();
      }
      const forgotten = (u: { clientId: string; digest: Uint8Array }) => !t.pool().has(u.clientId, u.digest);
      expect([older, vote, other].every(forgotten)).toBe(true);
      const replays = async () => [await t.upload(older), await t.upload(vote), await t.upload(other)];
      const refused = [ErrorCode.DUPLICATE_RECORD, ErrorCode.DUPLICATE_RECORD, ErrorCode.DUPLICATE_RECORD];
      expect(await replays()).toEqual(refused);
      expect(t.pool().size).toBeLessThanOrEqual((DEPTH + 1) * 2 + 2);

      // a reorg within the depth: a heavier branch from two blocks back, without records
      const tip = t.store.tip;
      let parent = (await t.store.getState((await t.store.getState(tip.parentHash))!.parentHash))!;
      for (let b = 0; b < 3; b++) {
        const block = mineBlock(t.net, parent, t.net.miners[1], { timestamp: parent.timestamp + 1000 });
        await t.store.addBlock(block);
        parent = (await t.store.getState(blockHash(block.header)))!;
      }
      expect(t.store.tip.hash).toEqual(parent.hash);
      await t.follow(undefined);
      expect(await replays()).toEqual(refused);
      // still correct: the newest votes, in the two disconnected blocks, are recordable again (their payloads were kept)
      expect((await t.mine()).map((r) => r.clientId).sort()).toEqual([t.net.clients[0].id, t.net.clients[1].id]);

      // the clients stop (their waiting updates recorded first): blocks bury their last votes, kept without their payloads
      for (let b = 0; b < DEPTH + 2; b++) await t.mine();
      expect(t.pool().live()).toEqual([]);
      expect(t.pool().settled().map((e) => e.clientId).sort()).toEqual([t.net.clients[0].id, t.net.clients[1].id]);

      await t.restart();
      expect(t.pool().size).toBe(2);
      expect(await replays()).toEqual(refused);
      expect([older, vote, other].every(forgotten)).toBe(true);
      // a client's update created before its recorded vote, never seen here: refused alike (it could never be recorded)
      expect(await t.upload(t.update(0, t.net.params.genesisTime + 1000))).toBe(ErrorCode.DUPLICATE_RECORD);
    } finally {
      await t.close();
    }
  });
});

it("the pool's arrival log answers the load window (newest first) and holds only its last receivedLogMs", async () => {
  const pool = await UpdatePool.open(await tmpDir('bfl-bound-log-'), { receivedLogMs: 1000 });
  try {
    const t0 = 1_800_000_000_000;
    const put = (i: number, at: number) => {
      const payload = new Uint8Array(8).fill(i);
      return pool.add({ clientId: `client-${i % 2}`, minerId: i % 3 === 0 ? 'miner-2' : 'miner-1', baseModelHash: new Uint8Array(32), updateDigest: sha256(payload), sampleCount: 1, createdAt: at, signature: new Uint8Array(4), payloadBytes: 8, payload }, at);
    };
    for (let i = 0; i < 6; i++) await put(i, t0 + i * 400);
    expect(await put(5, t0 + 5000)).toBe(false); // known: not logged again
    const since = (t: number) => [...pool.receivedSince(t)].map((r) => `${r.clientId}@${r.at - t0}/${r.minerId}`);
    expect(since(t0 + 1200)).toEqual(['client-1@2000/miner-1', 'client-0@1600/miner-1', 'client-1@1200/miner-2']);
    // older than receivedLogMs before the newest arrival: gone from the log (the pool still holds them)
    expect(since(t0)).toEqual(since(t0 + 1000));
    expect(pool.size).toBe(6);
  } finally {
    await pool.close();
  }
});

it('a restarted pool rebuilds its arrival log from the stored arrival times: a miner does not announce 0 clients after a restart', async () => {
  const dir = await tmpDir('bfl-bound-relog-');
  const t0 = 1_800_000_000_000;
  let pool = await UpdatePool.open(dir, { receivedLogMs: 1000 });
  const since = (t: number) => [...pool.receivedSince(t)].map((r) => `${r.clientId}@${r.at - t0}/${r.minerId}`);
  try {
    for (let i = 0; i < 4; i++) {
      const payload = new Uint8Array(8).fill(i);
      await pool.add({ clientId: `client-${i}`, minerId: i === 3 ? 'miner-2' : 'miner-1', baseModelHash: new Uint8Array(32), updateDigest: sha256(payload), sampleCount: 1, createdAt: t0 + i * 400, signature: new Uint8Array(4), payloadBytes: 8, payload }, t0 + i * 400);
    }
  } finally {
    await pool.close();
  }
  const before = ['client-3@1200/miner-2', 'client-2@800/miner-1', 'client-1@400/miner-1', 'client-0@0/miner-1'];
  // 300 ms after the last arrival: the entries of the last 1000 ms, newest first, as the log held them
  pool = await UpdatePool.open(dir, { receivedLogMs: 1000, now: t0 + 1500 });
  try {
    expect(since(t0)).toEqual(before.slice(0, 2)); // client-1 and client-0 arrived more than 1000 ms before: out of the log
  } finally {
    await pool.close();
  }
  // long after: nothing in the window (the pool still holds the entries)
  pool = await UpdatePool.open(dir, { receivedLogMs: 1000, now: t0 + 60_000 });
  try {
    expect(since(0)).toEqual([]);
    expect(pool.size).toBe(4);
  } finally {
    await pool.close();
  }
});
