import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultSplitExperiment, runSplitExperiment } from '../../src/experiments/split.ts';
import { defaultSplitConfig } from '../../src/config/network.ts';
import { NO_AUGMENT } from '../../src/learn/augment.ts';

const NO_REGULARISER = { splitAugment: NO_AUGMENT, splitCutDropout: 0 };
import { headShareAccount } from '../../src/learn/privacy.ts';
import { cli } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';

const BIN = new URL('../../bin/bfl-node.js', import.meta.url).pathname;

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('bfl-node experiment split', () => {
  it('bad flags exit 2 with one line that says what to use', async () => {
    // one through a real process: its exit code and its whole stderr, one line
    const sched = run('experiment', 'split', '--schedulers', 'nearest,hungarian');
    expect(sched.code).toBe(2);
    expect(sched.err).toMatch(/unknown scheduler hungarian: use nearest, greedy, decomposition, swap, d3qn or none/);
    expect(sched.err.trim().split('\n')).toHaveLength(1);
    expect(sched.err).not.toMatch(/\n\s+at /);
    // the rest through the CLI in this process
    expect((await cli(['experiment', 'split', '--head-init', 'public'])).err).toMatch(/--head-init must be private or shared/);
    expect((await cli(['experiment', 'split', '--budget', '2,1'])).err).toMatch(/--budget takes lo,hi/);
    const augment = await cli(['experiment', 'split', '--augment', 'shift:20']);
    expect(augment.code).toBe(2);
    expect(augment.err).toMatch(/--augment "shift:20": use none, shift:K \(whole pixels, 0-10\), rotate:D \(degrees, 0-45\) or shift:K,rotate:D/);
    expect(augment.err).not.toMatch(/\n\s+at /);
    const splitAugment = await cli(['experiment', 'split', '--split-augment', 'blur:1']);
    expect(splitAugment.code).toBe(2);
    expect(splitAugment.err).toMatch(/--split-augment "blur:1": use none, shift:K/);
    const splitDropout = await cli(['experiment', 'split', '--split-cut-dropout', '0.95']);
    expect(splitDropout.code).toBe(2);
    expect(splitDropout.err).toMatch(/--split-cut-dropout/);
    expect((await cli(['experiment', 'split', '--cut-dropout', '1'])).err).toMatch(/--cut-dropout must be a number from 0 to 0.95, got "1"/);
    const variant = await cli(['experiment', 'split', '--variants', 'private-genesis,bigger-heads']);
    expect(variant.code).toBe(2);
    expect(variant.err).toMatch(/unknown variant bigger-heads: use private-own-init, .*, all or none/);
    const cut = await cli(['experiment', 'split', '--cut', '2', '--rounds', '1', '--schedulers', 'none']);
    expect(cut.code).not.toBe(0);
    expect(cut.err).toMatch(/split cut 2 for MLP 784-200-10: the cut is the number of dense layers on the client, an integer from 1 to 1/);
    expect(cut.err).not.toMatch(/\n\s+at /);
    const hidden = await cli(['experiment', 'split', '--hidden', '64,0']);
    expect(hidden.code).toBe(2);
    expect(hidden.err).toMatch(/--hidden takes a comma-separated list of layer widths, integers from 1 to 100000, got "64,0"/);
    // another model takes the cuts its hidden layers allow
    const deeper = await cli(['experiment', 'split', '--hidden', '64,32', '--cut', '3', '--rounds', '1', '--schedulers', 'none']);
    expect(deeper.code).not.toBe(0);
    expect(deeper.err).toMatch(/split cut 3 for MLP 784-64-32-10: .* an integer from 1 to 2/);
  }, 120_000); // twelve calls of the CLI in this process (a spawned CLI each took 1-2 s, 140 s at load average ~12)

  it('a short run: split, FedAvg and centralized learn, bytes are the tensors sent, budgets make clients quit', async () => {
    const out = await tmpDir('bfl-split-');
    const r = run('experiment', 'split', '--rounds', '3', '--clients', '4', '--miners', '2', '--samples', '20', '--schedulers', 'nearest,swap', '--budget', '0,0.5', '--eval-every', '3', '--variants', 'none', '--out', out, '--json');
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out) as Record<string, unknown> & {
      accuracySplit: number;
      accuracySplitHeadsAveraged: number;
      accuracyFederated: number;
      accuracyCentralized: number;
      gapPoints: number;
      bytesPerClientRound: Record<'split' | 'splitHeadsAveraged' | 'federated', { up: number; down: number }>;
      schedulers: Record<string, { finalAccuracy: number; clientsAtEnd: number; clientRounds: number }>;
      head: Record<string, unknown>;
      privacy: unknown;
      variants: Record<string, unknown>;
      layers: number[];
      splitRecipe: unknown;
      federatedRecipe: unknown;
      accuracyFederatedSplitRecipe: number;
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
    // the default heads: the genesis head, private (no eq. 4, so no privacy account)
    expect(j.head).toMatchObject({ headInit: 'shared', headShare: 0 });
    expect(j.privacy).toBeNull();
    expect(j.variants).toEqual({});
    expect(j.layers).toEqual([784, 200, 10]);
    expect(j).not.toHaveProperty('curves');
    const full = JSON.parse(await readFile(join(out, 'split.json'), 'utf8')) as { curves: Record<string, { round: number[]; testAccuracy: number[] }> };
    // the split runs take the product's regularisers, FedAvg none, and FedAvg runs once more with split's
    expect(j.splitRecipe).toEqual({ augment: defaultSplitConfig.augment, cutDropout: defaultSplitConfig.cutDropout });
    expect(j.federatedRecipe).toEqual({ augment: 'none', cutDropout: 0 });
    expect(j.accuracyFederatedSplitRecipe).toBeGreaterThan(0.2);
    expect(Object.keys(full.curves)).toEqual(['centralized', 'federated', 'federated/split-recipe', 'split', 'split/heads-averaged', 'split/nearest', 'split/swap']);
    expect(full.curves.split.round).toEqual([3]);
    for (const f of ['split-rounds.csv', 'split-fig10-loss.png', 'split-fig11-accuracy.svg', 'split-vs-federated.png']) expect(existsSync(join(out, f)), f).toBe(true);
  }, 120_000);

  it('one client, one miner, one shared head averaged without noise: split learning is FedAvg, step for step', async () => {
    // the body step's cut gradient and the head step together are the whole model's SGD step,
    // and FedAvg over one client is that client's SGD: the two runs must agree to float rounding
    // (the same recipe in both: no regulariser)
    const r = await runSplitExperiment({ ...defaultSplitExperiment, ...NO_REGULARISER, rounds: 3, clients: 1, miners: 1, samplesPerRound: 30, schedulers: [], headInit: 'shared', headShare: 1, headClip: 1e6, headNoise: 0, evalEvery: 1, out: await tmpDir('bfl-split-') });
    const [split, fed] = [r.curves.split, r.curves.federated];
    expect(split.round).toEqual([1, 2, 3]);
    for (let i = 0; i < 3; i++) {
      expect(Math.abs(split.trainLoss[i] - fed.trainLoss[i]), `round ${i + 1} train loss`).toBeLessThan(1e-5);
      expect(Math.abs(split.testLoss[i] - fed.testLoss[i]), `round ${i + 1} test loss`).toBeLessThan(1e-5);
    }
    expect(split.testLoss[2]).toBeLessThan(split.testLoss[0]);
    // with private heads (each client its own draw) the runs differ
    const p = await runSplitExperiment({ ...defaultSplitExperiment, ...NO_REGULARISER, rounds: 1, clients: 1, miners: 1, samplesPerRound: 30, schedulers: [], headInit: 'private', evalEvery: 1, out: await tmpDir('bfl-split-') });
    expect(Math.abs(p.curves.split.trainLoss[0] - p.curves.federated.trainLoss[0])).toBeGreaterThan(1e-3);
    // another model (--hidden) is every run's model: cut after its second layer, still FedAvg step for step
    const d = await runSplitExperiment({ ...defaultSplitExperiment, ...NO_REGULARISER, rounds: 2, clients: 1, miners: 1, samplesPerRound: 30, schedulers: [], hidden: [16, 8], cut: 2, headInit: 'shared', headShare: 1, headClip: 1e6, headNoise: 0, evalEvery: 1, out: await tmpDir('bfl-split-') });
    expect(d.layers).toEqual([784, 16, 8, 10]);
    expect([d.headParams, d.bodyParams]).toEqual([784 * 16 + 16 + 16 * 8 + 8, 8 * 10 + 10]);
    for (let i = 0; i < 2; i++) expect(Math.abs(d.curves.split.testLoss[i] - d.curves.federated.testLoss[i]), `round ${i + 1} test loss`).toBeLessThan(1e-5);
  }, 60_000);

  it('variants: eq. (4) every k rounds clips, counts its shares for (ε, δ) and its bytes; more local passes give FedAvg the same passes', async () => {
    const base = { ...defaultSplitExperiment, rounds: 4, clients: 2, miners: 1, samplesPerRound: 20, schedulers: [], evalEvery: 4, out: await tmpDir('bfl-split-') };
    // a tiny clip: a shared update moves the head by at most C, so after 2 shares it is within 2C of W_0^H
    const r = await runSplitExperiment({ ...base, headShare: 1, headShareEvery: 2, headClip: 1e-3, headNoise: 0, variants: ['genesis-epochs-5', 'private-genesis'] });
    const up = 20 * 801;
    const down = 20 * 800;
    // 2 shares in 4 rounds: half a head up and down per client-round on top of the batches
    expect(r.bytesPerClientRound.split).toEqual({ up: up + 157_000 * 2, down: down + 157_000 * 2 });
    expect(r.privacy).toMatchObject({ releases: 2, delta: 1e-5, epsilon: Infinity }); // no noise
    expect(r.head).toMatchObject({ headShareEvery: 2, headClip: 1e-3 });
    expect(r.curves.split.round).toEqual([4]);
    expect(r.sharedUpdateNorm!).toBeGreaterThan(1e-3);
    expect(r.headDrift).toBeLessThanOrEqual(2e-3 + 1e-6);
    const v = r.variants['private-genesis'];
    expect(v.privacy).toBeNull();
    expect(v.bytes).toEqual({ up, down });
    expect(v.headDrift).toBeGreaterThan(0.01); // a head that trains privately moves far further than 2C
    const e5 = r.variants['genesis-epochs-5'];
    expect(e5.epochs).toBe(5);
    expect(e5.bytes).toEqual({ up: 5 * up, down: 5 * down }); // each pass sends the smashed data again
    expect(r.curves['variant/genesis-epochs-5/federated'].round).toEqual([4]);
    expect(e5.accuracyFederated).not.toBe(r.accuracyFederated);
    expect(e5.gapPoints).toBeCloseTo((e5.accuracyFederated - e5.accuracy) * 100, 1);
    // the same run with noise: ε for 2 shares at z = 4 and the clipped drift bound
    const n = await runSplitExperiment({ ...base, headShare: 1, headShareEvery: 2, headClip: 1e-3, headNoise: 4, variants: [] });
    expect(n.privacy?.epsilon).toBeCloseTo(headShareAccount({ clip: 1e-3, noise: 4, releases: 2, delta: 1e-5 }).epsilon, 12);
    expect(n.privacy!.epsilon).toBeGreaterThan(0);
    expect(n.privacy!.epsilon).toBeLessThan(10);
  }, 60_000);
});
