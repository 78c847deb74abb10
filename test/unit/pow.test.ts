import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { blockHash, encodeHeader } from '../../src/core/encoding.ts';
import { sha256 } from '../../src/core/hash.ts';
import { PowSearcher, TARGET1, hashToBigInt, meetsTarget, mineHeaderSync, targetFromDifficulty } from '../../src/core/pow.ts';
import { sha256Js } from '../../src/core/sha256.ts';
import type { BlockHeader } from '../../src/core/types.ts';
import { InThreadMiner, WorkerMinerPool } from '../../src/mining/miner.ts';

const header = (over: Partial<BlockHeader> = {}): BlockHeader => ({
  version: 1,
  height: 7,
  prevHash: new Uint8Array(32).fill(3),
  merkleRoot: new Uint8Array(32).fill(4),
  timestamp: 1_700_000_000_123,
  difficulty: 64n,
  minerId: 'miner-1',
  nonce: 0,
  ...over,
});

describe('SHA-256 compression', () => {
  it('matches node:crypto on every length around the block boundaries', () => {
    const data = randomBytes(300);
    for (let len = 0; len <= 300; len++) expect(Buffer.from(sha256Js(data.subarray(0, len)))).toEqual(Buffer.from(sha256(data.subarray(0, len))));
  });
});

describe('PowSearcher (midstate)', () => {
  it('hashes the same as SHA-256 of the encoded header, for any id length and nonce', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,23}$/), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (minerId, nonce) => {
        const h = header({ minerId, nonce });
        const s = PowSearcher.forHeader(h);
        expect(Buffer.from(s.hash(nonce))).toEqual(Buffer.from(blockHash(h)));
        // ids of at most 24 bytes keep each attempt to a single compression
        expect(s.blocksPerAttempt).toBe(1);
      }),
      { numRuns: 200 },
    );
  });

  it('finds a nonce whose hash meets the target, and the first one', () => {
    const h = header({ difficulty: 500n });
    const solved = mineHeaderSync(h)!;
    expect(meetsTarget(blockHash(solved), 500n)).toBe(true);
    for (let n = 0; n < solved.nonce; n++) expect(meetsTarget(blockHash({ ...h, nonce: n }), 500n)).toBe(false);
  });

  it('target maths: difficulty d means hash < 2^256 / d', () => {
    expect(targetFromDifficulty(1n)).toBe(TARGET1);
    expect(meetsTarget(new Uint8Array(32).fill(0xff), 1n)).toBe(true);
    expect(meetsTarget(new Uint8Array(32).fill(0xff), 2n)).toBe(false);
    const half = new Uint8Array(32);
    half[0] = 0x80;
    expect(hashToBigInt(half)).toBe(TARGET1 / 2n);
    expect(meetsTarget(half, 2n)).toBe(false); // not strictly below
    half[0] = 0x7f;
    expect(meetsTarget(half, 2n)).toBe(true);
    expect(() => targetFromDifficulty(0n)).toThrow(RangeError);
  });
});

describe('miners', () => {
  it('in-thread miner solves and reports a hash rate', async () => {
    const m = new InThreadMiner();
    const r = (await m.mine(header({ difficulty: 2000n })))!;
    expect(meetsTarget(blockHash(r.header), 2000n)).toBe(true);
    expect(r.hashes).toBe(r.header.nonce + 1);
    expect(m.hashRate).toBeGreaterThan(0);
  });

  it('worker pool solves, and an abort stops a search that cannot finish', async () => {
    const pool = new WorkerMinerPool({ workers: 2 });
    try {
      const r = (await pool.mine(header({ difficulty: 20_000n })))!;
      expect(meetsTarget(blockHash(r.header), 20_000n)).toBe(true);
      const ac = new AbortController();
      const start = pool.totalHashes();
      const pending = pool.mine(header({ difficulty: 1n << 60n }), ac.signal);
      // abort once the workers have counted work (on a loaded machine 100 ms may hold none)
      for (const until = Date.now() + 20_000; pool.totalHashes() === start && Date.now() < until; ) await new Promise((res) => setTimeout(res, 20));
      const before = pool.totalHashes();
      expect(before).toBeGreaterThan(start);
      ac.abort();
      expect(await pending).toBeNull();
      await new Promise((res) => setTimeout(res, 150));
      const settled = pool.totalHashes();
      await new Promise((res) => setTimeout(res, 150));
      expect(pool.totalHashes()).toBe(settled); // workers really stopped
      expect(settled).toBeGreaterThan(before - 1);
      expect(pool.hashRate).toBeGreaterThan(0);
      // a new job after an abort still works
      const again = (await pool.mine(header({ difficulty: 1000n, height: 8 })))!;
      expect(meetsTarget(blockHash(again.header), 1000n)).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it("the pool's heaps can be read in the middle of a job (bfl_worker_memory_bytes), and not once it is closed", async () => {
    const pool = new WorkerMinerPool({ workers: 2 });
    const ac = new AbortController();
    let pending: Promise<unknown> | undefined;
    try {
      pending = pool.mine(header({ difficulty: 1n << 60n }), ac.signal);
      const start = pool.totalHashes();
      for (const until = Date.now() + 20_000; pool.totalHashes() === start && Date.now() < until; ) await new Promise((res) => setTimeout(res, 20));
      expect(pool.totalHashes()).toBeGreaterThan(start); // the workers are searching
      const h = await Promise.race([pool.heapStatistics(), new Promise<'no answer'>((res) => setTimeout(() => res('no answer'), 10_000))]);
      expect(h).not.toBe('no answer');
      const { heapUsed, external } = h as { heapUsed: number; external: number };
      expect(heapUsed).toBeGreaterThan(0);
      expect(external).toBeGreaterThan(0);
    } finally {
      ac.abort();
      await pending;
      await pool.close();
    }
    expect(await pool.heapStatistics()).toBeUndefined();
  });

  it('a second job makes the first one resolve null (stale work dropped)', async () => {
    const pool = new WorkerMinerPool({ workers: 1 });
    try {
      const first = pool.mine(header({ difficulty: 1n << 60n }));
      await new Promise((res) => setTimeout(res, 50));
      const second = pool.mine(header({ difficulty: 100n, height: 9 }));
      expect(await first).toBeNull();
      expect((await second)!.header.height).toBe(9);
    } finally {
      await pool.close();
    }
  });
});

it('header encoding puts the nonce last', () => {
  const a = encodeHeader(header({ nonce: 1 }));
  const b = encodeHeader(header({ nonce: 2 }));
  expect(Buffer.from(a.subarray(0, -8))).toEqual(Buffer.from(b.subarray(0, -8)));
});
