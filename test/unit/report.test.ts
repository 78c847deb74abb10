import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { Rng } from '../../src/core/random.ts';
import { attackUpdate, parseAttack } from '../../src/experiments/attacks.ts';
import { barChart, lineChart, smallMultiples, zoomedRange } from '../../src/experiments/plot.ts';
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
  // zoomed: a bar below the range has no height (never a negative one), a bar above fills the frame
  const zoomed = barChart({ title: 't', xLabel: 'x', yLabel: 'y', categories: ['c1', 'c2'], groups: ['g1'], values: [[0.1, 0.95]], yRange: [0.5, 0.9] });
  const heights = [...zoomed.matchAll(/<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.-]+)"/g)].map((m) => [Number(m[1]), Number(m[2])]);
  expect(heights.slice(0, 2)).toEqual([[360, 0], [50, 310]]); // then the legend swatch
  const dir = await tmpDir('bfl-plot-');
  const r = new Report(dir);
  await r.plot('p', line);
  await r.csv('c', ['a', 'b'], [[1, null]]);
  expect(readFileSync(join(dir, 'p.png')).subarray(1, 4).toString()).toBe('PNG');
  expect(readFileSync(join(dir, 'c.csv'), 'utf8')).toBe('a,b\n1,\n');
  expect(r.files).toHaveLength(3);
});

it('zoomed charts: the range skips the near-chance start, and points outside it sit on the frame edge', () => {
  const acc = [0.1, 0.62, 0.8, 0.85, 0.87, 0.88, 0.885, 0.89, 0.89, 0.891];
  const series = [{ name: 'a', points: acc.map((v, i) => [i, v] as [number, number]) }];
  expect(zoomedRange(series, { lowQuantile: 0.2, step: 0.02 })).toEqual([0.8, 0.9]);
  expect(zoomedRange(series, { lowQuantile: 0, step: 0.05, floor: 0.3 })).toEqual([0.3, 0.9]);
  expect(zoomedRange([], {})).toEqual([0, 1]);
  const svg = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series, yRange: [0.8, 0.9] });
  const ys = [...svg.matchAll(/(\d+\.\d),(\d+\.\d)/g)].map((m) => Number(m[2]));
  // the frame spans y = 50 (top) to 360 (bottom): 0.1 and 0.62 are drawn on the bottom edge
  expect(ys[0]).toBe(360);
  expect(ys[1]).toBe(360);
  expect(Math.min(...ys)).toBeGreaterThanOrEqual(50);
});

it('small multiples: one panel per group on a shared range, one colour per series name', () => {
  const pts = (v: number) => [[0, v], [1, v]] as [number, number][];
  const svg = smallMultiples({ title: 't', xLabel: 'x', yLabel: 'y', panels: [{ title: 'p1', series: [{ name: 'N=1', points: pts(0.5) }, { name: 'N=2', points: pts(0.6) }] }, { title: 'p2', series: [{ name: 'N=2', points: pts(0.7) }] }], yRange: [0, 1] });
  expect(svg.match(/<polyline/g)).toHaveLength(3);
  expect(svg).toContain('>p1<');
  expect(svg).toContain('>p2<');
  const strokes = [...svg.matchAll(/<polyline fill="none" stroke="([^"]+)"/g)].map((m) => m[1]);
  expect(strokes[1]).toBe(strokes[2]); // N=2 has one colour in both panels
  expect(strokes[0]).not.toBe(strokes[1]);
  expect(svg.match(/stroke-width="3"/g)).toHaveLength(2); // legend: one entry per name
});

it('free-ride replaces the update by noise, whatever was trained', () => {
  const a = parseAttack('free-ride:0.001');
  const d = attackUpdate(a, Float32Array.of(5, 5, 5, 5), new Rng(1));
  expect(Math.max(...d.map(Math.abs))).toBeLessThan(0.01);
  expect(() => parseAttack('free-ride')).toThrow();
});
