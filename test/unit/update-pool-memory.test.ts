/**
 * What the update pool keeps in memory (issue 13, memory that does not grow with the chain): an
 * update whose payload was pruned is only its replay record, without the 2,420-byte ML-DSA
 * signature (which stays on disk); a re-sent payload restores the whole entry.
 */
import { expect, it } from 'vitest';
import { UpdatePool } from '../../src/chain/update-pool.ts';
import { sha256 } from '../../src/core/hash.ts';
import type { SignedUpdate } from '../../src/core/update.ts';
import { tmpDir } from '../helpers/tmp.ts';

const NOW = 1_800_000_000_000;

function update(i: number): SignedUpdate {
  const payload = new Uint8Array(new Float32Array([i, i + 1, i + 2, i + 3]).buffer);
  return { clientId: `client-${i % 3}`, minerId: 'miner-1', baseModelHash: new Uint8Array(32).fill(7), updateDigest: sha256(payload), sampleCount: 10, createdAt: NOW + i, signature: new Uint8Array(2420).fill(i), payloadBytes: payload.length, payload };
}

it('a pruned update keeps its replay record without its signature in memory, on reopen too; the signature stays on disk', async () => {
  const dir = await tmpDir('bfl-pool-mem-');
  let pool = await UpdatePool.open(dir);
  const ups = Array.from({ length: 20 }, (_, i) => update(i));
  for (const u of ups) await pool.add(u, NOW);
  const pruned = ups.slice(0, 15).map((u) => `${u.clientId}:${Buffer.from(u.updateDigest).toString('hex')}`);
  const intakeHolds = pool.get(ups[0].clientId, ups[0].updateDigest)!; // the intake keeps entry objects
  await pool.prunePayloads(pruned);
  expect(intakeHolds.hasPayload).toBe(false);
  const held = () => [...pool.live(), ...pool.settled()].reduce((n, e) => n + e.signature.length, 0);
  expect(held()).toBe(5 * 2420);
  for (const u of ups) expect(pool.has(u.clientId, u.updateDigest)).toBe(true);
  expect(pool.get(ups[19].clientId, ups[19].updateDigest)!.signature).toEqual(ups[19].signature);
  await pool.close();
  pool = await UpdatePool.open(dir);
  try {
    expect(pool.size).toBe(20);
    expect(held()).toBe(5 * 2420);
    expect(pool.get(ups[0].clientId, ups[0].updateDigest)).toMatchObject({ hasPayload: false, sampleCount: 10, createdAt: NOW, minerId: 'miner-1' });
    // the payload again (a miner fetching it for a reorg): the whole entry is back
    expect(await pool.add(ups[0], NOW + 5)).toBe(false);
    expect(pool.get(ups[0].clientId, ups[0].updateDigest)).toMatchObject({ hasPayload: true, signature: ups[0].signature, receivedAt: NOW });
  } finally {
    await pool.close();
  }
});
