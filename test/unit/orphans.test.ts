import { expect, it } from 'vitest';
import { OrphanPool } from '../../src/chain/orphans.ts';
import type { Block } from '../../src/core/types.ts';

const block = (parent: number): Block => ({
  header: { version: 1, height: 2, prevHash: new Uint8Array(32).fill(parent), merkleRoot: new Uint8Array(32), timestamp: 0, difficulty: 1n, minerId: 'm', nonce: 0 },
  signature: new Uint8Array(0),
  txs: [],
});
const hex = (n: number) => Buffer.alloc(32, n).toString('hex');

it('is bounded in count: the oldest orphan goes first', () => {
  const pool = new OrphanPool({ maxBlocks: 3 });
  for (let i = 1; i <= 5; i++) pool.add(`h${i}`, block(i), 10, 0);
  expect(pool.size).toBe(3);
  expect(pool.has('h1')).toBe(false);
  expect(pool.has('h2')).toBe(false);
  expect(pool.has('h5')).toBe(true);
});

it('is bounded in bytes, and refuses a block larger than the whole pool', () => {
  const pool = new OrphanPool({ maxBytes: 100 });
  pool.add('a', block(1), 60, 0);
  pool.add('b', block(2), 60, 0); // evicts a
  expect(pool.has('a')).toBe(false);
  expect(pool.has('b')).toBe(true);
  pool.add('huge', block(3), 101, 0);
  expect(pool.has('huge')).toBe(false);
});

it('expires entries after the TTL', () => {
  const pool = new OrphanPool({ ttlMs: 1000 });
  pool.add('old', block(1), 1, 0);
  pool.add('new', block(2), 1, 900);
  expect(pool.takeChildren(hex(1), 1500)).toEqual([]); // expired before it was asked for
  expect(pool.takeChildren(hex(2), 1500)).toHaveLength(1);
  expect(pool.size).toBe(0);
});

it('hands out all children of a parent once', () => {
  const pool = new OrphanPool();
  pool.add('x', block(7), 1, 0);
  pool.add('y', block(7), 1, 0);
  pool.add('x', block(7), 1, 0); // duplicate ignored
  expect(pool.takeChildren(hex(7), 1)).toHaveLength(2);
  expect(pool.takeChildren(hex(7), 1)).toHaveLength(0);
});
