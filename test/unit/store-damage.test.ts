/**
 * Damaged datadirs (issue 13, items 3 and 9): a chain store that lost its CURRENT file or its
 * parameters is refused (never a silent new genesis) and `chain repair` brings it back; a
 * damaged update pool has its own code and `chain verify` notices it; a lock held by a running
 * node is STORE_LOCKED naming its pid.
 */
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Level } from 'level';
import { describe, expect, it } from 'vitest';
import { ChainStore } from '../../src/chain/store.ts';
import { UpdatePool } from '../../src/chain/update-pool.ts';
import { verifyChain } from '../../src/chain/verify.ts';
import { PID_FILE } from '../../src/cli/datadir.ts';
import { toHex } from '../../src/core/bytes.ts';
import { BflError, ErrorCode } from '../../src/core/errors.ts';
import { sha256 } from '../../src/core/hash.ts';
import { paramsToJson } from '../../src/core/params.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { cli } from '../helpers/cli.ts';
import { type TestNetwork, makeNetwork, mineBlock, nextAggregation, signedRecord } from '../helpers/network.ts';
import { tmpDir } from '../helpers/tmp.ts';

const verifier = new InThreadVerifier();

/** A miner's datadir: chain/ with `n` blocks (in LevelDB tables, not only its log) and updates/ with two updates. */
async function minerDatadir(net: TestNetwork, n = 6): Promise<{ dir: string; height: number; tip: string }> {
  const dir = await tmpDir('bfl-damage-');
  const store = await ChainStore.open({ datadir: join(dir, 'chain'), params: net.params, signatures: verifier, now: () => Date.now() });
  let tip = store.tip;
  for (let i = 0; i < n; i++) {
    const r = [signedRecord(net, net.clients[i % net.clients.length], net.miners[0].id, tip.modelHash)];
    await store.addBlock(mineBlock(net, tip, net.miners[0], { records: r, aggregation: nextAggregation(net, tip, r), timestamp: tip.timestamp + 1000 }));
    tip = store.tip;
  }
  await store.close();
  // a second open replays the log into a table: the data then lives where a lost CURRENT hides it
  await (await ChainStore.open({ datadir: join(dir, 'chain'), signatures: verifier })).close();
  const pool = await UpdatePool.open(join(dir, 'updates'));
  for (const k of [1, 2]) {
    const payload = new Uint8Array(new Float32Array(8).fill(k).buffer);
    await pool.add({ clientId: net.clients[0].id, minerId: net.miners[0].id, baseModelHash: tip.modelHash, updateDigest: sha256(payload), sampleCount: 10, createdAt: net.params.genesisTime + k, signature: new Uint8Array(16), payloadBytes: 32, payload }, Date.now());
  }
  await pool.close();
  return { dir, height: tip.height, tip: toHex(tip.hash) };
}

async function rejection(p: Promise<unknown>): Promise<BflError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof BflError) return e;
    throw e;
  }
  throw new Error('expected a BflError');
}

function oneLine(s: string): string {
  const lines = s.trim().split('\n');
  expect(lines, s).toHaveLength(1);
  return lines[0];
}

describe('a damaged chain store', () => {
  it('without its CURRENT file is refused, never a new genesis; chain repair brings the chain back', async () => {
    const net = makeNetwork({ now: Date.now() - 600_000 });
    const { dir, height, tip } = await minerDatadir(net);
    rmSync(join(dir, 'chain', 'CURRENT'));
    const files = readdirSync(join(dir, 'chain')).sort();
    const e = await rejection(ChainStore.open({ datadir: join(dir, 'chain'), params: net.params, signatures: verifier }));
    expect(e.code).toBe(ErrorCode.STORE_CORRUPT);
    expect(e.message).toMatch(/is damaged \(LevelDB files but no CURRENT file\); stop the node and run `bfl-node chain repair --datadir .*`, or move .*chain aside/);
    expect(e.message).not.toMatch(/\n/);
    expect(readdirSync(join(dir, 'chain')).sort()).toEqual(files); // LevelDB was not let loose on it: nothing deleted
    // the chain tools say the same
    const v = await cli(['chain', 'verify', '--datadir', dir, '--json']);
    expect(v.code).toBe(1);
    expect(JSON.parse(v.out).error.code).toBe(ErrorCode.STORE_CORRUPT);

    const r = await cli(['chain', 'repair', '--datadir', dir, '--json']);
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out);
    expect(report).toMatchObject({ valid: true, height, tip, pool: { entries: 2, payloads: 2 } });
    expect(report.repaired).toEqual([join(dir, 'chain'), join(dir, 'updates')]);
    const store = await ChainStore.open({ datadir: join(dir, 'chain'), params: net.params, signatures: verifier });
    expect(toHex(store.tip.hash)).toBe(tip);
    await store.close();
  });

  it('whose parameters are lost or disagree with its genesis is damage (STORE_CORRUPT), not another network', async () => {
    const net = makeNetwork({ now: Date.now() - 600_000 });
    const { dir } = await minerDatadir(net, 2);
    const chain = join(dir, 'chain');
    const other = makeNetwork({});
    // parameters overwritten (with a valid other network's): the genesis block says they are not ours
    let db = new Level<string, string>(chain);
    await db.put('params', JSON.stringify(paramsToJson(other.params)));
    await db.close();
    let e = await rejection(ChainStore.open({ datadir: chain, params: net.params, signatures: verifier }));
    expect(e.code).toBe(ErrorCode.STORE_CORRUPT);
    expect(e.message).toMatch(/network parameters do not match its genesis block.*chain repair/);
    // unparsable
    db = new Level<string, string>(chain);
    await db.put('params', '{"networkId": "test-net", "difficu');
    await db.close();
    e = await rejection(ChainStore.open({ datadir: chain, params: net.params, signatures: verifier }));
    expect(e.code).toBe(ErrorCode.STORE_CORRUPT);
    expect(e.message).toMatch(/do not parse/);
    // gone, with the blocks still there: not a fresh datadir to write a genesis into
    db = new Level<string, string>(chain);
    await db.del('params');
    await db.close();
    e = await rejection(ChainStore.open({ datadir: chain, params: net.params, signatures: verifier }));
    expect(e.code).toBe(ErrorCode.STORE_CORRUPT);
    expect(e.message).toMatch(/chain data without network parameters/);
    // an empty database (a first start killed before its genesis) is still a fresh start
    const fresh = await tmpDir('bfl-damage-');
    const empty = new Level(fresh);
    await empty.open();
    await empty.close();
    const s = await ChainStore.open({ datadir: fresh, params: net.params, signatures: verifier });
    expect(s.tip.height).toBe(0);
    await s.close();
  });
});

describe('a damaged update pool', () => {
  it('is POOL_CORRUPT with the way out, not a raw LevelDB error; chain verify notices it', async () => {
    const net = makeNetwork({ now: Date.now() - 600_000 });
    const { dir } = await minerDatadir(net, 2);
    const updates = join(dir, 'updates');
    const good = await cli(['chain', 'verify', '--datadir', dir, '--json']);
    expect(JSON.parse(good.out)).toMatchObject({ valid: true, pool: { entries: 2, payloads: 2 } });

    // a payload altered on disk (one file each, named by its key with + for :)
    const file = readdirSync(join(updates, 'payloads'))[0];
    const key = file.replace('+', ':');
    writeFileSync(join(updates, 'payloads', file), new Uint8Array(32).fill(9));
    const v = await cli(['chain', 'verify', '--datadir', dir]);
    expect(v.code).toBe(1);
    expect(oneLine(v.out)).toMatch(new RegExp(`^INVALID update pool: POOL_CORRUPT: the update pool in ${updates} is damaged \\(the payload of ${key} does not hash to its digest\\)`));

    // an announcement that does not decode
    const db2 = new Level<string, Uint8Array>(updates, { valueEncoding: 'view' });
    await db2.sublevel<string, Uint8Array>('m', { valueEncoding: 'view' }).put(key, new Uint8Array(12));
    await db2.close();
    let e = await rejection(UpdatePool.open(updates));
    expect(e.code).toBe(ErrorCode.POOL_CORRUPT);
    expect(e.message).toMatch(new RegExp(`entry ${key}: .*chain repair --datadir ${dir}\``));

    // the manifest garbled: LevelDB's own corruption error, as POOL_CORRUPT
    for (const f of readdirSync(updates)) if (f.startsWith('MANIFEST-')) writeFileSync(join(updates, f), 'garbage');
    e = await rejection(UpdatePool.open(updates));
    expect(e.code).toBe(ErrorCode.POOL_CORRUPT);
    expect(e.message).toMatch(/LevelDB: .*Corruption/);
    expect((await verifyChain(join(dir, 'chain'), verifier, { poolDir: updates })).error?.code).toBe(ErrorCode.POOL_CORRUPT);
  });
});

describe('a store held by a running node', () => {
  it('is STORE_LOCKED (the pool too), and the chain tools name the pid', async () => {
    const net = makeNetwork({ now: Date.now() - 600_000 });
    const { dir } = await minerDatadir(net, 1);
    const pool = await UpdatePool.open(join(dir, 'updates'));
    const store = await ChainStore.open({ datadir: join(dir, 'chain'), signatures: verifier });
    writeFileSync(join(dir, PID_FILE), `${process.pid}\n`);
    try {
      const e = await rejection(UpdatePool.open(join(dir, 'updates')));
      expect(e.code).toBe(ErrorCode.STORE_LOCKED);
      expect(e.message).toMatch(/locked by a running node/);
      const r = await cli(['chain', 'repair', '--datadir', dir]);
      expect(r.code).toBe(1);
      expect(oneLine(r.err)).toMatch(new RegExp(`${dir} is locked by a running node \\(pid ${process.pid}\\); stop it first \\(STORE_LOCKED\\)`));
    } finally {
      await store.close();
      await pool.close();
    }
    expect(existsSync(join(dir, 'chain', 'CURRENT'))).toBe(true);
  });
});
