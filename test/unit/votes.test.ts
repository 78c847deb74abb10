/** One vote per client per aggregation (issue 13, item 4): the pure rule in core/votes.ts. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/core/errors.ts';
import { checkOneVotePerClient, distinctClients, newestFirst, preferredFirst } from '../../src/core/votes.ts';
import { codeOf } from '../helpers/errors.ts';

const vote = (clientId: string, createdAt: number, d: number) => ({ clientId, createdAt, updateDigest: Uint8Array.of(d, 0, 0) });

describe('one vote per client', () => {
  it('newestFirst orders by createdAt, newest first, and ties by digest: the same order from any arrival order', () => {
    const a = vote('c', 2000, 9);
    const b = vote('c', 3000, 5);
    const tieLow = vote('c', 3000, 1);
    expect([a, b, tieLow].sort(newestFirst)).toEqual([tieLow, b, a]);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 12 }), fc.infiniteStream(fc.nat()), (spec, rand) => {
        const votes = spec.map(([t, d], i) => ({ ...vote('c', 1000 + t, d), updateDigest: Uint8Array.of(d, i) }));
        const shuffled = [...votes];
        for (let i = shuffled.length - 1; i > 0; i--) {
          const j = rand.next().value % (i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
        }
        expect(shuffled.sort(newestFirst)).toEqual([...votes].sort(newestFirst));
      }),
      { seed: 13, numRuns: 200 },
    );
  });

  it('preferredFirst: the most samples first (an offline average of 3 rounds before the regular update after it), then the newest', () => {
    const average = { ...vote('c', 1000, 7), sampleCount: 300 };
    const regular = { ...vote('c', 2000, 3), sampleCount: 100 };
    const regularTie = { ...vote('c', 2000, 1), sampleCount: 100 };
    expect([regular, average, regularTie].sort(preferredFirst)).toEqual([average, regularTie, regular]);
  });

  it('checkOneVotePerClient refuses a second vote of a client, pending or in the same records, with CLIENT_ALREADY_VOTED', () => {
    expect(codeOf(() => checkOneVotePerClient([vote('a', 1, 1)], [vote('b', 1, 2), vote('c', 1, 3)]))).toBe('NO_ERROR');
    expect(codeOf(() => checkOneVotePerClient([vote('a', 1, 1)], [vote('b', 1, 2), vote('a', 2, 3)]))).toBe(ErrorCode.CLIENT_ALREADY_VOTED);
    expect(codeOf(() => checkOneVotePerClient([], [vote('b', 1, 2), vote('b', 2, 3)]))).toBe(ErrorCode.CLIENT_ALREADY_VOTED);
  });

  it('distinctClients is what the ϕ rule counts', () => {
    expect(distinctClients([vote('a', 1, 1), vote('b', 1, 2), vote('a', 2, 3)])).toBe(2);
    expect(distinctClients([])).toBe(0);
  });
});
