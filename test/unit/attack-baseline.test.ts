import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { defaultAttackExperiment, runAttackExperiment } from '../../src/experiments/attack.ts';
import { tmpDir } from '../helpers/tmp.ts';

// a tiny simulation: 3 clients, 2 aggregations of 1 epoch over 20 samples
const tiny = { ...defaultAttackExperiment, clients: 3, malicious: 0.34, aggregations: 2, N: 20, E: 1, attack: 'scale:10' };

it('a stored no-attack run is reused only with the same settings', async () => {
  const baselineFile = join(await tmpDir('bfl-baseline-'), 'baseline.json');
  const first = await runAttackExperiment({ ...tiny, baselineFile });
  expect(first.baselineReused).toBeUndefined();
  const stored = JSON.parse(readFileSync(baselineFile, 'utf8'));
  expect(stored.rounds).toEqual(first.baseline);
  // the same settings: the stored run (marked, so that a reuse shows), not a new one
  stored.rounds[0].accuracy = 0.123;
  writeFileSync(baselineFile, JSON.stringify(stored));
  const second = await runAttackExperiment({ ...tiny, baselineFile });
  expect(second.baselineReused).toBe(true);
  expect(second.baseline[0].accuracy).toBe(0.123);
  expect(second.rounds).toEqual(first.rounds);
  // another setting of the run: the stored one does not fit, it runs again and replaces it
  const third = await runAttackExperiment({ ...tiny, aggregations: 1, baselineFile });
  expect(third.baselineReused).toBeUndefined();
  expect(JSON.parse(readFileSync(baselineFile, 'utf8')).key).toContain('"aggregations":1');
  await expect(runAttackExperiment({ ...tiny, transport: 'libp2p', baselineFile })).rejects.toThrow(/simulator/);
}, 120_000);
