/** The retrained Shapley game of `experiment rewards --shapley retrain` (issue 11). */
import { describe, expect, it } from 'vitest';
import { defaultLearningConfig } from '../../src/config/network.ts';
import { attackLabels, parseAttack } from '../../src/experiments/attacks.ts';
import { shapleyValues } from '../../src/experiments/report.ts';
import { coalitionValues } from '../../src/experiments/shapley.ts';
import { loadDataset } from '../../src/learn/data.ts';
import { initParams } from '../../src/learn/model.ts';
import { ModelRuntime } from '../../src/learn/runtime.ts';
import { evaluate } from '../../src/learn/train.ts';

describe('retrained Shapley game', () => {
  it('the empty coalition is the genesis model; clean data are worth more than random labels, fewer samples less than more', async () => {
    const data = loadDataset('mnist');
    const learning = { ...defaultLearningConfig, partition: { kind: 'iid' as const }, E: 1 };
    // client 1 clean, client 2 all labels random, client 3 a fifth of each batch
    const v = await coalitionValues({
      data,
      clients: 3,
      learning,
      rounds: 2,
      clientData: (c) => (c === 1 ? { labels: (y, k) => attackLabels(parseAttack('noisy-labels:1'), y, k) } : c === 2 ? { share: 0.2 } : {}),
    });
    const rt = await ModelRuntime.create({ kind: 'mlp', layers: learning.layers }, { threads: 1 });
    try {
      expect(v.accuracy[0]).toBe((await evaluate(rt, initParams({ kind: 'mlp', layers: learning.layers }, learning.modelSeed), data.test)).accuracy);
    } finally {
      await rt.close();
    }
    expect(v.accuracy[0b001]).toBeGreaterThan(v.accuracy[0b010] + 0.1);
    expect(v.loss[0b001]).toBeLessThan(v.loss[0b100]);
    const phi = shapleyValues(3, v.accuracy);
    expect(phi[0]).toBeGreaterThan(phi[1]);
  });
});
