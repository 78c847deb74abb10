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
