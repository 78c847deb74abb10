/**
 * Plain SVG charts for experiment reports (line charts over rounds or time, grouped bars), and
 * PNG copies rendered with resvg. No browser, no plotting stack: a figure is a string.
 */
import { writeFile } from 'node:fs/promises';

export interface Series {
  name: string;
  points: [number, number][];
}

const W = 720;
const H = 420;
const M = { l: 70, r: 190, t: 50, b: 60 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/** Series i: its colour, and dashes once the ten colours have been used (12-cell grids). */
const color = (i: number) => COLORS[i % COLORS.length];
const dash = (i: number) => (i >= COLORS.length ? ` stroke-dasharray="${i >= 2 * COLORS.length ? '2 3' : '7 4'}"` : '');

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function ticks(lo: number, hi: number, n = 5): number[] {
  if (hi === lo) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function frame(title: string, xLabel: string, yLabel: string, body: string, legend: string[], xTicks: string, yTicks: string, swatch: 'line' | 'box'): string {
  const sample = (i: number) =>
    swatch === 'box'
      ? `<rect x="${W - M.r + 15}" y="${M.t + i * 22}" width="14" height="14" fill="${color(i)}"/>`
      : `<line x1="${W - M.r + 10}" y1="${M.t + i * 22 + 7}" x2="${W - M.r + 30}" y2="${M.t + i * 22 + 7}" stroke="${color(i)}" stroke-width="3"${dash(i)}/>`;
  const legendSvg = legend.map((name, i) => `${sample(i)}<text x="${W - M.r + 35}" y="${M.t + i * 22 + 12}" font-size="13">${esc(name)}</text>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, sans-serif">
<rect width="${W}" height="${H}" fill="white"/>
<text x="${(W - M.r + M.l) / 2}" y="28" font-size="16" text-anchor="middle">${esc(title)}</text>
<line x1="${M.l}" y1="${H - M.b}" x2="${W - M.r}" y2="${H - M.b}" stroke="black"/>
<line x1="${M.l}" y1="${M.t}" x2="${M.l}" y2="${H - M.b}" stroke="black"/>
${xTicks}${yTicks}
<text x="${(W - M.r + M.l) / 2}" y="${H - 15}" font-size="13" text-anchor="middle">${esc(xLabel)}</text>
<text x="18" y="${(H - M.b + M.t) / 2}" font-size="13" text-anchor="middle" transform="rotate(-90 18 ${(H - M.b + M.t) / 2})">${esc(yLabel)}</text>
${body}${legendSvg}
</svg>
`;
}

/**
 * A y range zoomed to where the curves spend their time: from the `lowQuantile` of all values
 * (accuracy curves start near chance for one or two points and would squash the rest) to the
 * maximum, rounded out to `step`. Points below are drawn on the bottom edge (lineChart clamps).
 */
export function zoomedRange(series: Series[], o: { lowQuantile?: number; step?: number; floor?: number; ceil?: number } = {}): [number, number] {
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite).sort((a, b) => a - b);
  if (ys.length === 0) return [0, 1];
  const step = o.step ?? 0.05;
  const lo = ys[Math.min(ys.length - 1, Math.floor((o.lowQuantile ?? 0.1) * ys.length))];
  const hi = ys[ys.length - 1];
  let y0 = Math.floor(lo / step) * step;
  let y1 = Math.ceil(hi / step) * step;
  if (y1 - y0 < step) y1 = y0 + step;
  if (o.floor !== undefined) y0 = Math.max(o.floor, y0);
  if (o.ceil !== undefined) y1 = Math.min(o.ceil, y1);
  return [Number(y0.toPrecision(12)), Number(y1.toPrecision(12))];
}

export function lineChart(o: { title: string; xLabel: string; yLabel: string; series: Series[]; yRange?: [number, number] }): string {
  const pts = o.series.flatMap((s) => s.points);
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs, 0), Math.max(...xs, 1)];
  const [y0, y1] = o.yRange ?? [Math.min(...ys, 0), Math.max(...ys, 1)];
  // values outside a given range sit on its edge (zoomed charts), never outside the frame
  const clampY = (y: number) => Math.min(y1, Math.max(y0, y));
  const sx = (x: number) => M.l + ((x - x0) / (x1 - x0 || 1)) * (W - M.l - M.r);
  const sy = (y: number) => H - M.b - ((clampY(y) - y0) / (y1 - y0 || 1)) * (H - M.t - M.b);
  const xt = ticks(x0, x1).map((v) => `<line x1="${sx(v)}" y1="${H - M.b}" x2="${sx(v)}" y2="${H - M.b + 5}" stroke="black"/><text x="${sx(v)}" y="${H - M.b + 20}" font-size="12" text-anchor="middle">${v}</text>`).join('');
  const yt = ticks(y0, y1).map((v) => `<line x1="${M.l - 5}" y1="${sy(v)}" x2="${W - M.r}" y2="${sy(v)}" stroke="#ddd"/><text x="${M.l - 8}" y="${sy(v) + 4}" font-size="12" text-anchor="end">${v}</text>`).join('');
  const body = o.series
    .map((s, i) => `<polyline fill="none" stroke="${color(i)}" stroke-width="2"${dash(i)} points="${s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`)
    .join('\n');
  return frame(o.title, o.xLabel, o.yLabel, body, o.series.map((s) => s.name), xt, yt, 'line');
}

/** Bars grouped by category: values[g][c] for group g (legend) and category c (x axis). */
export function barChart(o: { title: string; xLabel: string; yLabel: string; categories: string[]; groups: string[]; values: number[][]; yRange?: [number, number] }): string {
  const [y0, y1] = o.yRange ?? [0, Math.max(1, ...o.values.flat())];
  // a zoomed range (not from 0): a bar below it is drawn as an empty stub on the bottom edge
  const sy = (y: number) => H - M.b - ((Math.min(y1, Math.max(y0, y)) - y0) / (y1 - y0 || 1)) * (H - M.t - M.b);
  const cw = (W - M.l - M.r) / o.categories.length;
  const bw = (cw * 0.8) / o.groups.length;
  const body = o.values
    .flatMap((row, g) => row.map((v, c) => `<rect x="${(M.l + c * cw + cw * 0.1 + g * bw).toFixed(1)}" y="${sy(v).toFixed(1)}" width="${bw.toFixed(1)}" height="${(H - M.b - sy(v)).toFixed(1)}" fill="${color(g)}"/>`))
    .join('\n');
  const xt = o.categories.map((c, i) => `<text x="${M.l + i * cw + cw / 2}" y="${H - M.b + 20}" font-size="12" text-anchor="middle">${esc(c)}</text>`).join('');
  const yt = ticks(y0, y1).map((v) => `<line x1="${M.l - 5}" y1="${sy(v)}" x2="${W - M.r}" y2="${sy(v)}" stroke="#ddd"/><text x="${M.l - 8}" y="${sy(v) + 4}" font-size="12" text-anchor="end">${v}</text>`).join('');
  return frame(o.title, o.xLabel, o.yLabel, body, o.groups, xt, yt, 'box');
}

/** Write `stem.svg` and `stem.png`; returns both paths. */
export async function writePlot(stem: string, svg: string): Promise<string[]> {
  const { Resvg } = await import('@resvg/resvg-js');
  await writeFile(`${stem}.svg`, svg);
  const png = new Resvg(svg, { background: 'white', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng();
  await writeFile(`${stem}.png`, png);
  return [`${stem}.svg`, `${stem}.png`];
}

/** Dots, one colour per series (per-round values against a scheduler's execution time). */
export function scatterChart(o: { title: string; xLabel: string; yLabel: string; series: Series[]; yRange?: [number, number] }): string {
  const pts = o.series.flatMap((s) => s.points);
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = o.yRange ?? [Math.min(...ys, 0), Math.max(...ys, 1)];
  const clampY = (y: number) => Math.min(y1, Math.max(y0, y));
  const sx = (x: number) => M.l + ((x - x0) / (x1 - x0 || 1)) * (W - M.l - M.r);
  const sy = (y: number) => H - M.b - ((clampY(y) - y0) / (y1 - y0 || 1)) * (H - M.t - M.b);
  const xt = ticks(x0, x1).map((v) => `<line x1="${sx(v)}" y1="${H - M.b}" x2="${sx(v)}" y2="${H - M.b + 5}" stroke="black"/><text x="${sx(v)}" y="${H - M.b + 20}" font-size="12" text-anchor="middle">${v}</text>`).join('');
  const yt = ticks(y0, y1).map((v) => `<line x1="${M.l - 5}" y1="${sy(v)}" x2="${W - M.r}" y2="${sy(v)}" stroke="#ddd"/><text x="${M.l - 8}" y="${sy(v) + 4}" font-size="12" text-anchor="end">${v}</text>`).join('');
  const body = o.series.map((s, i) => s.points.map(([x, y]) => `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2" fill="${color(i)}" fill-opacity="0.5"/>`).join('')).join('\n');
  return frame(o.title, o.xLabel, o.yLabel, body, o.series.map((s) => s.name), xt, yt, 'box');
}

/**
 * Small multiples: one small line chart per panel, on a shared y range (and shared colours for
 * series of the same name), for figures whose curves lie on top of each other in one chart.
 */
export function smallMultiples(o: { title: string; xLabel: string; yLabel: string; panels: { title: string; series: Series[] }[]; cols?: number; yRange?: [number, number] }): string {
  const cols = o.cols ?? Math.min(3, o.panels.length);
  const rows = Math.ceil(o.panels.length / cols);
  const pw = 300;
  const ph = 220;
  const m = { l: 55, r: 15, t: 30, b: 35 };
  const names = [...new Set(o.panels.flatMap((p) => p.series.map((s) => s.name)))];
  const legendW = 190;
  const width = cols * pw + legendW;
  const height = rows * ph + 70;
  const all = o.panels.flatMap((p) => p.series.flatMap((s) => s.points));
  const [x0, x1] = [Math.min(...all.map((p) => p[0]), 0), Math.max(...all.map((p) => p[0]), 1)];
  const [y0, y1] = o.yRange ?? [Math.min(...all.map((p) => p[1]), 0), Math.max(...all.map((p) => p[1]), 1)];
  const clampY = (y: number) => Math.min(y1, Math.max(y0, y));
  const cells = o.panels.map((panel, k) => {
    const ox = (k % cols) * pw;
    const oy = 45 + Math.floor(k / cols) * ph;
    const sx = (x: number) => ox + m.l + ((x - x0) / (x1 - x0 || 1)) * (pw - m.l - m.r);
    const sy = (y: number) => oy + ph - m.b - ((clampY(y) - y0) / (y1 - y0 || 1)) * (ph - m.t - m.b);
    const xt = ticks(x0, x1, 4).map((v) => `<text x="${sx(v)}" y="${oy + ph - m.b + 15}" font-size="10" text-anchor="middle">${v}</text>`).join('');
    const yt = ticks(y0, y1, 4).map((v) => `<line x1="${ox + m.l}" y1="${sy(v)}" x2="${ox + pw - m.r}" y2="${sy(v)}" stroke="#ddd"/><text x="${ox + m.l - 5}" y="${sy(v) + 3}" font-size="10" text-anchor="end">${v}</text>`).join('');
    const lines = panel.series.map((s) => {
      const i = names.indexOf(s.name);
      return `<polyline fill="none" stroke="${color(i)}" stroke-width="1.5"${dash(i)} points="${s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`;
    }).join('');
    return `<text x="${ox + (pw + m.l - m.r) / 2}" y="${oy + 18}" font-size="12" text-anchor="middle">${esc(panel.title)}</text>
<line x1="${ox + m.l}" y1="${oy + ph - m.b}" x2="${ox + pw - m.r}" y2="${oy + ph - m.b}" stroke="black"/><line x1="${ox + m.l}" y1="${oy + m.t}" x2="${ox + m.l}" y2="${oy + ph - m.b}" stroke="black"/>
${xt}${yt}${lines}`;
  });
  const legend = names.map((n, i) => `<line x1="${cols * pw + 10}" y1="${52 + i * 20}" x2="${cols * pw + 30}" y2="${52 + i * 20}" stroke="${color(i)}" stroke-width="3"${dash(i)}/><text x="${cols * pw + 35}" y="${56 + i * 20}" font-size="12">${esc(n)}</text>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif">
<rect width="${width}" height="${height}" fill="white"/>
<text x="${(cols * pw) / 2}" y="24" font-size="16" text-anchor="middle">${esc(o.title)}</text>
${cells.join('\n')}
<text x="${(cols * pw) / 2}" y="${height - 8}" font-size="12" text-anchor="middle">${esc(o.xLabel)}</text>
<text x="14" y="${height / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${height / 2})">${esc(o.yLabel)}</text>
${legend}
</svg>
`;
}
