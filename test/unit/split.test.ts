import { describe, expect, it } from 'vitest';
import { ErrorCode, isBflError } from '../../src/core/errors.ts';
import { Rng } from '../../src/core/random.ts';
import { DEFAULT_MODEL, type ModelSpec, initParams, paramCount } from '../../src/learn/model.ts';
import { ModelRuntime } from '../../src/learn/runtime.ts';
import { SplitRuntime, bodyParamCount, checkCut, cutWidth, headParamCount, joinParams, splitParams } from '../../src/learn/split.ts';

function batch(spec: ModelSpec, b: number, seed: number) {
  const rng = new Rng(seed);
  const inp = spec.layers[0];
  const classes = spec.layers[spec.layers.length - 1];
  const x = Float64Array.from({ length: b * inp }, () => rng.normal());
  const y = new Float64Array(b * classes);
  for (let i = 0; i < b; i++) y[i * classes + rng.int(classes)] = 1;
  return { x, y };
}

/** Head forward + body step + head backward, as a client and its miner run them. */
async function splitPass(rt: SplitRuntime, p: Float64Array, x: Float64Array, y: Float64Array, b: number) {
  const { head, body } = splitParams(p, rt.spec, rt.cut);
  const a = Float64Array.from(await rt.headForward(head, x, b));
  const gBody = new Float64Array(body.length);
  const ga = new Float64Array(b * rt.width);
  const loss = await rt.bodyStep(body, a, y, b, gBody, ga);
  const gHead = new Float64Array(head.length);
  await rt.headBackward(head, x, ga, b, gHead);
  const grad = new Float64Array(p.length);
  grad.set(gHead, 0);
  grad.set(gBody, head.length);
  return { loss, grad, a, ga, head, body };
}

describe('split layout', () => {
  it('the default MLP cut after layer 1: head W1 b1 (157,000), body W2 b2 (2,010), smashed data 200 wide', () => {
    expect(headParamCount(DEFAULT_MODEL, 1)).toBe(157_000);
    expect(bodyParamCount(DEFAULT_MODEL, 1)).toBe(2010);
    expect(cutWidth(DEFAULT_MODEL, 1)).toBe(200);
    const p = initParams(DEFAULT_MODEL, 3);
    const { head, body } = splitParams(p, DEFAULT_MODEL, 1);
    expect(head[0]).toBe(p[0]);
    expect(body[0]).toBe(p[157_000]);
    expect(Buffer.from(joinParams(head, body).buffer)).toEqual(Buffer.from(p.buffer));
    expect(() => splitParams(p.subarray(1), DEFAULT_MODEL, 1)).toThrow(/expected 159010 parameters/);
  });

  it('a cut the model cannot take is a BAD_CONFIG error that names the allowed range', () => {
    const deep: ModelSpec = { kind: 'mlp', layers: [6, 5, 4, 3] };
    expect(() => checkCut(deep, 2)).not.toThrow();
    for (const [spec, cut] of [
      [DEFAULT_MODEL, 0],
      [DEFAULT_MODEL, 2],
      [deep, 3],
      [deep, 1.5],
      [{ kind: 'mlp', layers: [784, 10] }, 1],
    ] as [ModelSpec, number][]) {
      let err: unknown;
      try {
        SplitRuntime.create(spec, cut);
      } catch (e) {
        err = e;
      }
      expect(isBflError(err, ErrorCode.BAD_CONFIG), `cut ${cut} of ${spec.layers.join('-')}`).toBe(true);
      expect((err as Error).message).toMatch(/number of dense layers on the client/);
    }
  });
});

describe('split graphs', () => {
  for (const [layers, cut] of [
    [[5, 4, 3], 1],
    [[6, 5, 4, 3], 1],
    [[6, 5, 4, 3], 2],
  ] as [number[], number][]) {
    const spec: ModelSpec = { kind: 'mlp', layers };
    it(`MLP ${layers.join('-')} cut ${cut}: head + body give the whole model's loss and gradients, and the cut gradient matches finite differences`, async () => {
      const [rt, whole] = await Promise.all([SplitRuntime.create(spec, cut, { elem: 'double' }), ModelRuntime.create(spec, { elem: 'double' })]);
      try {
        const rng = new Rng(11);
        const p = Float64Array.from(initParams(spec, 3), (v) => v + 0.2 * rng.normal());
        const { x, y } = batch(spec, 5, 12);
        const ref = new Float64Array(p.length);
        const refLoss = await whole.trainStep(p, x, y, 5, ref);
        const s = await splitPass(rt, p, x, y, 5);
        expect(Math.abs(s.loss - refLoss)).toBeLessThan(1e-13);
        for (let k = 0; k < p.length; k++) expect(Math.abs(s.grad[k] - ref[k]), `parameter ${k}`).toBeLessThan(1e-13);

        // the miner's answer ga = d loss / d a, checked against the body loss it computes
        const scratch = new Float64Array(s.body.length);
        const scratchGa = new Float64Array(s.a.length);
        const h = 1e-6;
        for (let k = 0; k < s.a.length; k++) {
          const a = Float64Array.from(s.a);
          a[k] += h;
          const up = await rt.bodyStep(s.body, a, y, 5, scratch, scratchGa);
          a[k] -= 2 * h;
          const down = await rt.bodyStep(s.body, a, y, 5, scratch, scratchGa);
          const fd = (up - down) / (2 * h);
          expect(Math.abs(fd - s.ga[k]), `activation ${k}`).toBeLessThan(1e-7 + 1e-5 * Math.abs(fd));
        }
        // every head and body parameter against finite differences of the split pass itself
        for (let k = 0; k < p.length; k++) {
          const q = Float64Array.from(p);
          q[k] += h;
          const up = (await splitPass(rt, q, x, y, 5)).loss;
          q[k] -= 2 * h;
          const down = (await splitPass(rt, q, x, y, 5)).loss;
          const fd = (up - down) / (2 * h);
          expect(Math.abs(fd - s.grad[k]), `parameter ${k}`).toBeLessThan(1e-7 + 1e-5 * Math.abs(fd));
        }
      } finally {
        await Promise.all([rt.close(), whole.close()]);
      }
    });
  }

  it('the fused SGD steps are w − η g on each side, with the cut gradient taken before the update', async () => {
    const spec: ModelSpec = { kind: 'mlp', layers: [6, 5, 4, 3] };
    const rt = SplitRuntime.create(spec, 2, { elem: 'double' });
    const p = Float64Array.from(initParams(spec, 5));
    const { x, y } = batch(spec, 4, 9);
    const s = await splitPass(rt, p, x, y, 4);
    const nextBody = new Float64Array(s.body.length);
    const ga = new Float64Array(s.ga.length);
    expect(await rt.bodySgdStep(s.body, s.a, y, 4, 0.1, nextBody, ga)).toBe(s.loss);
    expect(Array.from(ga)).toEqual(Array.from(s.ga));
    for (let k = 0; k < s.body.length; k++) expect(nextBody[k]).toBeCloseTo(s.body[k] - 0.1 * s.grad[s.head.length + k], 14);
    const nextHead = new Float64Array(s.head.length);
    await rt.headSgdStep(s.head, x, ga, 4, 0.1, nextHead);
    for (let k = 0; k < s.head.length; k++) expect(nextHead[k]).toBeCloseTo(s.head[k] - 0.1 * s.grad[k], 14);
    await rt.close();
  });

  it('float32 on the default model: split and whole agree to float rounding', async () => {
    const spec = DEFAULT_MODEL;
    const [rt, whole] = await Promise.all([SplitRuntime.create(spec), ModelRuntime.create(spec)]);
    const p = initParams(spec, 1);
    const rng = new Rng(2);
    const b = 8;
    const x = Float32Array.from({ length: b * 784 }, () => rng.float());
    const y = new Float32Array(b * 10);
    for (let i = 0; i < b; i++) y[i * 10 + (i % 10)] = 1;
    const ref = new Float32Array(paramCount(spec));
    const refLoss = await whole.trainStep(p, x, y, b, ref);
    const { head, body } = splitParams(p, spec, 1);
    const a = await rt.headForward(head, x, b, new Float32Array(b * 200));
    const gb = new Float32Array(body.length);
    const ga = new Float32Array(b * 200);
    const loss = await rt.bodyStep(body, a, y, b, gb, ga);
    const gh = new Float32Array(head.length);
    await rt.headBackward(head, x, ga, b, gh);
    expect(loss).toBeCloseTo(refLoss, 5);
    const g = joinParams(gh, gb);
    let maxRef = 0;
    for (const v of ref) maxRef = Math.max(maxRef, Math.abs(v));
    for (let k = 0; k < g.length; k++) expect(Math.abs(g[k] - ref[k])).toBeLessThan(1e-5 * (1 + maxRef));
    await expect(rt.bodyStep(head, a, y, b, gb, ga)).rejects.toThrow(/expected 2010 body parameters/);
    await Promise.all([rt.close(), whole.close()]);
  });
});
