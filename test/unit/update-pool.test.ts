/**
 * The update pool's storage (chain/update-pool.ts): announcements on LevelDB, payloads one file
 * each; what a crash between the two writes leaves is cleaned up on open; payloads stored in
 * LevelDB by earlier versions are still read and pruned.
 */
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Level } from 'level';
import { describe, expect, it } from 'vitest';
import { UpdatePool, poolKey } from '../../src/chain/update-pool.ts';
import { sha256 } from '../../src/core/hash.ts';
import type { SignedUpdate } from '../../src/core/update.ts';
import { tmpDir } from '../helpers/tmp.ts';

function update(k: number, clientId = 'client-1'): SignedUpdate {
  const payload = new Uint8Array(new Float32Array(1000).fill(k).buffer);
  return { clientId, minerId: 'miner-1', baseModelHash: new Uint8Array(32).fill(1), updateDigest: sha256(payload), sampleCount: 10, createdAt: 1_700_000_000_000 + k, signature: new Uint8Array(16).fill(k), payloadBytes: payload.length, payload };
}
const bytes = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString('hex') : undefined);

describe('update pool storage', () => {
  it('a claimed payload file name has one writer: no second claim, no claim of a known update, and a store through a temporary file waits for the release', async () => {
    const dir = await tmpDir('bfl-pool-claim-');
    const pool = await UpdatePool.open(dir);
    try {
      const [a, b] = [update(1), update(2)];
      const claim = pool.claimPayloadFile(a.clientId, a.updateDigest)!;
      expect(claim.path).toBe(join(dir, 'payloads', poolKey(a.clientId, a.updateDigest).replace(':', '+')));
      expect(pool.claimPayloadFile(a.clientId, a.updateDigest)).toBeUndefined();
      // a fetch of the same update meanwhile (temporary file, renamed): waits for the claim
      let fetched: boolean | undefined;
      const other = pool.add(a, 9).then((x) => (fetched = x));
      writeFileSync(claim.path, a.payload, { flag: 'wx' });
      expect(await pool.adopt({ ...a, payloadBytes: a.payload.length }, claim.path, 5)).toBe(true);
      await new Promise((r) => setTimeout(r, 20));
      expect(fetched).toBeUndefined();
      claim.release();
      await other;
      expect(fetched).toBe(false); // stored by the claimant: the waiting store finds it known
      expect(pool.get(a.clientId, a.updateDigest)).toMatchObject({ hasPayload: true, receivedAt: 5 });
      expect(bytes(await pool.payload(a.clientId, a.updateDigest))).toBe(bytes(a.payload));
      expect(pool.claimPayloadFile(a.clientId, a.updateDigest)).toBeUndefined(); // known now
      // released without storing: the name is free again, and a store no longer waits
      pool.claimPayloadFile(b.clientId, b.updateDigest)!.release();
      expect(await pool.add(b, 6)).toBe(true);
      expect(readdirSync(join(dir, 'payloads')).sort()).toEqual([a, b].map((u) => poolKey(u.clientId, u.updateDigest).replace(':', '+')).sort());
    } finally {
      await pool.close();
    }
  });

  it('stores, reads, prunes and reopens: a payload is one file, its announcement stays after the prune', async () => {
    const dir = await tmpDir('bfl-pool-');
    let pool = await UpdatePool.open(dir);
    const [a, b] = [update(1), update(2, 'client-2')];
    expect(await pool.add(a, 5)).toBe(true);
    expect(await pool.add(b, 6)).toBe(true);
    expect(await pool.add(a, 7)).toBe(false);
    expect(readdirSync(join(dir, 'payloads')).sort()).toEqual([poolKey('client-1', a.updateDigest), poolKey('client-2', b.updateDigest)].map((k) => k.replace(':', '+')).sort());
    expect(bytes(await pool.payload('client-1', a.updateDigest))).toBe(bytes(a.payload));
    await pool.prunePayloads([poolKey('client-1', a.updateDigest)]);
    expect(await pool.payload('client-1', a.updateDigest)).toBeUndefined();
    await pool.close();

    pool = await UpdatePool.open(dir);
    expect(pool.get('client-1', a.updateDigest)).toMatchObject({ hasPayload: false, receivedAt: 5 });
    expect(pool.get('client-2', b.updateDigest)).toMatchObject({ hasPayload: true, receivedAt: 6 });
    expect(bytes(await pool.payload('client-2', b.updateDigest))).toBe(bytes(b.payload));
    expect(await pool.payloadsWithoutEntry()).toEqual([]);
    await pool.close();
  });

  it('announcements stored at once go to LevelDB in groups: each store resolves stored, all are there after a reopen', async () => {
    const dir = await tmpDir('bfl-pool-group-');
    let pool = await UpdatePool.open(dir);
    const many = Array.from({ length: 150 }, (_, k) => update(k + 1, `client-${k % 7}`));
    let batches = 0;
    const db = (pool as unknown as { meta: { batch: (...a: unknown[]) => Promise<void> } }).meta;
    const batch = db.batch.bind(db);
    db.batch = (...a: unknown[]) => (batches++, batch(...a));
    expect(await Promise.all(many.map((u, k) => pool.add(u, 100 + k)))).toEqual(many.map(() => true));
    // more than one announcement per write (150 stores, at most 64 a batch), and none lost
    expect(batches).toBeGreaterThanOrEqual(3);
    expect(batches).toBeLessThan(many.length);
    await pool.close();
    pool = await UpdatePool.open(dir);
    try {
      for (const [k, u] of many.entries()) expect(pool.get(u.clientId, u.updateDigest)).toMatchObject({ hasPayload: true, receivedAt: 100 + k });
      expect(await pool.payloadsWithoutEntry()).toEqual([]);
    } finally {
      await pool.close();
    }
  });

  it('a crash between the payload and its announcement leaves nothing behind after the next open', async () => {
    const dir = await tmpDir('bfl-pool-');
    let pool = await UpdatePool.open(dir);
    await pool.add(update(1), 1);
    await pool.close();
    const orphan = update(2);
    // interrupted while writing (a temporary file) and after the rename (no announcement yet)
    writeFileSync(join(dir, 'payloads', `${poolKey('client-1', orphan.updateDigest).replace(':', '+')}.1.tmp`), orphan.payload.subarray(0, 100));
    writeFileSync(join(dir, 'payloads', poolKey('client-1', orphan.updateDigest).replace(':', '+')), orphan.payload);
    pool = await UpdatePool.open(dir, { readOnly: true });
    expect(await pool.payloadsWithoutEntry()).toEqual([]); // chain verify does not call it damage
    await pool.close();
    pool = await UpdatePool.open(dir);
    expect(readdirSync(join(dir, 'payloads'))).toEqual([poolKey('client-1', update(1).updateDigest).replace(':', '+')]);
    expect(pool.has('client-1', orphan.updateDigest)).toBe(false);
    expect(await pool.add(orphan, 3)).toBe(true); // the upload, retried, is taken
    expect(bytes(await pool.payload('client-1', orphan.updateDigest))).toBe(bytes(orphan.payload));
    await pool.close();
  });

  it('reads and prunes payloads an earlier version stored in LevelDB', async () => {
    const dir = await tmpDir('bfl-pool-');
    let pool = await UpdatePool.open(dir);
    const u = update(4);
    await pool.add(u, 1);
    await pool.close();
    // move the payload where earlier versions kept it
    const key = poolKey('client-1', u.updateDigest);
    const db = new Level<string, Uint8Array>(dir, { valueEncoding: 'view' });
    await db.sublevel<string, Uint8Array>('p', { valueEncoding: 'view' }).put(key, u.payload);
    await db.close();
    rmSync(join(dir, 'payloads', key.replace(':', '+')));
    pool = await UpdatePool.open(dir);
    expect(pool.get('client-1', u.updateDigest)?.hasPayload).toBe(true);
    expect(bytes(await pool.payload('client-1', u.updateDigest))).toBe(bytes(u.payload));
    await pool.prunePayloads([key]);
    await pool.close();
    pool = await UpdatePool.open(dir);
    expect(pool.get('client-1', u.updateDigest)?.hasPayload).toBe(false);
    expect(await pool.payload('client-1', u.updateDigest)).toBeUndefined();
    expect(existsSync(join(dir, 'payloads'))).toBe(true);
    await pool.close();
  });
});
