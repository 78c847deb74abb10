/** The retrained Shapley game of `experiment rewards --shapley retrain` (issue 11). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultLearningConfig } from '../../src/config/network.ts';
import { attackLabels, parseAttack } from '../../src/experiments/attacks.ts';
import { shapleyValues } from '../../src/experiments/report.ts';
import { coalitionValues } from '../../src/experiments/shapley.ts';
import { loadDataset } from '../../src/learn/data.ts';
import { initParams } from '../../src/learn/model.ts';
import { ModelRuntime } from '../../src/learn/runtime.ts';
import { evaluate } from '../../src/learn/train.ts';
import { tmpDir } from '../helpers/tmp.ts';

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

describe('experiment rewards flags (issue 11)', () => {
  it('bad --sizes, --quality with --sizes, --shapley kinds and --retrained-from without retrain or with a missing or foreign file are one-line errors', async () => {
    const { cli } = await import('../helpers/cli.ts');
    const cases: [string[], RegExp][] = [
      [['--sizes', '1,0'], /--sizes takes comma-separated shares of the samples in \(0, 1\]/],
      [['--quality', '--sizes'], /give --quality or --sizes, not both/],
      [['--quality', '--shapley', 'exact'], /--shapley takes round, retrain or round,retrain/],
      [['--shapley', 'retrain'], /--shapley retrain needs --quality or --sizes/],
      [['--quality', '--shapley', 'round', '--retrained-from', 'x.json'], /--retrained-from needs --shapley retrain/],
    ];
    const dir = await tmpDir('bfl-retrained-');
    writeFileSync(join(dir, 'other.json'), JSON.stringify({ key: '{"clients":4}', accuracy: [], loss: [] }));
    cases.push([['--quality', '--shapley', 'retrain', '--retrained-from', join(dir, 'missing.json')], /cannot read the retrained coalition values .*missing\.json/]);
    cases.push([['--quality', '--shapley', 'retrain', '--retrained-from', join(dir, 'other.json')], /holds the retrained game of other settings/]);
    for (const [args, msg] of cases) {
      const r = await cli(['experiment', 'rewards', '--clients', '8', ...args]);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.err).toMatch(msg);
      expect(r.err).not.toMatch(/\n\s+at /);
    }
  });
});
