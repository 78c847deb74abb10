/**
 * The layer rule of docs/architecture.md, checked on the sources: a folder of src/ imports only
 * from its own layer or lower ones, src/core imports nothing but itself (and node:crypto for
 * SHA-256), and no module imports itself through a cycle (type-only imports count too: a cycle
 * of types is still a cycle of knowledge).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/** Low to high. Folders of one rank may not import each other either (they are independent). */
export const LAYERS: Record<string, number> = {
  core: 0,
  util: 0,
  // ambient type declarations (WebAssembly globals): no code
  types: 0,
  crypto: 1,
  // WebAssembly kernels (the Gram matrix) that compute what core defines, faster
  kernels: 1,
  learn: 2,
  config: 3,
  chain: 4,
  mining: 4,
  net: 5,
  // QKD capacity planning: reads the chain store (4), never the network; experiments and cli use it
  qkd: 5,
  // radio twin and association schedulers (issue 17): core and learn only; node, experiments use it
  association: 3,
  api: 6,
  node: 7,
  sim: 8,
  experiments: 9,
  cli: 11,
};

const SRC = resolve(import.meta.dirname, '../../src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports of a file (static `import`/`export … from` and dynamic `import()`), resolved. */
export function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  // (A worker's entry file, `new URL('./worker.ts', import.meta.url)`, is another thread, not an import.)
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g)) {
    const spec = m[1] ?? m[2];
    if (spec.startsWith('.')) out.push(resolve(dirname(file), spec));
  }
  return out;
}

export function externalImportsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'([^'.][^']*)'/g)].map((m) => m[1]);
}

const layerOf = (file: string) => relative(SRC, file).split('/')[0];

describe('layers', () => {
  const files = sources(SRC);

  it('every folder of src/ has a layer', () => {
    const folders = new Set(files.map(layerOf).filter((f) => !f.endsWith('.ts')));
    expect([...folders].filter((f) => !(f in LAYERS))).toEqual([]);
  });

  it('no file imports a higher layer or a sibling folder of its own rank', () => {
    const bad: string[] = [];
    for (const f of files) {
      const from = layerOf(f);
      for (const target of importsOf(f)) {
        const to = layerOf(target);
        if (to === from || !(to in LAYERS)) continue;
        if (LAYERS[to] >= LAYERS[from]) bad.push(`${relative(SRC, f)} -> ${relative(SRC, target)}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('src/core is pure: it imports only itself and node:crypto', () => {
    const bad: string[] = [];
    for (const f of files.filter((x) => layerOf(x) === 'core')) {
      for (const e of externalImportsOf(f)) if (e !== 'node:crypto') bad.push(`${relative(SRC, f)} -> ${e}`);
      for (const t of importsOf(f)) if (layerOf(t) !== 'core') bad.push(`${relative(SRC, f)} -> ${relative(SRC, t)}`);
    }
    expect(bad).toEqual([]);
  });

  it('no import cycle between modules', () => {
    const graph = new Map(files.map((f) => [f, importsOf(f).filter((t) => t.startsWith(SRC))]));
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        cycles.push([...path.slice(path.indexOf(f)), f].map((x) => relative(SRC, x)).join(' -> '));
        return;
      }
      state.set(f, 'open');
      for (const t of graph.get(f) ?? []) visit(t, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of files) visit(f, []);
    expect(cycles).toEqual([]);
  });

  it('the checker sees a violation when there is one', () => {
    // guard against a regex that silently matches nothing
    const miner = join(SRC, 'node/miner.ts');
    expect(importsOf(miner).some((t) => layerOf(t) === 'chain')).toBe(true);
    expect(importsOf(join(SRC, 'mining/miner.ts')).length).toBeGreaterThan(0);
  });
});
