import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultSplitExperiment, runSplitExperiment } from '../../src/experiments/split.ts';
import { tmpDir } from '../helpers/tmp.ts';

const BIN = new URL('../../bin/bfl-node.js', import.meta.url).pathname;

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('bfl-node experiment split', () => {
  it('bad flags exit 2 with one line that says what to use', () => {
    const sched = run('experiment', 'split', '--schedulers', 'nearest,hungarian');
    expect(sched.code).toBe(2);
    expect(sched.err).toMatch(/unknown scheduler hungarian: use nearest, greedy, decomposition, swap, d3qn or none/);
    expect(sched.err).not.toMatch(/\n\s+at /);
    expect(run('experiment', 'split', '--head-init', 'public').err).toMatch(/--head-init must be private or shared/);
    expect(run('experiment', 'split', '--budget', '2,1').err).toMatch(/--budget takes lo,hi/);
    const cut = run('experiment', 'split', '--cut', '2', '--rounds', '1', '--schedulers', 'none');
    expect(cut.code).not.toBe(0);
    expect(cut.err).toMatch(/split cut 2 for MLP 784-200-10: the cut is the number of dense layers on the client, an integer from 1 to 1/);
    expect(cut.err).not.toMatch(/\n\s+at /);
  });

  it('a short run: split, FedAvg and centralized learn, bytes are the tensors sent, budgets make clients quit', async () => {
    const out = await tmpDir('bfl-split-');
    const r = run('experiment', 'split', '--rounds', '3', '--clients', '4', '--miners', '2', '--samples', '20', '--schedulers', 'nearest,swap', '--budget', '0,0.5', '--eval-every', '3', '--out', out, '--json');
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out) as Record<string, unknown> & {
      accuracySplit: number;
      accuracySplitHeadsAveraged: number;
      accuracyFederated: number;
      accuracyCentralized: number;
      gapPoints: number;
      bytesPerClientRound: Record<'split' | 'splitHeadsAveraged' | 'federated', { up: number; down: number }>;
      schedulers: Record<string, { finalAccuracy: number; clientsAtEnd: number; clientRounds: number }>;
    };
    // 3 rounds of 20 samples (6 head steps) from an untrained model: clearly above chance (0.1)
    for (const k of ['accuracySplit', 'accuracySplitHeadsAveraged', 'accuracyFederated', 'accuracyCentralized'] as const) {
      expect(j[k], k).toBeGreaterThan(0.2);
      expect(j[k], k).toBeLessThanOrEqual(1);
    }
    expect(Math.abs(j.gapPoints - (j.accuracyFederated - j.accuracySplit) * 100)).toBeLessThanOrEqual(0.005 + 1e-9); // rounded to 0.01 points
    // 20 samples × (200 float32 activations + 1 label byte) up, 20 × 200 float32 gradients down
    expect(j.bytesPerClientRound.split).toEqual({ up: 20 * 801, down: 20 * 800 });
    // eq. (4): each client also sends its head (W1, b1) and gets the average back
    expect(j.bytesPerClientRound.splitHeadsAveraged).toEqual({ up: 20 * 801 + 157_000 * 4, down: 20 * 800 + 157_000 * 4 });
    expect(j.bytesPerClientRound.federated).toEqual({ up: 159_010 * 4, down: 159_010 * 4 });
    expect(Object.keys(j.schedulers)).toEqual(['nearest', 'swap']);
    for (const s of Object.values(j.schedulers)) {
      expect(s.finalAccuracy).toBeGreaterThan(0.1);
      // budgets U(0, 0.5) of 3 rounds: every client has quit before the end of round 2
      expect(s.clientRounds).toBeLessThan(3 * 4);
      expect(s.clientsAtEnd).toBeLessThan(4);
    }
    expect(j).not.toHaveProperty('curves');
    const full = JSON.parse(await readFile(join(out, 'split.json'), 'utf8')) as { curves: Record<string, { round: number[]; testAccuracy: number[] }> };
    expect(Object.keys(full.curves)).toEqual(['centralized', 'federated', 'split', 'split/heads-averaged', 'split/nearest', 'split/swap']);
    expect(full.curves.split.round).toEqual([3]);
    for (const f of ['split-rounds.csv', 'split-fig10-loss.png', 'split-fig11-accuracy.svg', 'split-vs-federated.png']) expect(existsSync(join(out, f)), f).toBe(true);
  }, 120_000);

  it('one client, one miner, one shared head averaged without noise: split learning is FedAvg, step for step', async () => {
    // the body step's cut gradient and the head step together are the whole model's SGD step,
    // and FedAvg over one client is that client's SGD: the two runs must agree to float rounding
    const r = await runSplitExperiment({ ...defaultSplitExperiment, rounds: 3, clients: 1, miners: 1, samplesPerRound: 30, schedulers: [], headInit: 'shared', headShare: 1, headNoise: 0, evalEvery: 1, out: await tmpDir('bfl-split-') });
    const [split, fed] = [r.curves.split, r.curves.federated];
    expect(split.round).toEqual([1, 2, 3]);
    for (let i = 0; i < 3; i++) {
      expect(Math.abs(split.trainLoss[i] - fed.trainLoss[i]), `round ${i + 1} train loss`).toBeLessThan(1e-5);
      expect(Math.abs(split.testLoss[i] - fed.testLoss[i]), `round ${i + 1} test loss`).toBeLessThan(1e-5);
    }
    expect(split.testLoss[2]).toBeLessThan(split.testLoss[0]);
    // with private heads (each client its own draw) the runs differ
    const p = await runSplitExperiment({ ...defaultSplitExperiment, rounds: 1, clients: 1, miners: 1, samplesPerRound: 30, schedulers: [], evalEvery: 1, out: await tmpDir('bfl-split-') });
    expect(Math.abs(p.curves.split.trainLoss[0] - p.curves.federated.trainLoss[0])).toBeGreaterThan(1e-3);
  }, 60_000);
});
