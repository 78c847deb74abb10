import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';

const BIN = new URL('../../bin/bfl-node.js', import.meta.url).pathname;

it('the main job: bfl-node testnet (2 miners, 6 clients) reaches 10 aggregations, 0.85 accuracy, one tip', { timeout: 600_000 }, () => {
  const r = spawnSync(process.execPath, [BIN, 'testnet', '--json'], { encoding: 'utf8', timeout: 590_000 });
  expect(r.status, r.stderr.slice(-2000)).toBe(0);
  for (const id of ['miner-1', 'miner-2', 'client-6']) expect(r.stderr).toMatch(new RegExp(`^ {2}${id} +http://127\\.0\\.0\\.1:\\d+/$`, 'm')); // each node's dashboard URL
  const s = JSON.parse(r.stdout);
  expect(s.aggregations).toBeGreaterThanOrEqual(10);
  expect(s.converged).toBe(true);
  expect(s.finalAccuracy).toBeGreaterThanOrEqual(0.85);
  expect(s.initialAccuracy).toBeLessThan(0.3); // the genesis model's, read before the first aggregation
  expect(s.miners).toHaveLength(2);
  expect(s.clients).toHaveLength(6);
  for (const c of s.clients) expect(c.uploaded).toBeGreaterThan(0);
  expect(new Set(s.miners.map((m: { tip: string }) => m.tip)).size).toBe(1);
});

it('one miner, one client: the lone updater is judged and the model learns (it stayed at the initial model before)', { timeout: 300_000 }, () => {
  const r = spawnSync(process.execPath, [BIN, 'testnet', '--miners', '1', '--clients', '1', '--aggregations', '3', '--json'], { encoding: 'utf8', timeout: 290_000 });
  expect(r.status, r.stderr.slice(-2000)).toBe(0);
  const s = JSON.parse(r.stdout);
  expect(s.initialAccuracy).toBeLessThan(0.3); // the genesis model: about chance
  expect(s.finalAccuracy).toBeGreaterThan(s.initialAccuracy + 0.3);
  expect(s.miners[0].flagged).toEqual([]);
});
