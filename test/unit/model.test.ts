import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ort } from '../../src/learn/ort.ts';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/random.ts';
import { DEFAULT_MODEL, type ModelSpec, buildInferenceGraph, initParams, paramCount, paramLayout } from '../../src/learn/model.ts';
import { ModelRuntime } from '../../src/learn/runtime.ts';
import { tmpDir } from '../helpers/tmp.ts';

function batch(spec: ModelSpec, b: number, seed: number) {
  const rng = new Rng(seed);
  const inp = spec.layers[0];
  const classes = spec.layers[spec.layers.length - 1];
  const x = Float64Array.from({ length: b * inp }, () => rng.normal());
  const y = new Float64Array(b * classes);
  for (let i = 0; i < b; i++) y[i * classes + rng.int(classes)] = 1;
  return { x, y };
}

describe('parameter layout and initialisation', () => {
  it('the default MLP has 159,010 parameters laid out W1, b1, W2, b2', () => {
    expect(paramCount(DEFAULT_MODEL)).toBe(159_010);
    expect(paramLayout(DEFAULT_MODEL).map((s) => [s.name, s.offset, s.size])).toEqual([
      ['W1', 0, 156_800],
      ['b1', 156_800, 200],
      ['W2', 157_000, 2000],
      ['b2', 159_000, 10],
    ]);
  });

  it('initialisation is seeded: same seed same bits, He-uniform bounds, zero biases', () => {
    const a = initParams(DEFAULT_MODEL, 7);
    expect(Buffer.from(initParams(DEFAULT_MODEL, 7).buffer)).toEqual(Buffer.from(a.buffer));
    expect(Buffer.from(initParams(DEFAULT_MODEL, 8).buffer)).not.toEqual(Buffer.from(a.buffer));
    const [W1, b1, W2] = paramLayout(DEFAULT_MODEL);
    const bound1 = Math.sqrt(6 / 784);
    const range = (v: Float32Array) => v.reduce(([lo, hi], x) => [Math.min(lo, x), Math.max(hi, x)], [Infinity, -Infinity]);
    const [lo1, hi1] = range(a.subarray(W1.offset, W1.offset + W1.size));
    expect(hi1).toBeLessThanOrEqual(bound1);
    expect(lo1).toBeGreaterThanOrEqual(-bound1);
    expect(hi1).toBeGreaterThan(bound1 * 0.99);
    expect(a.subarray(b1.offset, b1.offset + b1.size).every((v) => v === 0)).toBe(true);
    expect(range(a.subarray(W2.offset, W2.offset + W2.size))[1]).toBeLessThanOrEqual(Math.sqrt(6 / 200));
  });
});

describe('the generated backward pass', () => {
  for (const spec of [
    { kind: 'mlp', layers: [5, 4, 3] },
    { kind: 'mlp', layers: [6, 5, 4, 3] },
  ] as ModelSpec[]) {
    it(`every gradient of MLP ${spec.layers.join('-')} matches central finite differences`, async () => {
      const rt = await ModelRuntime.create(spec, { elem: 'double' });
      try {
        const rng = new Rng(11);
        // perturb so that no ReLU input sits at 0 and biases matter
        const p = Float64Array.from(initParams(spec, 3), (v) => v + 0.2 * rng.normal());
        const { x, y } = batch(spec, 5, 12);
        const grad = new Float64Array(p.length);
        await rt.trainStep(p, x, y, 5, grad);
        const scratch = new Float64Array(p.length);
        const h = 1e-6;
        for (let k = 0; k < p.length; k++) {
          const q = Float64Array.from(p);
          q[k] += h;
          const up = await rt.trainStep(q, x, y, 5, scratch);
          q[k] -= 2 * h;
          const down = await rt.trainStep(q, x, y, 5, scratch);
          const fd = (up - down) / (2 * h);
          expect(Math.abs(fd - grad[k]), `parameter ${k}`).toBeLessThan(1e-7 + 1e-5 * Math.abs(fd));
        }
      } finally {
        await rt.close();
      }
    });
  }

  it('float32 gradients agree with float64 ones', async () => {
    const spec: ModelSpec = { kind: 'mlp', layers: [20, 8, 4] };
    const [f, d] = await Promise.all([ModelRuntime.create(spec), ModelRuntime.create(spec, { elem: 'double' })]);
    const p = initParams(spec, 1);
    const { x, y } = batch(spec, 7, 2);
    const gf = new Float32Array(p.length);
    const gd = new Float64Array(p.length);
    const lf = await f.trainStep(p, Float32Array.from(x), Float32Array.from(y), 7, gf);
    const ld = await d.trainStep(Float64Array.from(p), x, y, 7, gd);
    expect(lf).toBeCloseTo(ld, 5);
    for (let k = 0; k < p.length; k++) expect(Math.abs(gf[k] - gd[k])).toBeLessThan(1e-5);
    await Promise.all([f.close(), d.close()]);
  });

  it('the fused SGD step is w − η(g + μ(w − w0))', async () => {
    const spec: ModelSpec = { kind: 'mlp', layers: [6, 5, 3] };
    const rt = await ModelRuntime.create(spec, { elem: 'double' });
    const p = Float64Array.from(initParams(spec, 5));
    const w0 = p.map((v, i) => v + (i % 3) * 0.01);
    const { x, y } = batch(spec, 4, 9);
    const g = new Float64Array(p.length);
    const loss = await rt.trainStep(p, x, y, 4, g);
    const next = new Float64Array(p.length);
    expect(await rt.sgdStep(p, x, y, 4, 0.1, next)).toBe(loss);
    for (let k = 0; k < p.length; k++) expect(next[k]).toBeCloseTo(p[k] - 0.1 * g[k], 14);
    await rt.sgdStep(p, x, y, 4, 0.1, next, { mu: 0.5, global: w0 });
    for (let k = 0; k < p.length; k++) expect(next[k]).toBeCloseTo(p[k] - 0.1 * (g[k] + 0.5 * (p[k] - w0[k])), 14);
    await rt.close();
  });

  it('an exported model file loads back in a new session and gives the same logits', async () => {
    const spec = DEFAULT_MODEL;
    const params = initParams(spec, 21);
    const file = join(await tmpDir('bfl-onnx-'), 'model.onnx');
    await writeFile(file, buildInferenceGraph(spec, 'float', params));
    const rng = new Rng(4);
    const x = Float32Array.from({ length: 3 * 784 }, () => rng.float());
    const rt = await ModelRuntime.create(spec);
    const mine = await rt.logits(params, x, 3);
    const loaded = await ort.InferenceSession.create(file);
    const out = await loaded.run({ x: new ort.Tensor('float32', x, [3, 784]) });
    // weights stored as initializers are pre-packed by onnxruntime: same maths, other rounding
    const theirs = out.logits.data as Float32Array;
    expect(theirs.length).toBe(mine.length);
    for (let i = 0; i < mine.length; i++) expect(Math.abs(theirs[i] - mine[i])).toBeLessThan(1e-5 * (1 + Math.abs(mine[i])));
    await loaded.release();
    await rt.close();
  });

  it('rejects a parameter vector of the wrong length', async () => {
    const rt = await ModelRuntime.create({ kind: 'mlp', layers: [4, 3, 2] });
    await expect(rt.logits(new Float32Array(5), new Float32Array(4), 1)).rejects.toThrow(/expected 23 parameters/);
    await rt.close();
  });
});
