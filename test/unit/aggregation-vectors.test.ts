import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AGGREGATORS } from '../../src/core/aggregation/index.ts';
import { type AggregationVectorFile, computeAggregationVectors } from '../vectors/aggregation-vectors.ts';

const file = JSON.parse(readFileSync(new URL('../vectors/aggregation.json', import.meta.url), 'utf8')) as AggregationVectorFile;

describe('aggregation golden vectors (fixed updates → labels, weights, rewards, model digest)', () => {
  const now = computeAggregationVectors(file);
  for (const name of AGGREGATORS) {
    it(name, () => expect(now.expected[name]).toEqual(file.expected[name]));
  }
  it('the BFL-MEC vector flags exactly the three sign-flipping attackers', () => {
    const ids = file.input.updates.map((u) => u.clientId).sort((a, b) => {
      const da = file.input.updates.find((u) => u.clientId === a)!.digest;
      const db = file.input.updates.find((u) => u.clientId === b)!.digest;
      return da < db ? -1 : 1;
    });
    const low = ids.filter((_, i) => !file.expected['bfl-mec'].labels[i]);
    expect(low.sort()).toEqual(['attacker-1', 'attacker-2', 'attacker-3']);
  });
});
