import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { cli } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';

const BIN = new URL('../../bin/bfl-node.js', import.meta.url).pathname;
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 300_000 });
// usage errors through the CLI in this process: a spawned CLI costs 1-2 s of start-up per case
const usage = async (...args: string[]) => (await cli(args)).code;

it('experiment centralized: 5 epochs of the default MLP on the embedded MNIST reach 0.92', () => {
  const r = run('experiment', 'centralized', '--json');
  expect(r.status, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout);
  expect(out).toMatchObject({ dataset: 'mnist', trainSamples: 8000, testSamples: 2000 });
  expect(out.testAccuracy).toBeGreaterThanOrEqual(0.92);
  expect(out.samplesPerSecond).toBeGreaterThan(0);
  expect(out.epochs).toHaveLength(5);
  expect(r.stderr).toMatch(/epoch 5: train loss/);
});

it('experiment centralized names a missing data set directory', () => {
  const r = run('experiment', 'centralized', '--dataset', 'idx:/nonexistent/dir', '--epochs', '1');
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/missing train-images-idx3-ubyte .* in \/nonexistent\/dir \(DATA_NOT_FOUND\)/);
});

it('bench train --json reports throughput per batch size and one local update', () => {
  const r = run('bench', 'train', '--json', '--seconds', '0.2');
  expect(r.status, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout);
  expect(out.throughput.map((t: { batchSize: number }) => t.batchSize)).toEqual([1, 10, 32, 64, 128]);
  for (const t of out.throughput) expect(t.samplesPerSecond).toBeGreaterThan(0);
  expect(out.localUpdate).toMatchObject({ epochs: 5, batchSize: 10, samples: 100 });
  expect(out.localUpdate.ms).toBeGreaterThan(0);
  expect(out.localUpdateStepwise.cpuMs).toBeGreaterThan(0);
  expect(out.localUpdateStepwise.cpuRatioLoopToStep).toBeGreaterThan(0);
});

it('experiment attack --json prints the documented summary and writes CSV and JSON', async () => {
  const out = await tmpDir('bfl-exp-');
  const r = run('experiment', 'attack', '--clients', '5', '--malicious', '0.4', '--attack', 'sign-flip', '--aggregations', '3', '--out', out, '--json');
  expect(r.status, r.stderr).toBe(0);
  const s = JSON.parse(r.stdout);
  for (const k of ['detectionRate', 'detectionRateLast10', 'falsePositiveRate', 'accuracy', 'accuracyNoAttack']) expect(typeof s[k], k).toBe('number');
  expect(s).toMatchObject({ attack: 'sign-flip', aggregator: 'bfl-mec', partition: 'iid', clients: 5, attackers: 2 });
  expect(s.wallSeconds).toBeGreaterThan(0);
  expect(s.virtualSeconds).toBeGreaterThan(0);
  const csv = readFileSync(s.files.csv, 'utf8').trim().split('\n');
  expect(csv[0]).toBe('round,seconds,accuracy,accuracy_no_attack,attacker_updates,detected,honest_updates,false_positives');
  expect(csv).toHaveLength(4);
  expect(JSON.parse(readFileSync(s.files.json, 'utf8')).rounds).toHaveLength(3);
  expect(await usage('experiment', 'attack', '--aggregator', 'mean')).toBe(2);
  expect(await usage('experiment', 'attack', '--attack', 'teleport')).toBe(2);
  for (const bad of [['--reuse-baseline', '--transport', 'libp2p'], ['--max-norm-ratio', '0.5'], ['--max-norm-ratio', 'x'], ['--metric', 'manhattan'], ['--eps', '-1'], ['--eps', ''], ['--partition', 'shards:0'], ['--partition', 'dirichlet'], ['--dataset', 'cifar']]) {
    const b = await cli(['experiment', 'attack', ...bad]);
    expect(b.code, bad.join(' ')).toBe(2);
    expect(b.err).toContain(bad[0]);
  }
  for (const bad of [['--quality', 'x'], ['--quality', '1.5'], ['--shapley', '--clients', '13']]) {
    const b = await cli(['experiment', 'rewards', ...bad]);
    expect(b.code, bad.join(' ')).toBe(2);
    expect(b.err).toContain(bad[0]);
  }
}, 300_000);

it('experiment attack --transport libp2p runs the same experiment on real daemons over libp2p', async () => {
  const out = await tmpDir('bfl-exp-lp-');
  const r = run('experiment', 'attack', '--transport', 'libp2p', '--clients', '4', '--malicious', '0.25', '--attack', 'scale:10', '--aggregations', '3', '--N', '50', '--E', '1', '--out', out, '--json');
  expect(r.status, r.stderr).toBe(0);
  const s = JSON.parse(r.stdout);
  expect(s).toMatchObject({ transport: 'libp2p', attack: 'scale:10', clients: 4, attackers: 1 });
  // the length check catches scaled updates over the wire as in the simulator (not always all:
  // timing decides which updates share an aggregation, and two scaled updates among four
  // move the median)
  const rows = JSON.parse(readFileSync(s.files.json, 'utf8')).rounds as { attackerUpdates: number; detected: number; honestUpdates: number; falsePositives: number }[];
  expect(rows).toHaveLength(3);
  expect(rows.reduce((a, x) => a + x.attackerUpdates, 0)).toBeGreaterThan(0);
  expect(s.detectionRate).toBeGreaterThanOrEqual(0.5);
  expect(s.falsePositiveRate).toBeLessThan(0.2);
  expect(await usage('experiment', 'attack', '--transport', 'libp2p', '--mobility')).toBe(2);
  expect(await usage('experiment', 'attack', '--transport', 'carrier-pigeon')).toBe(2);
}, 300_000);

it('experiment rewards, robustness, strategies and thresholds write their CSV, JSON and plots', async () => {
  const out = await tmpDir('bfl-suite-');
  const small = ['--clients', '5', '--aggregations', '2', '--N', '50', '--E', '1', '--out', out, '--json'];
  const rewards = run('experiment', 'rewards', ...small, '--curious', '0.4');
  expect(rewards.status, rewards.stderr).toBe(0);
  const rw = JSON.parse(rewards.stdout);
  expect(rw.curious).toHaveLength(2);
  expect(rw.curiousShare).toBeLessThan(0.5); // free-riders do not earn their share
  const rob = run('experiment', 'robustness', ...small, '--attacks', 'scale:10', '--aggregators', 'bfl-mec,median');
  expect(rob.status, rob.stderr).toBe(0);
  expect(Object.keys(JSON.parse(rob.stdout).worstCase)).toEqual(['bfl-mec', 'median']);
  expect(run('experiment', 'strategies', ...small, '--aggregators', 'bfl-mec,fedavg').status).toBe(0);
  // every cell runs the same virtual time; a smaller ϕ aggregates more often
  const th = run('experiment', 'thresholds', ...small, '--aggregations', '1000', '--seconds', '10', '--phis', '2,4', '--Ns', '50');
  expect(th.status, th.stderr).toBe(0);
  const grid = JSON.parse(th.stdout).grid as { phi: number; aggregations: number }[];
  expect(grid.map((g) => g.phi)).toEqual([2, 4]);
  expect(grid[0].aggregations).toBeGreaterThan(grid[1].aggregations);
  for (const f of ['rewards', 'robustness', 'strategies', 'thresholds']) for (const ext of ['csv', 'json', 'svg', 'png']) expect(existsSync(join(out, `${f}.${ext}`)), `${f}.${ext}`).toBe(true);
  expect(await usage('experiment', 'thresholds', '--phis', 'x')).toBe(2);
}, 600_000);
