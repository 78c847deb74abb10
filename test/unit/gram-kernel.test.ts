import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BflMecAggregator } from '../../src/core/aggregation/bflmec.ts';
import { CHUNK, pairwise } from '../../src/core/aggregation/vectors.ts';
import { ThreadedGramKernel, WasmGramKernel } from '../../src/kernels/gram.ts';
import { aggregatorOf } from '../../src/chain/aggregation-engine.ts';
import { defaultAggregationConfig } from '../../src/config/network.ts';

/**
 * Bit for bit, except that any NaN equals any NaN: IEEE 754 leaves a NaN's sign and payload to
 * the hardware (and the reference in JS is no more specific), so only NaN-ness is compared.
 */
function sameBits(a: Float64Array, b: Float64Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new BigUint64Array(a.buffer, a.byteOffset, a.length);
  const ub = new BigUint64Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) if (ua[i] !== ub[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  return true;
}

// Vectors of every scale (ordinary, huge: products overflow to ±∞; tiny: products underflow to
// subnormals or 0) with a few special coordinates (signed zeros, extremes, infinities). Scales are
// per vector, specials rare: most sums stay finite, so a change of summation order shows.
const special = fc.constantFrom(0, -0, 1e308, -1e308, Number.MIN_VALUE, -Number.MIN_VALUE, Infinity, -Infinity, 1e-310);
const vector = (dim: number) =>
  fc
    .record({
      xs: fc.array(fc.double({ min: -10, max: 10, noNaN: true }), { minLength: dim, maxLength: dim }),
      scale: fc.oneof({ weight: 5, arbitrary: fc.constant(1) }, { weight: 2, arbitrary: fc.constantFrom(1e-160, 1e-300, 1e150, 1e300, 3.7e-5, 2 ** 70) }),
      specials: fc.oneof({ weight: 3, arbitrary: fc.constant([] as [number, number][]) }, { weight: 1, arbitrary: fc.array(fc.tuple(fc.nat(), special), { maxLength: dim > 0 ? 2 : 0 }) }),
    })
    .map(({ xs, scale, specials }) => {
      const v = Float64Array.from(xs, (x) => x * scale);
      for (const [i, x] of specials) v[i % dim] = x;
      return v;
    });

const vectors = fc
  .record({
    n: fc.integer({ min: 1, max: 11 }),
    // below one chunk, across one and two chunk boundaries, odd lengths
    dim: fc.oneof(fc.integer({ min: 0, max: CHUNK - 1 }), fc.integer({ min: CHUNK - 3, max: 3 * CHUNK + 5 })),
  })
  .chain(({ n, dim }) => fc.array(vector(dim), { minLength: n, maxLength: n }));

describe('Gram kernels (WebAssembly SIMD, threads) against the reference', () => {
  let wasm: WasmGramKernel;
  let threaded: ThreadedGramKernel;
  beforeAll(async () => {
    wasm = WasmGramKernel.create()!;
    threaded = (await ThreadedGramKernel.create({ threads: 3 }))!;
  });
  afterAll(async () => {
    await threaded?.close();
  });

  it('run on this Node', () => {
    expect(wasm).toBeTruthy();
    expect(threaded.threads).toBe(3);
  });

  it('give the reference bits for dot products and squared distances on random sizes and values', () => {
    fc.assert(
      fc.property(vectors, fc.constantFrom('dot' as const, 'sqdist' as const), (v, kind) => {
        const ref = pairwise(v, kind);
        expect(sameBits(wasm.pairwise(v, kind), ref)).toBe(true);
        expect(sameBits(threaded.pairwise(v, kind), ref)).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it('give the reference bits on ordinary data where rounding differs with any other order', () => {
    // a sum whose value depends on the order: 1e16 + 1 − 1e16 per chunk
    const dim = 4 * CHUNK + 77;
    const v = Array.from({ length: 9 }, (_, i) => Float64Array.from({ length: dim }, (_, k) => ((k * 7919 + i * 104729) % 1000) / 7 + (k % 97 === 0 ? 1e16 : 0) * (i % 2 ? 1 : -1)));
    for (const kind of ['dot', 'sqdist'] as const) {
      const ref = pairwise(v, kind);
      expect(sameBits(wasm.pairwise(v, kind), ref)).toBe(true);
      expect(sameBits(threaded.pairwise(v, kind), ref)).toBe(true);
    }
    // the sum over one accumulator in another order does differ: the test can see an order change
    const a = v[1];
    const b = v[3];
    let forward = 0;
    let backward = 0;
    for (let k = 0; k < dim; k++) forward += a[k] * b[k];
    for (let k = dim - 1; k >= 0; k--) backward += a[k] * b[k];
    expect(forward).not.toBe(backward);
  });

  it('read float32 rows (the updates, in place) with the bits of their float64 copies', () => {
    // the aggregation hands the kernels the received float32 deltas instead of float64 copies
    const rows = fc
      .record({ n: fc.integer({ min: 1, max: 9 }), dim: fc.oneof(fc.integer({ min: 0, max: CHUNK - 1 }), fc.integer({ min: CHUNK - 3, max: 2 * CHUNK + 5 })) })
      .chain(({ n, dim }) => fc.array(fc.array(fc.float({ noNaN: true }), { minLength: dim, maxLength: dim }), { minLength: n, maxLength: n }));
    fc.assert(
      fc.property(rows, fc.constantFrom('dot' as const, 'sqdist' as const), (xs, kind) => {
        const v32 = xs.map((x) => Float32Array.from(x));
        const ref = pairwise(v32.map((x) => new Float64Array(x)), kind);
        expect(sameBits(pairwise(v32, kind), ref)).toBe(true);
        expect(sameBits(wasm.pairwise(v32, kind), ref)).toBe(true);
        expect(sameBits(threaded.pairwise(v32, kind), ref)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('many waves of partial sums, and vectors of unequal length left to the reference', async () => {
    // 18 vectors (20 padded): partial matrices of 3,200 bytes, 5 per wave, 43 chunks: 9 waves
    const k = (await ThreadedGramKernel.create({ threads: 2, partBudgetBytes: 5 * 3200 + 100 }))!;
    try {
      const v = Array.from({ length: 18 }, (_, i) => Float64Array.from({ length: 42 * CHUNK + 11 }, (_, j) => Math.sin(i * 1000 + j) * 10 ** (j % 9)));
      expect(sameBits(k.pairwise(v, 'dot'), pairwise(v, 'dot'))).toBe(true);
      const odd = [new Float64Array([1, 2, 3]), new Float64Array([4, 5])];
      expect(sameBits(k.pairwise(odd, 'dot'), pairwise(odd, 'dot'))).toBe(true);
      expect(k.pairwise([], 'dot').length).toBe(0);
    } finally {
      await k.close();
    }
    // closed: it still answers, on the calling thread
    const v = [Float64Array.from([1, 2, 3]), Float64Array.from([3, 2, 1])];
    expect(sameBits(k.pairwise(v, 'sqdist'), pairwise(v, 'sqdist'))).toBe(true);
  });

  it('aggregatorOf hands the kernel to both BFL-MEC rules (the default agreement scoring too), with the same bits', () => {
    // The default `bfl-mec` (issue 11) had been left on the JS reference in the simulator and the daemon's worker.
    const dim = 1500;
    const updates = Array.from({ length: 9 }, (_, i) => ({
      clientId: `c${i}`,
      digest: Uint8Array.from({ length: 32 }, (_, j) => (i * 17 + j) & 255),
      delta: Float32Array.from({ length: dim }, (_, k) => Math.cos(k * (1 + (i % 3))) * 0.01),
      sampleCount: 10 + i,
      staleness: 0,
    }));
    const input = { previous: new Float32Array(dim).fill(0.5), updates, baseReward: 1000n };
    let calls = 0;
    const counting = { name: 'counting', pairwise: (v: Float64Array[], kind: 'dot' | 'sqdist') => (calls++, threaded.pairwise(v, kind)) };
    for (const aggregator of ['bfl-mec', 'bfl-mec-paper'] as const) {
      const cfg = { ...defaultAggregationConfig, aggregator };
      const ref = aggregatorOf(cfg);
      const fast = aggregatorOf(cfg, counting);
      const before = calls;
      const a = ref.aggregate(input, ref.initialState()).result;
      const b = fast.aggregate(input, fast.initialState()).result;
      expect(calls).toBeGreaterThan(before);
      expect(Buffer.from(b.model.buffer).equals(Buffer.from(a.model.buffer))).toBe(true);
      expect(b.entries).toEqual(a.entries);
    }
  });

  it('BFL-MEC given a kernel aggregates to the same bits', () => {
    const dim = 1500;
    const updates = Array.from({ length: 13 }, (_, i) => ({
      clientId: `c${i}`,
      digest: Uint8Array.from({ length: 32 }, (_, j) => (i * 31 + j) & 255),
      delta: Float32Array.from({ length: dim }, (_, k) => Math.sin(k + (i % 4)) * (i === 12 ? -3 : 1) * 0.01),
      sampleCount: 10 + i,
      staleness: 0,
    }));
    const input = { previous: new Float32Array(dim).fill(0.5), updates, baseReward: 1000n };
    for (const metric of ['cosine', 'euclidean'] as const) {
      const ref = new BflMecAggregator({ metric }).aggregate(input, null).result;
      const fast = new BflMecAggregator({ metric });
      fast.kernel = threaded;
      const got = fast.aggregate(input, null).result;
      expect(Buffer.from(got.model.buffer).equals(Buffer.from(ref.model.buffer))).toBe(true);
      expect(got.entries).toEqual(ref.entries);
      expect(got.rewards).toEqual(ref.rewards);
    }
  });
});
