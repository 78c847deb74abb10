import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/random.ts';
import { defaultKeyrate, loadSklearn, runKeyrateExperiment, taylorLoss } from '../../src/experiments/keyrate.ts';
import { ModelRuntime } from '../../src/learn/runtime.ts';
import { cli } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';


/** A data set in scikit-learn's bundled CSV layout: 3 classes, 4 features, class k centred at 3k. */
async function sklearnDir(n = 90): Promise<string> {
  const dir = await tmpDir('bfl-keyrate-');
  const rng = new Rng(7);
  const rows: string[] = [];
  for (let i = 0; i < n; i++) {
    const k = i % 3;
    rows.push([...Array.from({ length: 4 }, () => (3 * k + rng.float()).toFixed(3)), k].join(','));
  }
  await writeFile(join(dir, 'iris.csv'), [`${n},4,a,b,c`, ...rows].join('\n') + '\n');
  await writeFile(join(dir, 'digits.csv.gz'), gzipSync(rows.join('\n') + '\n')); // digits: no header line
  return dir;
}

describe('experiment keyrate (the QKD paper Fig. 4)', () => {
  it('reads both CSV layouts scikit-learn bundles, standardised, with the class column as labels', async () => {
    const dir = await sklearnDir();
    for (const name of ['iris', 'digits'] as const) {
      const d = loadSklearn(name, dir);
      expect([d.n, d.dim, d.classes]).toEqual([90, 4, 3]);
      expect(Array.from(d.y.slice(0, 4))).toEqual([0, 1, 2, 0]);
      let mean = 0;
      for (let i = 0; i < d.n; i++) mean += d.x[i * d.dim];
      expect(Math.abs(mean / d.n)).toBeLessThan(1e-5);
    }
  });

  it('a missing data folder is one line that says to install python3-sklearn', () => {
    expect(() => loadSklearn('wine', '/nonexistent')).toThrow(/wine_data\.csv not found: install Debian's python3-sklearn/);
  });

  it('Taylor loss is Σ (1 − p_y)^k / k of the softmax probability', async () => {
    const rt = await ModelRuntime.create({ kind: 'mlp', layers: [1, 2] });
    try {
      // W = [1, 0], b = [0, 0]: logits (x, 0); for x = ln 3, p(class 0) = 3/4
      const params = Float32Array.from([1, 0, 0, 0]);
      const data = { name: 't', x: Float32Array.from([Math.log(3)]), y: Uint8Array.from([0]), n: 1, dim: 1, classes: 2 };
      const r = await taylorLoss(rt, params, data, 2);
      expect(r.taylor).toBeCloseTo(0.25 + 0.25 ** 2 / 2, 5);
      expect(r.crossEntropy).toBeCloseTo(-Math.log(0.75), 5);
      expect(r.accuracy).toBe(1);
    } finally {
      await rt.close();
    }
  });

  it('maps key rates to workers per iteration, is seeded, and more channels lower the loss on skewed data', async () => {
    const dir = await sklearnDir(150);
    const o = { ...defaultKeyrate, datasets: ['iris' as const], dataDir: dir, rates: [1, 2.5, 10], rounds: 4, repeats: 1, out: await tmpDir('bfl-keyrate-out-') };
    const a = await runKeyrateExperiment(o);
    const b = await runKeyrateExperiment({ ...o, out: await tmpDir('bfl-keyrate-out-') });
    const pts = a.datasets.iris.points;
    expect(pts.map((p) => p.channels)).toEqual([1, 2, 10]);
    // 4 + 4·16 + 16 + 16·3 + 3 = 131 parameters; one-time pad both ways, one iteration per second
    expect(a.datasets.iris.channelKeyRateBitsPerSecond).toBe(2 * 32 * 131);
    expect(pts.map((p) => p.taylor)).toEqual(b.datasets.iris.points.map((p) => p.taylor));
    expect(pts[2].taylor).toBeLessThan(pts[0].taylor);
  });

  it('bad flags exit 2 with one line', async () => {
    const r = await cli(['experiment', 'keyrate', '--datasets', 'mnist']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown data set mnist: use breast_cancer, digits, iris, wine/);
    const p = await cli(['experiment', 'keyrate', '--partition', 'zipf']);
    expect(p.code).toBe(2);
    expect(p.err).not.toMatch(/\n\s+at /);
  });
});
