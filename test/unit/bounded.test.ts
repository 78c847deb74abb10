/** The bounded map behind the node's caches and tables (util/bounded.ts): at most `max`, least recently used out first. */
import { expect, it } from 'vitest';
import { Bounded } from '../../src/util/bounded.ts';

it('holds at most max entries and drops the least recently used first (get refreshes, peek does not)', () => {
  const b = new Bounded<number>(3);
  for (const k of ['a', 'b', 'c']) b.set(k, k.charCodeAt(0));
  expect(b.get('a')).toBe(97); // a is now the most recent
  expect(b.peek('b')).toBe(98); // b stays the oldest
  b.set('d', 100);
  expect(b.size).toBe(3);
  expect([...b.entries()].map(([k]) => k)).toEqual(['c', 'a', 'd']);
  for (let i = 0; i < 10_000; i++) b.set(`k${i}`, i);
  expect(b.size).toBe(3);
  expect(b.get('k9999')).toBe(9999);
  b.delete('k9999');
  expect(b.get('k9999')).toBeUndefined();
});
