import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';

const BIN = new URL('../../bin/bfl-node.js', import.meta.url).pathname;
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 300_000 });

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
});

it('experiment attack --json prints the documented summary and writes CSV and JSON', async () => {
  const { mkdtempSync, readFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const out = mkdtempSync(join(tmpdir(), 'bfl-exp-'));
  const r = run('experiment', 'attack', '--clients', '5', '--malicious', '0.4', '--attack', 'sign-flip', '--aggregations', '3', '--out', out, '--json');
  expect(r.status, r.stderr).toBe(0);
  const s = JSON.parse(r.stdout);
  for (const k of ['detectionRate', 'falsePositiveRate', 'accuracy', 'accuracyNoAttack']) expect(typeof s[k], k).toBe('number');
  expect(s).toMatchObject({ attack: 'sign-flip', aggregator: 'bfl-mec', partition: 'iid', clients: 5, attackers: 2 });
  const csv = readFileSync(s.files.csv, 'utf8').trim().split('\n');
  expect(csv[0]).toBe('round,seconds,accuracy,accuracy_no_attack,attacker_updates,detected,honest_updates,false_positives');
  expect(csv).toHaveLength(4);
  expect(JSON.parse(readFileSync(s.files.json, 'utf8')).rounds).toHaveLength(3);
  expect(run('experiment', 'attack', '--aggregator', 'mean').status).toBe(2);
  expect(run('experiment', 'attack', '--attack', 'teleport').status).toBe(2);
}, 300_000);
