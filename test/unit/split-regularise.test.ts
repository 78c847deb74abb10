import { describe, expect, it } from 'vitest';
import { ErrorCode, isBflError } from '../../src/core/errors.ts';
import { Rng } from '../../src/core/random.ts';
import { Batcher, defaultSplitExperiment, runSplitExperiment } from '../../src/experiments/split.ts';
import { NO_AUGMENT, augmentImage, drawKey, drawOf, imageSide, parseAugment, rotateTranslate, translate } from '../../src/learn/augment.ts';
import { defaultSplitConfig } from '../../src/config/network.ts';
import { loadDataset, subset } from '../../src/learn/data.ts';
import { type ModelSpec, initParams } from '../../src/learn/model.ts';
import { ModelRuntime } from '../../src/learn/runtime.ts';
import { SplitRuntime, applyMask, cutDropoutMask, splitParams, stepThroughCut } from '../../src/learn/split.ts';
import { writeIdxImages } from '../helpers/idx.ts';
import { tmpDir } from '../helpers/tmp.ts';

const SIDE = 28;
/** A 28×28 image whose every pixel is distinct: pixel (x, y) = 1 + y·28 + x. */
const ramp = () => Float32Array.from({ length: SIDE * SIDE }, (_, k) => 1 + k);

describe('augmentation (experiment split --augment)', () => {
  it('a translation moves every pixel by (dx, dy) and fills what comes in from outside with 0', () => {
    const src = ramp();
    const out = new Float32Array(SIDE * SIDE);
    for (const [dx, dy] of [[0, 0], [2, 0], [0, -2], [1, -1], [-2, 2], [28, 0], [-30, 5]]) {
      translate(src, SIDE, dx, dy, out);
      for (let y = 0; y < SIDE; y++)
        for (let x = 0; x < SIDE; x++) {
          const [sx, sy] = [x - dx, y - dy];
          const want = sx >= 0 && sx < SIDE && sy >= 0 && sy < SIDE ? src[sy * SIDE + sx] : 0;
          expect(out[y * SIDE + x], `(${x}, ${y}) shifted by (${dx}, ${dy})`).toBe(want);
        }
    }
  });

  it('a rotation by 0 is the translation exactly; by 90° it maps pixels as a quarter turn about the centre', () => {
    const src = ramp();
    const a = new Float32Array(SIDE * SIDE);
    const b = new Float32Array(SIDE * SIDE);
    translate(src, SIDE, 1, -2, a);
    rotateTranslate(src, SIDE, 0, 1, -2, b);
    expect(b).toEqual(a);
    rotateTranslate(src, SIDE, Math.PI / 2, 0, 0, b);
    // inverse map of a quarter turn: output (x, y) reads source (y, 27 − x)
    for (let y = 0; y < SIDE; y++) for (let x = 0; x < SIDE; x++) expect(b[y * SIDE + x]).toBeCloseTo(src[(SIDE - 1 - x) * SIDE + y], 3);
  });

  it('draws are seeded by (seed, client, round, position), span −K..K, and a new key gives a new draw', () => {
    const spec = parseAugment('shift:2');
    expect(drawOf(spec, drawKey(1, 2, 3, 4))).toEqual(drawOf(spec, drawKey(1, 2, 3, 4)));
    const seen = new Set<string>();
    let moved = 0;
    for (let k = 0; k < 500; k++) {
      const d = drawOf(spec, drawKey(1, 0xa0, 0, 0, k));
      expect(Math.abs(d.dx) <= 2 && Math.abs(d.dy) <= 2 && d.angle === 0).toBe(true);
      seen.add(`${d.dx},${d.dy}`);
      if (d.dx || d.dy) moved++;
    }
    expect(seen.size).toBe(25); // every shift of the 5 × 5 grid occurs
    expect(moved).toBeGreaterThan(400); // 24 of 25 move the image
    const r = drawOf(parseAugment('shift:1,rotate:10'), drawKey(5));
    expect(Math.abs(r.angle)).toBeLessThanOrEqual((10 * Math.PI) / 180);
    expect(r.angle).not.toBe(0);
  });

  it('the batcher augments images, keeps labels, and gives the same batch for the same key (seeded)', () => {
    const { train } = loadDataset('mnist');
    const data = subset(train, [0, 1, 2, 3, 4, 5, 6, 7]);
    const o = { augment: parseAugment('shift:2'), seed: 9 };
    const b1 = new Batcher(784, 10, 8, o);
    const b2 = new Batcher(784, 10, 8, o);
    const plain = new Batcher(784, 10, 8);
    const idx = [3, 1, 4, 1, 5, 0, 2, 6];
    b1.fill(data, idx, 2, 7, 30);
    b2.fill(data, idx, 2, 7, 30);
    plain.fill(data, idx, 2, 7, 30);
    expect(b2.x).toEqual(b1.x);
    expect(b1.y).toEqual(plain.y);
    expect(b1.labels).toEqual(plain.labels);
    expect(Array.from(b1.labels)).toEqual(idx.map((j) => data.y[j]));
    const want = new Float32Array(784);
    idx.forEach((j, i) => {
      augmentImage(data.x.subarray(j * 784, (j + 1) * 784), SIDE, drawOf(o.augment, drawKey(9, 0xa0, 2, 7, 30 + i)), want);
      expect(b1.x.subarray(i * 784, (i + 1) * 784), `row ${i}`).toEqual(want);
    });
    expect(b1.x).not.toEqual(plain.x);
    // another round (or seed) draws other shifts
    b2.fill(data, idx, 2, 8, 30);
    expect(b2.x).not.toEqual(b1.x);
  });

  it('a bad --augment is a BAD_CONFIG error that says what to use', () => {
    expect(parseAugment('none')).toEqual({ shift: 0, rotate: 0 });
    expect(parseAugment('shift:1,rotate:7.5')).toEqual({ shift: 1, rotate: 7.5 });
    for (const bad of ['shift', 'shift:1.5', 'shift:11', 'rotate:90', 'flip:1', 'shift:-1']) {
      let err: unknown;
      try {
        parseAugment(bad);
      } catch (e) {
        err = e;
      }
      expect(isBflError(err, ErrorCode.BAD_CONFIG), bad).toBe(true);
      expect((err as Error).message).toMatch(/use none, shift:K .* or shift:K,rotate:D/);
    }
  });
});

describe('dropout at the cut (experiment split --cut-dropout)', () => {
  it('the mask keeps each activation with probability 1 − p, scaled by 1/(1 − p); seeded; p = 0 keeps all', () => {
    const out = new Float32Array(20_000);
    const m = cutDropoutMask(new Rng(3), 0.3, 100, 200, out);
    expect(m.length).toBe(20_000);
    const dropped = m.filter((v) => v === 0).length;
    expect(m.every((v) => v === 0 || v === Math.fround(1 / 0.7))).toBe(true);
    expect(Math.abs(dropped / 20_000 - 0.3)).toBeLessThan(0.02);
    expect(Array.from(cutDropoutMask(new Rng(3), 0.3, 100, 200, new Float32Array(20_000)))).toEqual(Array.from(m));
    expect(cutDropoutMask(new Rng(3), 0, 10, 20, new Float32Array(200)).every((v) => v === 1)).toBe(true);
    expect(() => cutDropoutMask(new Rng(3), 1, 1, 1, out)).toThrow(/cut dropout 1: a rate in \[0, 1\)/);
  });

  const spec: ModelSpec = { kind: 'mlp', layers: [6, 5, 3] };
  const B = 4;
  const setup = async () => {
    const rt = SplitRuntime.create(spec, 1, { elem: 'double' });
    const rng = new Rng(21);
    const p = Float64Array.from(initParams(spec, 4), (v) => v + 0.3 * rng.normal());
    const x = Float64Array.from({ length: B * 6 }, () => rng.normal());
    const y = new Float64Array(B * 3);
    for (let i = 0; i < B; i++) y[i * 3 + rng.int(3)] = 1;
    return { rt, p, x, y };
  };
  /** The loss of the thinned network: body(mask ⊙ head(x)). */
  const maskedLoss = async (rt: SplitRuntime, p: Float64Array, x: Float64Array, y: Float64Array, mask: Float32Array | null) => {
    const { head, body } = splitParams(p, spec, 1);
    const a = Float64Array.from(await rt.headForward(head, x, B));
    if (mask) applyMask(a, mask);
    return rt.bodyStep(body, a, y, B, new Float64Array(body.length), new Float64Array(B * rt.width));
  };

  it('one step through the cut with a mask is SGD on the thinned network: forward masked, cut gradient masked (finite differences)', async () => {
    const { rt, p, x, y } = await setup();
    try {
      const mask = cutDropoutMask(new Rng(8), 0.4, B, 5, new Float32Array(B * 5));
      expect(mask.some((v) => v === 0) && mask.some((v) => v > 1)).toBe(true);
      const lr = 0.1;
      const next = new Float64Array(p.length);
      const { head, body } = splitParams(p, spec, 1);
      const q = splitParams(next, spec, 1);
      const loss = await stepThroughCut(rt, head, body, x, y, B, { head: lr, body: lr }, mask, q, { a: new Float64Array(B * 5), ga: new Float64Array(B * 5) });
      expect(loss).toBeCloseTo(await maskedLoss(rt, p, x, y, mask), 12);
      const h = 1e-6;
      let checked = 0;
      for (let k = 0; k < p.length; k++) {
        const plus = Float64Array.from(p);
        const minus = Float64Array.from(p);
        plus[k] += h;
        minus[k] -= h;
        const numeric = ((await maskedLoss(rt, plus, x, y, mask)) - (await maskedLoss(rt, minus, x, y, mask))) / (2 * h);
        expect((p[k] - next[k]) / lr, `parameter ${k}`).toBeCloseTo(numeric, 6);
        if (Math.abs(numeric) > 1e-4) checked++;
      }
      expect(checked).toBeGreaterThan(10);
      // a hidden unit dropped for every sample of the batch: its head weights do not move
      const all = new Float32Array(B * 5).fill(1);
      for (let i = 0; i < B; i++) all[i * 5 + 2] = 0;
      await stepThroughCut(rt, head, body, x, y, B, { head: lr, body: lr }, all, q, { a: new Float64Array(B * 5), ga: new Float64Array(B * 5) });
      for (let i = 0; i < 6; i++) expect(next[i * 5 + 2]).toBe(p[i * 5 + 2]); // W1[:, 2]
      expect(next[30 + 2]).toBe(p[30 + 2]); // b1[2]
      expect(next[0]).not.toBe(p[0]);
    } finally {
      await rt.close();
    }
  });

  it('without a mask the step through the cut is the whole model\'s SGD step', async () => {
    const { rt, p, x, y } = await setup();
    const whole = await ModelRuntime.create(spec, { elem: 'double' });
    try {
      const next = new Float64Array(p.length);
      const ref = new Float64Array(p.length);
      const { head, body } = splitParams(p, spec, 1);
      await stepThroughCut(rt, head, body, x, y, B, { head: 0.1, body: 0.1 }, null, splitParams(next, spec, 1), { a: new Float64Array(B * 5), ga: new Float64Array(B * 5) });
      await whole.sgdStep(p, x, y, B, 0.1, ref);
      for (let k = 0; k < p.length; k++) expect(next[k]).toBeCloseTo(ref[k], 12);
    } finally {
      await Promise.all([rt.close(), whole.close()]);
    }
  });
});

describe('regularisers in experiment split apply to every run alike', () => {
  const base = { ...defaultSplitExperiment, rounds: 2, clients: 1, miners: 1, samplesPerRound: 30, schedulers: [], evalEvery: 1, headsAveraged: false };
  it('one client, one miner, its head shared without noise: split is FedAvg step for step with the same shifted images and dropout masks', async () => {
    const shared = { ...base, headInit: 'shared' as const, headShare: 1, headClip: 1e6, headNoise: 0 };
    const r = await runSplitExperiment({ ...shared, augment: parseAugment('shift:2'), cutDropout: 0.3, splitAugment: parseAugment('shift:2'), splitCutDropout: 0.3, out: await tmpDir('bfl-split-reg-') });
    const plain = await runSplitExperiment({ ...shared, splitAugment: NO_AUGMENT, splitCutDropout: 0, out: await tmpDir('bfl-split-reg-') });
    expect(r.accuracyFederatedSplitRecipe).toBeNull(); // one recipe: no second FedAvg run
    expect(r.curves).not.toHaveProperty('federated/split-recipe');
    for (let i = 0; i < 2; i++) {
      expect(Math.abs(r.curves.split.trainLoss[i] - r.curves.federated.trainLoss[i]), `round ${i + 1} train loss`).toBeLessThan(1e-5);
      expect(Math.abs(r.curves.split.testLoss[i] - r.curves.federated.testLoss[i]), `round ${i + 1} test loss`).toBeLessThan(1e-5);
      // the regularisers changed the training (of every run)
      for (const run of ['split', 'federated', 'centralized']) expect(Math.abs(r.curves[run].trainLoss[i] - plain.curves[run].trainLoss[i]), `${run} round ${i + 1}`).toBeGreaterThan(1e-3);
    }
    expect(r.accuracySplitHeadsAveraged).toBe(r.accuracySplit); // the main run shares every round already
  }, 60_000);

  it("by default the split runs take the product's regularisers and FedAvg none; FedAvg with split's is the FedAvg run of that recipe", async () => {
    const one = { ...base, clients: 2, headsAveraged: false };
    const d = await runSplitExperiment({ ...one, out: await tmpDir('bfl-split-reg-') });
    expect(d.splitRecipe).toEqual({ augment: defaultSplitConfig.augment, cutDropout: defaultSplitConfig.cutDropout });
    expect(d.federatedRecipe).toEqual({ augment: 'none', cutDropout: 0 });
    // every run with split's recipe: its FedAvg is the default run's second FedAvg, bit for bit
    const alike = await runSplitExperiment({ ...one, augment: parseAugment(d.splitRecipe.augment), cutDropout: d.splitRecipe.cutDropout, out: await tmpDir('bfl-split-reg-') });
    expect(alike.accuracyFederatedSplitRecipe).toBeNull();
    expect(d.curves['federated/split-recipe']).toEqual(alike.curves.federated);
    expect(d.accuracyFederatedSplitRecipe).toBe(alike.accuracyFederated);
    expect(d.gapPointsSplitRecipe).toBeCloseTo((alike.accuracyFederated - d.accuracySplit) * 100, 1);
    // and the split run is alike's split run; without the regularisers it is another
    expect(d.curves.split).toEqual(alike.curves.split);
    const plain = await runSplitExperiment({ ...one, splitAugment: NO_AUGMENT, splitCutDropout: 0, out: await tmpDir('bfl-split-reg-') });
    expect(plain.curves.federated).toEqual(d.curves.federated);
    expect(Math.abs(plain.curves.split.trainLoss[0] - d.curves.split.trainLoss[0])).toBeGreaterThan(1e-3);
  }, 60_000);

  it('a recipe that augments on a data set of non-square samples is refused before any run, naming the flag', async () => {
    // an IDX data set of 2 × 3 images (6 values a sample): written here, 40 training and 10 test samples
    const dir = await tmpDir('bfl-split-idx-');
    await writeIdxImages(dir, { height: 2, width: 3, train: 40, test: 10 });
    const o = { ...base, clients: 2, dataset: `idx:${dir}`, hidden: [4], samplesPerRound: 10 };
    const refused = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e);
    for (const [more, flag] of [[{}, '--split-augment'], [{ splitAugment: NO_AUGMENT, augment: parseAugment('shift:1') }, '--augment']] as const) {
      const e = await refused(runSplitExperiment({ ...o, ...more, out: await tmpDir('bfl-split-reg-') }));
      expect(isBflError(e) && e.code).toBe(ErrorCode.BAD_CONFIG);
      expect((e as Error).message).toMatch(new RegExp(`^${flag} shift:1(,rotate:10)?: augmentation needs square images, but idx:.* samples are 2×3 images: use ${flag} none$`));
    }
    // 1 × 4 images have a square count of values (2²): the images' shape, not the count, decides
    const flat = await tmpDir('bfl-split-idx-');
    await writeIdxImages(flat, { height: 1, width: 4, train: 40, test: 10 });
    const e = await refused(runSplitExperiment({ ...o, dataset: `idx:${flat}`, out: await tmpDir('bfl-split-reg-') }));
    expect(isBflError(e) && e.code).toBe(ErrorCode.BAD_CONFIG);
    expect((e as Error).message).toMatch(/^--split-augment shift:1(,rotate:10)?: augmentation needs square images, but idx:.* samples are 1×4 images: use --split-augment none$/);
    // the shape as the loaders give it, kept by subsets; the learner's own check says the same
    expect(loadDataset(`idx:${flat}`).train.image).toEqual({ height: 1, width: 4 });
    expect(subset(loadDataset('mnist').train, [0, 1]).image).toEqual({ height: 28, width: 28 });
    expect(() => imageSide(4, { height: 1, width: 4 })).toThrow(/augmentation needs square images, but samples are 1×4 images: augment none/);
    expect(imageSide(4)).toBe(2);
    // without augmentation it runs
    const r = await runSplitExperiment({ ...o, splitAugment: NO_AUGMENT, out: await tmpDir('bfl-split-reg-') });
    expect(r.layers).toEqual([6, 4, 10]);
  }, 60_000);

  it('--no-heads-averaged skips that run and changes no other run, bit for bit', async () => {
    const a = await runSplitExperiment({ ...base, out: await tmpDir('bfl-split-reg-') });
    const b = await runSplitExperiment({ ...base, headsAveraged: true, out: await tmpDir('bfl-split-reg-') });
    expect(a.accuracySplitHeadsAveraged).toBeNull();
    expect(a.bytesPerClientRound.splitHeadsAveraged).toBeNull();
    expect(Object.keys(a.curves)).toEqual(['centralized', 'federated', 'federated/split-recipe', 'split']);
    expect(b.accuracySplitHeadsAveraged).toBeGreaterThan(0.1);
    const { 'split/heads-averaged': _h, ...rest } = b.curves;
    expect(a.curves).toEqual(rest);
  }, 60_000);
});
