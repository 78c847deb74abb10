/** Writing experiment results: CSV, JSON and plots under one output directory. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writePlot } from './plot.ts';

export class Report {
  readonly dir: string;
  readonly files: string[] = [];

  constructor(dir: string) {
    this.dir = dir;
  }

  async csv(name: string, header: string[], rows: (string | number | null)[][]): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const path = join(this.dir, `${name}.csv`);
    await writeFile(path, [header.join(','), ...rows.map((r) => r.map((v) => (v === null ? '' : String(v))).join(','))].join('\n') + '\n');
    this.files.push(path);
  }

  async json(name: string, value: unknown): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const path = join(this.dir, `${name}.json`);
    await writeFile(path, JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
    this.files.push(path);
  }

  async plot(name: string, svg: string): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.files.push(...(await writePlot(join(this.dir, name), svg)));
  }
}

/** Mean of the last `k` values (the accuracy an experiment settles at). */
export function tail(xs: number[], k = 3): number {
  const t = xs.slice(-k);
  return t.length ? t.reduce((a, b) => a + b, 0) / t.length : NaN;
}

/**
 * The paper's convergence: the first aggregation from which accuracy stays within 0.5 % (max
 * minus min) over 5 aggregations. Returns its index in `acc`, or null.
 */
export function convergedAt(acc: number[], window = 5, band = 0.005): number | null {
  for (let i = 0; i + window <= acc.length; i++) {
    const w = acc.slice(i, i + window);
    if (Math.max(...w) - Math.min(...w) <= band) return i;
  }
  return null;
}

/** Spearman's rank correlation (ties get their mean rank); null when either side is constant. */
export function spearman(x: number[], y: number[]): number | null {
  const rank = (v: number[]) => {
    const idx = v.map((_, i) => i).sort((a, b) => v[a] - v[b]);
    const r = new Array<number>(v.length);
    for (let i = 0; i < idx.length; ) {
      let j = i;
      while (j + 1 < idx.length && v[idx[j + 1]] === v[idx[i]]) j++;
      for (let k = i; k <= j; k++) r[idx[k]] = (i + j) / 2;
      i = j + 1;
    }
    return r;
  };
  const rx = rank(x);
  const ry = rank(y);
  const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
  const mx = mean(rx);
  const my = mean(ry);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < x.length; i++) {
    sxy += (rx[i] - mx) * (ry[i] - my);
    sxx += (rx[i] - mx) ** 2;
    syy += (ry[i] - my) ** 2;
  }
  return sxx === 0 || syy === 0 ? null : sxy / Math.sqrt(sxx * syy);
}

/**
 * Exact Shapley values of n players (n ≤ 12) from the value of every coalition: value(mask) for
 * each bitmask, φ_i = Σ_{S ∌ i} |S|!(n − |S| − 1)!/n! · (v(S ∪ i) − v(S)).
 */
export function shapleyValues(n: number, value: Float64Array): number[] {
  if (value.length !== 1 << n) throw new RangeError(`need 2^${n} coalition values`);
  const fact = [1];
  for (let i = 1; i <= n; i++) fact.push(fact[i - 1] * i);
  const phi = new Array<number>(n).fill(0);
  for (let mask = 0; mask < 1 << n; mask++) {
    let size = 0;
    for (let m = mask; m; m &= m - 1) size++;
    for (let i = 0; i < n; i++) {
      if (mask & (1 << i)) continue;
      phi[i] += ((fact[size] * fact[n - size - 1]) / fact[n]) * (value[mask | (1 << i)] - value[mask]);
    }
  }
  return phi;
}
