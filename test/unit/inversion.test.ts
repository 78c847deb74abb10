import { describe, expect, it } from 'vitest';
import { ErrorCode, isBflError } from '../../src/core/errors.ts';
import { Rng } from '../../src/core/random.ts';
import { dlgObjective, mlp1Gradient, mlp1Of, mse, runInversion, scoreBatch, smashedObjective, ssim } from '../../src/experiments/inversion.ts';
import { type ModelSpec, initParams } from '../../src/learn/model.ts';
import { ModelRuntime } from '../../src/learn/runtime.ts';
import { cli } from '../helpers/cli.ts';

const spec: ModelSpec = { kind: 'mlp', layers: [6, 5, 3] };

function setup(seed: number) {
  const rng = new Rng(seed);
  // perturbed so that no ReLU input sits near 0 and the biases matter
  const params = Float64Array.from(initParams(spec, seed), (v) => v + 0.3 * rng.normal());
  const m = mlp1Of(spec, params);
  const B = 2;
  const x = Float64Array.from({ length: B * 6 }, () => rng.float());
  const logits = Float64Array.from({ length: B * 3 }, () => rng.normal());
  const y = softmaxRows(logits, 3);
  return { params, m, B, x, y, rng };
}

function softmaxRows(l: Float64Array, C: number): Float64Array {
  const y = new Float64Array(l.length);
  for (let b = 0; b < l.length / C; b++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += y[b * C + c] = Math.exp(l[b * C + c]);
    for (let c = 0; c < C; c++) y[b * C + c] /= s;
  }
  return y;
}

describe('the hand-written MLP gradients of the inversion attack', () => {
  it('the float64 gradient is the product model\'s (the ONNX train graph)', async () => {
    const { params, m, B, x, rng } = setup(3);
    const y = new Float64Array(B * 3);
    for (let b = 0; b < B; b++) y[b * 3 + rng.int(3)] = 1;
    const rt = await ModelRuntime.create(spec, { elem: 'double' });
    const ref = new Float64Array(params.length);
    await rt.trainStep(params, x, y, B, ref);
    await rt.close();
    const g = mlp1Gradient(m, x, y, B);
    for (let k = 0; k < g.length; k++) expect(Math.abs(g[k] - ref[k]), `parameter ${k}`).toBeLessThan(1e-14);
  });

  it('DLG\'s objective: its gradient in the dummy images and soft labels matches central finite differences', () => {
    const { m, B, x, y, rng } = setup(5);
    const target = mlp1Gradient(m, Float64Array.from(x, (v) => 1 - v), softmaxRows(Float64Array.from({ length: 6 }, () => rng.normal()), 3), B);
    const r = dlgObjective(m, x, y, B, target);
    const h = 1e-6;
    const at = (xx: Float64Array, yy: Float64Array) => dlgObjective(m, xx, yy, B, target).value;
    for (let k = 0; k < x.length; k++) {
      const [up, down] = [Float64Array.from(x), Float64Array.from(x)];
      up[k] += h;
      down[k] -= h;
      const fd = (at(up, y) - at(down, y)) / (2 * h);
      expect(Math.abs(fd - r.dx[k]), `pixel ${k}`).toBeLessThan(1e-7 + 1e-5 * Math.abs(fd));
    }
    for (let k = 0; k < y.length; k++) {
      const [up, down] = [Float64Array.from(y), Float64Array.from(y)];
      up[k] += h;
      down[k] -= h;
      const fd = (at(x, up) - at(x, down)) / (2 * h);
      expect(Math.abs(fd - r.dy[k]), `label ${k}`).toBeLessThan(1e-7 + 1e-5 * Math.abs(fd));
    }
    expect(r.value).toBeGreaterThan(0);
    expect(dlgObjective(m, x, y, B, mlp1Gradient(m, x, y, B)).value).toBe(0);
  });

  it('the smashed-data objective: its gradient matches central finite differences', () => {
    const { m, B, x, rng } = setup(7);
    const a = Float64Array.from({ length: B * 5 }, () => Math.max(0, rng.normal()));
    const r = smashedObjective(m, x, a, B);
    const h = 1e-6;
    for (let k = 0; k < x.length; k++) {
      const [up, down] = [Float64Array.from(x), Float64Array.from(x)];
      up[k] += h;
      down[k] -= h;
      const fd = (smashedObjective(m, up, a, B).value - smashedObjective(m, down, a, B).value) / (2 * h);
      expect(Math.abs(fd - r.dx[k]), `pixel ${k}`).toBeLessThan(1e-7 + 1e-5 * Math.abs(fd));
    }
  });

  it('only a one-hidden-layer MLP is accepted, with a BAD_CONFIG error', () => {
    let err: unknown;
    try {
      mlp1Of({ kind: 'mlp', layers: [6, 5, 4, 3] }, new Float64Array(100));
    } catch (e) {
      err = e;
    }
    expect(isBflError(err, ErrorCode.BAD_CONFIG)).toBe(true);
  });
});

describe('reconstruction scores', () => {
  it('SSIM is 1 for the same image, lower for a shifted one, near 0 against noise; MSE is the mean squared error', () => {
    const rng = new Rng(1);
    const img = new Float64Array(784);
    for (let i = 6; i < 22; i++) for (let j = 10; j < 18; j++) img[i * 28 + j] = 1;
    const shifted = new Float64Array(784);
    for (let i = 6; i < 22; i++) for (let j = 12; j < 20; j++) shifted[i * 28 + j] = 1;
    const noise = Float64Array.from({ length: 784 }, () => rng.float());
    expect(ssim(img, img)).toBeCloseTo(1, 12);
    expect(ssim(img, shifted)).toBeLessThan(0.8);
    expect(ssim(img, shifted)).toBeGreaterThan(ssim(img, noise));
    expect(Math.abs(ssim(img, noise))).toBeLessThan(0.1);
    expect(mse(img, shifted)).toBeCloseTo((2 * 2 * 16) / 784, 12);
  });

  it('a batch is scored in the order that fits best', () => {
    const a = Float64Array.from({ length: 2 * 784 }, (_, k) => (k < 784 ? (k % 7) / 7 : (k % 5) / 5));
    const swapped = new Float64Array(2 * 784);
    swapped.set(a.subarray(784), 0);
    swapped.set(a.subarray(0, 784), 784);
    const s = scoreBatch(a, swapped, 2, 784);
    expect(s.mse).toEqual([0, 0]);
    expect(s.ssim.map((v) => Number(v.toFixed(12)))).toEqual([1, 1]);
    expect(s.order).toEqual([1, 0]);
  });
});

describe('the attack on one MNIST image', () => {
  it('recovers the image from a federated update (DLG and the closed form), not from smashed data through a guessed head', async () => {
    const r = await runInversion({ dataset: 'mnist', batches: [1], images: 1, iterations: 150, lr: 0.05, seed: 1, drift: [0, 20] });
    const b = r.byBatch['1'];
    // no attack: the mean training image
    expect(r.baseline.mse).toBeGreaterThan(0.02);
    expect(b.federatedAnalytic!.mse).toBeLessThan(1e-8);
    expect(b.federatedDlg.mse).toBeLessThan(r.baseline.mse / 5);
    expect(b.federatedLabelsRecovered).toBe(1);
    expect(b.splitGuessedHead.ssim).toBeLessThan(b.federatedDlg.ssim);
    expect(b.splitGuessedHead.ssim).toBeLessThan(0.5);
    // the genesis head, unchanged (0 steps) and after 20 steps of the client's training
    expect(Object.keys(r.splitGenesisHead)).toEqual(['0', '20']);
    for (const s of Object.values(r.splitGenesisHead)) expect(s.mse).toBeGreaterThan(0);
    expect(r.splitGenesisHead['0'].ssim).toBeGreaterThan(b.splitGuessedHead.ssim);
    // a wider first layer (--hidden): the attacked model and the smashed data are that wide
    const w = await runInversion({ dataset: 'mnist', batches: [1], images: 1, iterations: 20, lr: 0.05, seed: 1, drift: [0], hidden: 16 });
    expect(w.model).toEqual([784, 16, 10]);
    expect(w.splitGenesisHead['0'].mse).toBeGreaterThan(0);
  }, 60_000);
});

describe('bfl-node experiment inversion', () => {
  const run = (...args: string[]) => cli(['experiment', 'inversion', ...args]);

  it('bad flags exit 2 with one line that says what to use', async () => {
    const batches = await run('--batches', '1,7');
    expect(batches.code).toBe(2);
    expect(batches.err).toMatch(/--batches takes comma-separated batch sizes from 1 to 6, got "1,7"/);
    expect(batches.err).not.toMatch(/\n\s+at /);
    const images = await run('--batches', '4', '--images', '2');
    expect(images.code).toBe(2);
    expect(images.err).toMatch(/--images 2 is fewer than the largest batch 4/);
    const drift = await run('--drift', '0,-5');
    expect(drift.code).toBe(2);
    expect(drift.err).toMatch(/--drift takes comma-separated step counts from 0 to 1000000, got "0,-5"/);
  }, 60_000);
});
