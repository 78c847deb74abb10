import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dbscan } from '../../src/core/aggregation/dbscan.ts';
import { cosineFromGram, pairwise } from '../../src/core/aggregation/vectors.ts';

interface Case {
  name: string;
  metric: 'euclidean' | 'cosine';
  eps: number;
  minPts: number;
  points: number[][];
}

const vectors = new URL('../vectors/', import.meta.url);
const cases = JSON.parse(readFileSync(new URL('dbscan-cases.json', vectors), 'utf8')) as Case[];
const reference = JSON.parse(readFileSync(new URL('dbscan-sklearn.json', vectors), 'utf8')) as { sklearn: string; labels: Record<string, number[]> };

function distances(c: Case): Float64Array {
  const pts = c.points.map((p) => Float64Array.from(p));
  const n = pts.length;
  if (c.metric === 'euclidean') return pairwise(pts, 'sqdist').map(Math.sqrt);
  const cos = cosineFromGram(pairwise(pts, 'dot'), n);
  return cos.map((s, k) => (Math.floor(k / n) === k % n ? 0 : Math.min(2, Math.max(0, 1 - s))));
}

describe(`DBSCAN matches scikit-learn ${reference.sklearn}`, () => {
  it('on every reference case', () => expect(Object.keys(reference.labels).sort()).toEqual(cases.map((c) => c.name).sort()));
  for (const c of cases) {
    it(c.name, () => {
      const { labels } = dbscan(distances(c), c.points.length, c.eps, c.minPts);
      expect(Array.from(labels)).toEqual(reference.labels[c.name]);
    });
  }
});

describe('DBSCAN semantics', () => {
  it('closed balls: a distance equal to eps is a neighbour', () => {
    const d = Float64Array.from([0, 1, 1, 0]);
    expect(Array.from(dbscan(d, 2, 1, 2).labels)).toEqual([0, 0]);
    expect(Array.from(dbscan(d, 2, 0.999, 2).labels)).toEqual([-1, -1]);
  });

  it('a border point is not expanded: chains stop at non-core points', () => {
    // 0 - 1 - 2 - 3 on a line, spacing 1, minPts 3: 1 and 2 are core, 0 and 3 border
    const pts = [0, 1, 2, 3, 5].map((x) => Float64Array.of(x));
    const { labels, core } = dbscan(pairwise(pts, 'sqdist').map(Math.sqrt), 5, 1, 3);
    expect(Array.from(core)).toEqual([0, 1, 1, 0, 0]);
    expect(Array.from(labels)).toEqual([0, 0, 0, 0, -1]);
  });
});
