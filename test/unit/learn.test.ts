import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../helpers/errors.ts';
import { BflError } from '../../src/core/errors.ts';
import { Rng } from '../../src/core/random.ts';
import { type Dataset, FASHION_DIR, loadDataset, loadEmbeddedMnist, loadIdxDataset, readDigitsJson, readIdx, subset } from '../../src/learn/data.ts';
import { type ModelSpec, initParams } from '../../src/learn/model.ts';
import { labelCounts, partition } from '../../src/learn/partition.ts';
import { ModelRuntime } from '../../src/learn/runtime.ts';
import { DataStream } from '../../src/learn/stream.ts';
import { evaluate, trainLocal } from '../../src/learn/train.ts';
import { idxFile as idx } from '../helpers/idx.ts';
import { tmpDir } from '../helpers/tmp.ts';


describe('data sets', () => {
  it('embedded MNIST: 8,000 train and 2,000 test real digits, every class, pixels in [0, 1], a fixed split', () => {
    const { train, test } = loadEmbeddedMnist();
    expect([train.n, test.n, train.dim, train.classes]).toEqual([8000, 2000, 784, 10]);
    for (const ds of [train, test]) {
      const counts = labelCounts(ds.y, [Array.from({ length: ds.n }, (_, i) => i)])[0];
      expect(counts.every((c) => c > ds.n / 20)).toBe(true);
    }
    let min = Infinity;
    let max = -Infinity;
    for (const v of train.x) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    expect([min, max]).toEqual([0, 1]);
    // the split is a fixed permutation: the first labels never change
    expect(Array.from(train.y.subarray(0, 12))).toEqual(Array.from(loadEmbeddedMnist().train.y.subarray(0, 12)));
  });

  it("the embedded digit files' fast reader gives JSON.parse's float32 bits, falls back to it on other JSON, and names a damaged file", () => {
    const dir = join(dirname(createRequire(import.meta.url).resolve('mnist/package.json')), 'src', 'digits');
    for (let d = 0; d < 10; d++) {
      const file = join(dir, `${d}.json`);
      const buf = readFileSync(file);
      const fast = readDigitsJson(buf, file);
      const reference = Float32Array.from((JSON.parse(buf.toString('utf8')) as { data: number[] }).data);
      expect(fast.length).toBe(reference.length);
      expect(Buffer.from(fast.buffer).equals(Buffer.from(reference.buffer))).toBe(true);
    }
    const read = (text: string) => Array.from(readDigitsJson(Buffer.from(text), 'x.json'));
    // decimals the fast path takes, with spaces and newlines, and ones it leaves to JSON.parse
    expect(read('{ "data": [ 0, 1,0.5 ,\n0.003921568627451 ]}')).toEqual([0, 1, 0.5, Math.fround(0.003921568627451)]);
    expect(read('{"data":[1e-3,-0.25,0.1234567890123456789]}')).toEqual([Math.fround(1e-3), -0.25, Math.fround(0.1234567890123456789)]);
    expect(read('{"data":[]}')).toEqual([]);
    // what JSON.parse refuses is refused, whatever the fast path could have read
    for (const bad of ['{"data":[00.5]}', '{"data":[007]}', '{"data":[1.]}', '{"data":[.5]}', '{"data":[1,2]', '{"data":[1,2]} x', '{"data":[1,,2]}', '{"data":[1,2,]}'])
      expect(() => read(bad), bad).toThrow(/not JSON/);
    for (const other of ['{"x":[1,2]}', '[1,2]', '{"data":"[1]"}']) expect(() => read(other), other).toThrow(/no "data" array of numbers/);
    expect(() => read('{"data":[0.1,0.2')).toThrow(/x\.json: not JSON .*npm ci/);
    expect(() => read('{"data":[0.1,"a"]}')).toThrow(/x\.json: no "data" array of numbers/);
  });

  it('reads IDX files, plain and gzip, into the MNIST layout', async () => {
    const dir = await tmpDir('bfl-idx-');
    const img = Uint8Array.from({ length: 3 * 2 * 2 }, (_, i) => i * 20);
    await writeFile(join(dir, 'train-images-idx3-ubyte'), idx([3, 2, 2], img));
    await writeFile(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(idx([3], Uint8Array.of(1, 0, 9))));
    await writeFile(join(dir, 't10k-images-idx3-ubyte.gz'), gzipSync(idx([1, 2, 2], Uint8Array.of(255, 0, 0, 255))));
    await writeFile(join(dir, 't10k-labels-idx1-ubyte'), idx([1], Uint8Array.of(4)));
    const { train, test } = loadIdxDataset(dir);
    expect([train.n, train.dim, test.n]).toEqual([3, 4, 1]);
    expect(Array.from(train.y)).toEqual([1, 0, 9]);
    expect(train.x[1]).toBeCloseTo(20 / 255, 7);
    expect(Array.from(test.x)).toEqual([1, 0, 0, 1]);
    expect(readIdx(join(dir, 'train-labels-idx1-ubyte.gz')).dims).toEqual([3]);
  });

  it('a wrong path names the missing file; damaged files are BAD_DATA', async () => {
    const dir = await tmpDir('bfl-idx-');
    try {
      loadIdxDataset(dir);
      expect.fail('should throw');
    } catch (e) {
      expect((e as BflError).code).toBe('DATA_NOT_FOUND');
      expect((e as Error).message).toContain('train-images-idx3-ubyte');
      expect((e as Error).message).toContain(dir);
    }
    await writeFile(join(dir, 'bad'), Buffer.from([1, 2, 3, 4, 5]));
    expect(codeOf(() => readIdx(join(dir, 'bad')))).toBe('BAD_DATA');
    await writeFile(join(dir, 'short'), idx([10], Uint8Array.of(1, 2)));
    expect(codeOf(() => readIdx(join(dir, 'short')))).toBe('BAD_DATA');
    expect(codeOf(() => loadDataset('cifar'))).toBe('BAD_CONFIG');
  });

  it.skipIf(!existsSync(FASHION_DIR))('loads Fashion-MNIST from Debian\'s dataset-fashion-mnist', () => {
    const { train, test } = loadDataset('fashion');
    expect([train.n, test.n, train.dim, train.classes]).toEqual([60000, 10000, 784, 10]);
  });
});

describe('partitions', () => {
  const labels = loadEmbeddedMnist().train.y;

  it('iid: equal parts that cover the set exactly once; seeded', () => {
    const p = partition(labels, 10, { kind: 'iid' }, 1);
    expect(p.map((x) => x.length)).toEqual(new Array(10).fill(800));
    expect(new Set(p.flat()).size).toBe(8000);
    expect(partition(labels, 10, { kind: 'iid' }, 1)).toEqual(p);
    expect(partition(labels, 10, { kind: 'iid' }, 2)).not.toEqual(p);
  });

  it('shards: two label-sorted shards per client, so each client sees few labels', () => {
    const p = partition(labels, 20, { kind: 'shards' }, 3);
    expect(new Set(p.flat()).size).toBe(8000);
    const distinct = labelCounts(labels, p).map((h) => h.filter((c) => c > 0).length);
    expect(Math.max(...distinct)).toBeLessThanOrEqual(4); // a shard can straddle a label boundary
    expect(distinct.filter((d) => d <= 2).length).toBeGreaterThanOrEqual(12);
  });

  it('dirichlet: covers the set; small α is skewed, large α close to iid', () => {
    const share = (alpha: number) => {
      const p = partition(labels, 10, { kind: 'dirichlet', alpha }, 4);
      expect(p.flat().length).toBe(8000);
      expect(new Set(p.flat()).size).toBe(8000);
      const h = labelCounts(labels, p).filter((x) => x.some((c) => c > 0));
      return h.reduce((s, x) => s + Math.max(...x) / x.reduce((a, b) => a + b, 0), 0) / h.length;
    };
    expect(share(0.1)).toBeGreaterThan(0.5);
    expect(share(100)).toBeLessThan(0.2);
  });
});

describe('data stream', () => {
  it('samples arrive at the configured rate; more than N new samples is the trigger', () => {
    const s = new DataStream([10, 11, 12, 13, 14], 1000, { rate: 2, seed: 1 });
    expect(s.arrived(1000)).toBe(0);
    expect(s.arrived(3600)).toBe(5);
    expect(s.fresh(3600) > 4).toBe(true);
    const when = s.whenFreshExceeds(4);
    expect(s.fresh(when)).toBe(5);
    expect(s.fresh(when - 1)).toBe(4);
  });

  it('takeNewest returns the N newest samples and resets the count; the partition recycles', () => {
    const s = new DataStream([1, 2, 3], 0, { rate: 1, seed: 2 });
    const first = s.takeNewest(2, 3000);
    expect(first).toHaveLength(2);
    expect(s.fresh(3000)).toBe(0);
    const later = s.takeNewest(6, 9000); // 9 arrived: three passes over the partition
    expect(later).toHaveLength(6);
    expect(later.every((i) => [1, 2, 3].includes(i))).toBe(true);
    expect(new Set(later.slice(0, 3)).size).toBe(3); // each pass is a permutation
  });
});

describe('local training', () => {
  const spec: ModelSpec = { kind: 'mlp', layers: [2, 8, 2] };
  function blobs(n: number, seed: number): Dataset {
    const rng = new Rng(seed);
    const x = new Float32Array(n * 2);
    const y = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = i % 2;
      x[2 * i] = (y[i] ? 2 : -2) + 0.5 * rng.normal();
      x[2 * i + 1] = (y[i] ? -1 : 1) + 0.5 * rng.normal();
    }
    return { name: 'blobs', x, y, n, dim: 2, classes: 2 };
  }

  it('loss falls and a separable toy set is learnt; Δ = w_local − w_global', async () => {
    const rt = await ModelRuntime.create(spec);
    const data = blobs(64, 1);
    const w0 = initParams(spec, 1);
    const before = await evaluate(rt, w0, data);
    const r = await trainLocal(rt, w0, data, { epochs: 20, batchSize: 8, lr: 0.1, seed: 1 });
    const after = await evaluate(rt, r.params, data);
    expect(after.loss).toBeLessThan(before.loss / 4);
    expect(after.accuracy).toBe(1);
    expect(r.samples).toBe(64);
    expect(r.steps).toBe(20 * 8);
    for (let k = 0; k < w0.length; k++) expect(r.delta[k]).toBe(Math.fround(r.params[k] - w0[k]));
    await rt.close();
  });

  it('FedProx μ pulls the local model towards the global one', async () => {
    const rt = await ModelRuntime.create(spec);
    const data = blobs(64, 2);
    const w0 = initParams(spec, 2);
    const norm = (d: Float32Array) => Math.sqrt(d.reduce((s, v) => s + v * v, 0));
    const plain = await trainLocal(rt, w0, data, { epochs: 10, batchSize: 8, lr: 0.1, seed: 3 });
    const prox = await trainLocal(rt, w0, data, { epochs: 10, batchSize: 8, lr: 0.1, seed: 3, mu: 2 });
    expect(norm(prox.delta)).toBeLessThan(norm(plain.delta) * 0.8);
    await rt.close();
  });

  it('the loop engine (every step in one onnxruntime call) gives the step-by-step path\'s bits', async () => {
    // The experiments' published figures come from the step-by-step path: the one-call Loop must
    // reproduce its parameters and loss exactly, with full and short last batches, with FedProx,
    // on the default MLP (MNIST digits) and on a toy model.
    const mlp: ModelSpec = { kind: 'mlp', layers: [784, 200, 10] };
    const rt = await ModelRuntime.create(mlp);
    const toy = await ModelRuntime.create(spec);
    const { train } = loadEmbeddedMnist();
    const cases: { rt: ModelRuntime; w0: Float32Array; data: Dataset; opts: Parameters<typeof trainLocal>[3] }[] = [
      { rt, w0: initParams(mlp, 4), data: subset(train, Array.from({ length: 100 }, (_, i) => 3 * i)), opts: { epochs: 5, batchSize: 10, lr: 0.01, seed: 7 } },
      { rt, w0: initParams(mlp, 5), data: subset(train, Array.from({ length: 37 }, (_, i) => 11 * i + 1)), opts: { epochs: 3, batchSize: 8, lr: 0.05, seed: 8, mu: 0.5 } },
      { rt: toy, w0: initParams(spec, 6), data: blobs(50, 6), opts: { epochs: 4, batchSize: 64, lr: 0.1, seed: 9 } },
      { rt: toy, w0: initParams(spec, 7), data: blobs(21, 7), opts: { epochs: 2, batchSize: 1, lr: 0.1, seed: 10 } },
    ];
    for (const c of cases) {
      const byStep = await trainLocal(c.rt, c.w0, c.data, { ...c.opts, engine: 'step' });
      const looped = await trainLocal(c.rt, c.w0, c.data, { ...c.opts, engine: 'loop' });
      expect(looped.steps).toBe(byStep.steps);
      expect(looped.samples).toBe(byStep.samples);
      expect(looped.loss).toBe(byStep.loss);
      expect(Buffer.from(looped.params.buffer).equals(Buffer.from(byStep.params.buffer))).toBe(true);
      expect(Buffer.from(looped.delta.buffer).equals(Buffer.from(byStep.delta.buffer))).toBe(true);
      // and training moved the parameters (a no-op would also be equal)
      expect(looped.delta.some((v) => v !== 0)).toBe(true);
    }
    await rt.close();
    await toy.close();
  });

  it('evaluation counts argmax hits', async () => {
    const rt = await ModelRuntime.create({ kind: 'mlp', layers: [784, 200, 10] });
    const { test } = loadEmbeddedMnist();
    const few = subset(test, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const p = initParams({ kind: 'mlp', layers: [784, 200, 10] }, 3);
    const ev = await evaluate(rt, p, few);
    const logits = await rt.logits(p, few.x, 10);
    let hits = 0;
    for (let i = 0; i < 10; i++) {
      const row = Array.from(logits.subarray(i * 10, i * 10 + 10));
      if (row.indexOf(Math.max(...row)) === few.y[i]) hits++;
    }
    expect(ev.accuracy).toBe(hits / 10);
    expect(ev.samples).toBe(10);
    await rt.close();
  });
});
