/** The public root set's consensus maths (issue 11, rewards from a root set): src/core/aggregation/rootset.ts. */
import { describe, expect, it } from 'vitest';
import { checkRootSet, prepareRootSet, rootGradient, rootLogits, rootLoss, rootSetHash, rootTeaching, selectRootIndices, type RootSet } from '../../src/core/aggregation/rootset.ts';
import { toHex } from '../../src/core/bytes.ts';
import { ErrorCode } from '../../src/core/errors.ts';
import { Rng } from '../../src/core/random.ts';

const layers = [6, 5, 3];
const params = (rng: Rng) => Float32Array.from({ length: 6 * 5 + 5 + 5 * 3 + 3 }, () => rng.normal() * 0.5);
function tiny(seed = 1, count = 9): RootSet {
  const rng = new Rng(seed);
  // a third of the inputs zero, as MNIST's background (the first layer skips them)
  const x = Float32Array.from({ length: count * 6 }, () => (rng.float() < 0.33 ? 0 : rng.normal()));
  const y = Uint8Array.from({ length: count }, (_, i) => i % 3);
  return { x, y, count, dim: 6, classes: 3 };
}

/** The cross-entropy written out plainly, one sample at a time (the reference the kernel must equal). */
function plainLoss(r: RootSet, p: Float32Array): number {
  let total = 0;
  for (let s = 0; s < r.count; s++) {
    const h = Array.from({ length: 5 }, (_, j) => {
      let z = p[30 + j];
      for (let k = 0; k < 6; k++) z += r.x[s * 6 + k] * p[k * 5 + j];
      return Math.max(0, z);
    });
    const z = Array.from({ length: 3 }, (_, j) => {
      let v = p[35 + 15 + j];
      for (let k = 0; k < 5; k++) v += h[k] * p[35 + k * 3 + j];
      return v;
    });
    const m = Math.max(...z);
    total += Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0)) + m - z[r.y[s]];
  }
  return total / r.count;
}

describe('root set', () => {
  it('the loss is the plain cross-entropy, the gradient matches finite differences, p + d is the moved model', () => {
    const rng = new Rng(2);
    const r = tiny();
    const prep = prepareRootSet(r, layers);
    const p = params(rng);
    expect(rootLoss(prep, p)).toBeCloseTo(plainLoss(r, p), 12);
    const { loss, grad } = rootGradient(prep, p);
    expect(loss).toBe(rootLoss(prep, p));
    const { logits, loss: l2 } = rootLogits(prep, p);
    expect(l2).toBe(loss);
    expect(logits).toHaveLength(r.count * 3);
    // the logits are the ones the loss was computed from
    let ce = 0;
    for (let s = 0; s < r.count; s++) {
      const z = Array.from(logits.subarray(s * 3, s * 3 + 3));
      ce += Math.log(z.reduce((a, v) => a + Math.exp(v), 0)) - z[r.y[s]];
    }
    expect(ce / r.count).toBeCloseTo(loss, 12);
    for (let k = 0; k < p.length; k++) {
      const d = new Float32Array(p.length);
      d[k] = 1e-3;
      const up = rootLoss(prep, p, d);
      d[k] = -1e-3;
      const down = rootLoss(prep, p, d);
      expect(grad[k], `coordinate ${k}`).toBeCloseTo((up - down) / 2e-3, 5);
    }
    const d = Float32Array.from(p, () => rng.normal() * 0.1);
    // p + d in float64 (one rounding fewer than the float32 model): equal to the rounded model's loss to ~1e-7
    expect(rootLoss(prep, p, d)).toBeCloseTo(rootLoss(prep, Float32Array.from(p, (v, k) => v + d[k])), 6);
    expect(rootLoss(prep, p, d)).not.toBeCloseTo(rootLoss(prep, p), 3);
  });

  it('selects perClass samples of every class by seed, sorted; the same seed the same set', () => {
    const labels = Uint8Array.from({ length: 200 }, (_, i) => (i * 7) % 10);
    const a = selectRootIndices(labels, 10, 4, 5);
    expect(a).toEqual(selectRootIndices(labels, 10, 4, 5));
    expect(a).not.toEqual(selectRootIndices(labels, 10, 4, 6));
    expect(a).toEqual([...a].sort((x, y) => x - y));
    for (let c = 0; c < 10; c++) expect(a.filter((i) => labels[i] === c)).toHaveLength(4);
    expect(() => selectRootIndices(labels, 11, 4, 5)).toThrow(expect.objectContaining({ code: ErrorCode.BAD_CONFIG }));
  });

  it('a wrong root set is a BAD_CONFIG error that says what is wrong: inputs, classes, labels, shape, values, hash', () => {
    const r = tiny();
    const code = (f: () => void) => {
      try {
        f();
      } catch (e) {
        return (e as { code?: string }).code;
      }
      return 'no error';
    };
    expect(code(() => checkRootSet(r, layers, toHex(rootSetHash(r))))).toBe('no error');
    expect(code(() => checkRootSet(r, [7, 5, 3]))).toBe(ErrorCode.BAD_CONFIG);
    expect(code(() => checkRootSet(r, [6, 5, 4]))).toBe(ErrorCode.BAD_CONFIG);
    expect(code(() => checkRootSet({ ...r, y: Uint8Array.from(r.y, (v, i) => (i === 2 ? 3 : v)) }, layers))).toBe(ErrorCode.BAD_CONFIG);
    expect(code(() => checkRootSet({ ...r, count: 8 }, layers))).toBe(ErrorCode.BAD_CONFIG);
    expect(code(() => checkRootSet({ ...r, x: Float32Array.from(r.x, (v, k) => (k === 4 ? NaN : v)) }, layers))).toBe(ErrorCode.BAD_CONFIG);
    const other = tiny(2);
    expect(code(() => checkRootSet(r, layers, toHex(rootSetHash(other))))).toBe(ErrorCode.BAD_CONFIG);
    expect(() => checkRootSet(r, layers, toHex(rootSetHash(other)))).toThrow(/SHA-256 .* differs/);
  });
  it('teaching: the true label\'s logit lift less the mean class\'s; a push of one class on every sample adds nothing on a balanced set', () => {
    const prep = prepareRootSet(tiny(), layers); // 9 samples, labels 0, 1, 2 three times each
    const rng = new Rng(5);
    const base = Float64Array.from({ length: 9 * 3 }, () => rng.normal());
    const moved = (f: (s: number, c: number) => number) => base.map((z, k) => z + f(Math.floor(k / 3), k % 3));
    expect(rootTeaching(prep, base, base)).toBe(0);
    // +1 on class 2 everywhere: right on 3 samples of 9, wrong on 6
    expect(rootTeaching(prep, base, moved((_, c) => (c === 2 ? 1 : 0)))).toBeCloseTo(0, 12);
    // +1 on each sample's true label: 1 − 1/3 per sample
    expect(rootTeaching(prep, base, moved((s, c) => (c === s % 3 ? 1 : 0)))).toBeCloseTo(2 / 3, 12);
    // +1 on a wrong label (the next class): −1/3 per sample
    expect(rootTeaching(prep, base, moved((s, c) => (c === (s + 1) % 3 ? 1 : 0)))).toBeCloseTo(-1 / 3, 12);
    // the same as the double-centred log-probability change against the centred labels, over R
    const logits = moved(() => rng.normal());
    const logp = (z: Float64Array) => z.map((v, k) => {
      const row = z.subarray(k - (k % 3), k - (k % 3) + 3);
      const m = Math.max(...row);
      return v - m - Math.log(row.reduce((t, x) => t + Math.exp(x - m), 0));
    });
    const lp0 = logp(base);
    const d = logp(logits).map((v, k) => v - lp0[k]);
    let ip = 0;
    for (let s = 0; s < 9; s++) {
      const mean = (d[s * 3] + d[s * 3 + 1] + d[s * 3 + 2]) / 3;
      for (let c = 0; c < 3; c++) ip += (d[s * 3 + c] - mean) * ((c === s % 3 ? 1 : 0) - 1 / 3);
    }
    expect(rootTeaching(prep, base, logits)).toBeCloseTo(ip / 9, 12);
  });
});
