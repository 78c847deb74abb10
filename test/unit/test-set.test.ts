/**
 * A miner loads only the test half of its data set (issue 13: the training half was 25 MB of
 * the embedded MNIST it never used): the same samples as the whole set's test half.
 */
import { expect, it } from 'vitest';
import { EMBEDDED_SPLIT, loadEmbeddedMnist, loadTestSet } from '../../src/learn/data.ts';
import { BflError } from '../../src/core/errors.ts';

const codeOf = (f: () => unknown) => {
  try {
    f();
    return 'NO_ERROR';
  } catch (e) {
    return e instanceof BflError ? e.code : String(e);
  }
};

it('the embedded test half alone equals the test half of the whole set (read first, before the whole set is cached)', () => {
  const test = loadTestSet('mnist');
  expect(test.n).toBe(10_000 - EMBEDDED_SPLIT.train);
  const whole = loadEmbeddedMnist();
  expect(test.y).toEqual(whole.test.y);
  // compared as bytes: toEqual walks 1.6 million floats one by one (9 s)
  expect(Buffer.from(test.x.buffer, test.x.byteOffset, test.x.byteLength).equals(Buffer.from(whole.test.x.buffer, whole.test.x.byteOffset, whole.test.x.byteLength))).toBe(true);
  expect(loadTestSet('mnist')).toBe(whole.test); // once the whole set is read, its half is shared
});

it('an unknown data set or a missing IDX directory is one clear error', () => {
  expect(codeOf(() => loadTestSet('cifar'))).toBe('BAD_CONFIG');
  expect(codeOf(() => loadTestSet('idx:/nonexistent-bfl-dir'))).toBe('DATA_NOT_FOUND');
});
