import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { Rng } from '../../src/core/random.ts';
import { attackUpdate, parseAttack } from '../../src/experiments/attacks.ts';
import { barChart, lineChart } from '../../src/experiments/plot.ts';
import { Report, convergedAt, tail } from '../../src/experiments/report.ts';
import { tmpDir } from '../helpers/tmp.ts';

it("convergence is the paper's: accuracy within 0.5 % over 5 aggregations", () => {
  expect(convergedAt([0.5, 0.7, 0.8, 0.9, 0.902, 0.903, 0.9, 0.904, 0.901])).toBe(3);
  expect(convergedAt([0.5, 0.7, 0.8, 0.9, 0.91])).toBeNull();
  expect(convergedAt([0.9, 0.9, 0.9, 0.9])).toBeNull(); // fewer than 5 aggregations
  expect(tail([0.1, 0.2, 0.3, 0.6])).toBeCloseTo((0.2 + 0.3 + 0.6) / 3, 12);
});

it('charts are SVG with one line per series or one bar per value, and render to PNG', async () => {
  const line = lineChart({ title: 'a & b', xLabel: 'x', yLabel: 'y', series: [{ name: 's1', points: [[0, 0], [1, 1]] }, { name: 's2', points: [[0, 1], [1, 0]] }] });
  expect(line.match(/<polyline/g)).toHaveLength(2);
  expect(line).toContain('a &amp; b');
  // twelve series (the threshold grid): the ten colours come back dashed, no two lines alike
  const twelve = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: Array.from({ length: 12 }, (_, i) => ({ name: `s${i}`, points: [[0, i / 12], [1, i / 12]] as [number, number][] })) });
  const styles = [...twelve.matchAll(/<polyline fill="none" stroke="([^"]+)" stroke-width="2"( stroke-dasharray="[^"]+")?/g)].map((m) => m[1] + (m[2] ?? ''));
  expect(styles).toHaveLength(12);
  expect(new Set(styles).size).toBe(12);
  const bars = barChart({ title: 't', xLabel: 'x', yLabel: 'y', categories: ['c1', 'c2', 'c3'], groups: ['g1', 'g2'], values: [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]] });
  expect(bars.match(/<rect x="[\d.]+" y="[\d.]+" width/g)).toHaveLength(6 + 2); // bars + legend swatches
  const dir = await tmpDir('bfl-plot-');
  const r = new Report(dir);
  await r.plot('p', line);
  await r.csv('c', ['a', 'b'], [[1, null]]);
  expect(readFileSync(join(dir, 'p.png')).subarray(1, 4).toString()).toBe('PNG');
  expect(readFileSync(join(dir, 'c.csv'), 'utf8')).toBe('a,b\n1,\n');
  expect(r.files).toHaveLength(3);
});

it('free-ride replaces the update by noise, whatever was trained', () => {
  const a = parseAttack('free-ride:0.001');
  const d = attackUpdate(a, Float32Array.of(5, 5, 5, 5), new Rng(1));
  expect(Math.max(...d.map(Math.abs))).toBeLessThan(0.01);
  expect(() => parseAttack('free-ride')).toThrow();
});
