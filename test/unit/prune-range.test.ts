import { expect, it } from 'vitest';
import { pruneRange } from '../../src/node/miner.ts';

const heights = (r: { from: number; to: number }) => Array.from({ length: Math.max(0, r.to - r.from + 1) }, (_, i) => r.from + i);

it('a tip that advances by one prunes the one height that passed the depth', () => {
  expect(heights(pruneRange(67, 100, 32))).toEqual([68]);
  expect(pruneRange(67, 100, 32).prunedTo).toBe(68);
});

it('a tip that jumps (sync, reorg) prunes every height it passed, not only the newest', () => {
  const r = pruneRange(10, 60, 32);
  expect(heights(r)).toEqual(Array.from({ length: 18 }, (_, i) => 11 + i));
  expect(r.prunedTo).toBe(28);
});

it('nothing below the depth, nothing again after a reorg to a lower tip, and a bounded first call', () => {
  expect(heights(pruneRange(0, 20, 32))).toEqual([]);
  const back = pruneRange(50, 70, 32);
  expect(heights(back)).toEqual([]);
  expect(back.prunedTo).toBe(50);
  const first = pruneRange(0, 100_032, 32, 1024);
  expect(first.from).toBe(98_977);
  expect(first.to).toBe(100_000);
});
