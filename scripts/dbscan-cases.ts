// Writes test/vectors/dbscan-cases.json: the data sets our DBSCAN is checked on against
// scikit-learn (scripts/dbscan-reference.sh runs this, then scikit-learn on the output).
import { writeFileSync } from 'node:fs';
import { Rng } from '../src/core/random.ts';

interface Case {
  name: string;
  metric: 'euclidean' | 'cosine';
  eps: number;
  minPts: number;
  points: number[][];
}

const rng = new Rng(20261121);
const blob = (centre: number[], spread: number, n: number) => Array.from({ length: n }, () => centre.map((c) => c + spread * rng.normal()));
const cases: Case[] = [];

// three clear clusters and a few far-away points
cases.push({ name: 'clear-clusters', metric: 'euclidean', eps: 0.8, minPts: 4, points: rng.shuffle([...blob([0, 0], 0.3, 20), ...blob([5, 5], 0.3, 15), ...blob([-5, 6], 0.3, 10), [20, 20], [-20, 3], [9, -9]]) });

// mostly noise: uniform points, sparse clusters by chance
cases.push({ name: 'noise', metric: 'euclidean', eps: 0.9, minPts: 3, points: Array.from({ length: 60 }, () => [rng.float() * 10, rng.float() * 10]) });

// integer grid: many distances exactly equal to eps (closed balls: dist <= eps is a neighbour)
const grid: number[][] = [];
for (let x = 0; x < 6; x++) for (let y = 0; y < 4; y++) if ((x * 7 + y * 3) % 5 !== 0) grid.push([x, y]);
grid.push([10, 10], [11, 10], [13, 10]);
cases.push({ name: 'ties-at-eps', metric: 'euclidean', eps: 1, minPts: 3, points: grid });
cases.push({ name: 'ties-at-eps-minpts5', metric: 'euclidean', eps: 1, minPts: 5, points: grid });

// duplicates: identical points count as neighbours of each other (distance 0)
const dup = [[1, 1], [1, 1], [1, 1], [4, 4], [4, 4], [7, 1], [1.5, 1], [4, 4.5]];
cases.push({ name: 'duplicates', metric: 'euclidean', eps: 0.5, minPts: 3, points: dup });
cases.push({ name: 'duplicates-cosine', metric: 'cosine', eps: 0.05, minPts: 2, points: [[1, 0, 0], [1, 0, 0], [2, 0, 0], [0, 1, 0], [0, 1, 0.01], [-1, 0, 0], [0, 0, 1]] });

// a border point reachable from two clusters: it joins the cluster with the lowest-index core
// point (B is listed first on purpose)
cases.push({ name: 'shared-border', metric: 'euclidean', eps: 1.15, minPts: 4, points: [[3.1], [3.4], [3.7], [4.0], [2.0], [0.0], [0.3], [0.6], [0.9]] });

// cosine over update-like vectors: three directions in 50 dimensions, scaled randomly
const dirs = [0, 1, 2].map(() => Array.from({ length: 50 }, () => rng.normal()));
const cos: number[][] = [];
for (let i = 0; i < 30; i++) {
  const d = dirs[i % 3];
  const scale = 0.1 + rng.float() * 10;
  cos.push(d.map((x) => scale * (x + 0.3 * rng.normal())));
}
for (let i = 0; i < 5; i++) cos.push(Array.from({ length: 50 }, () => rng.normal()));
cases.push({ name: 'cosine-directions', metric: 'cosine', eps: 0.15, minPts: 4, points: rng.shuffle(cos) });

// an honest majority near the mean and a sign-flipped minority, as DBSCAN sees them in BFL-MEC
const honest = Array.from({ length: 7 }, () => dirs[0].map((x) => x + 0.8 * rng.normal()));
const flipped = Array.from({ length: 3 }, () => dirs[0].map((x) => -x + 0.8 * rng.normal()));
const ups = [...honest, ...flipped];
const meanVec = ups[0].map((_, k) => ups.reduce((s, u) => s + u[k], 0) / ups.length);
cases.push({ name: 'updates-with-mean', metric: 'cosine', eps: 0.5, minPts: 6, points: [...ups, meanVec] });

const out = new URL('../test/vectors/dbscan-cases.json', import.meta.url);
writeFileSync(out, JSON.stringify(cases) + '\n');
console.log(`wrote ${cases.length} cases to ${out.pathname}`);
