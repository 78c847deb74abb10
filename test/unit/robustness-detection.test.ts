import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { labelRates } from '../../src/experiments/detection.ts';
import { pickClients } from '../../src/experiments/setup.ts';
import { runRobustness } from '../../src/experiments/suite.ts';
import type { RoundReport, SimOptions } from '../../src/sim/harness.ts';
import { tmpDir } from '../helpers/tmp.ts';

it('detection and false positives count low labels among attacker and honest updates', () => {
  const u = (attack: string, high: boolean) => ({ clientId: 'c', digest: 'd', weight: 0, attack, high });
  expect(labelRates([{ updates: [u('sign-flip', false), u('sign-flip', true), u('none', true), u('none', false)] }, { updates: [u('label-flip', false), u('none', true)] }])).toEqual({
    detectionRate: 2 / 3,
    falsePositiveRate: 1 / 3,
    attackerUpdates: 3,
    honestUpdates: 3,
  });
  // no attack: no detection rate, only false positives
  expect(labelRates([{ updates: [u('none', true), u('none', true)] }])).toEqual({ detectionRate: null, falsePositiveRate: 0, attackerUpdates: 0, honestUpdates: 2 });
});

it('experiment robustness reports detection per labelling aggregator and attack (stub simulator)', async () => {
  const out = await tmpDir('bfl-robust-');
  // a stand-in simulator: every client sends one update per aggregation, labelled by a fixed
  // verdict (sign flips caught, client 1 always low, everything else high)
  const simulate = async (s: SimOptions) => {
    const rounds: RoundReport[] = [];
    for (let round = 1; round <= s.aggregations; round++) {
      const updates = Array.from({ length: s.clients }, (_, c) => {
        const attack = s.behaviourOf!(c, round, () => undefined).label;
        return { clientId: `client-${c + 1}`, digest: `${round}-${c}`, weight: 1, attack, high: attack !== 'sign-flip' && c !== 0 };
      });
      rounds.push({ round, height: round, seconds: round, accuracy: s.aggregation.aggregator === 'fedavg' ? 0.5 : 0.8, loss: 1, updates, rewards: {} });
    }
    return { rounds };
  };
  const o = { seed: 3, miners: 2, clients: 10, partition: { kind: 'iid' as const }, aggregations: 2, N: 100, E: 1, B: 10, lr: 0.01, out };
  const r = await runRobustness({ ...o, attacks: ['sign-flip', 'scale:10'], aggregators: ['bfl-mec', 'fedavg'], malicious: 0.3, simulate });
  const attackers = pickClients(o.seed, o.clients, 0.3).chosen;
  const fp = attackers.has(0) ? 0 : 1 / 7; // client 1's false positives among the 7 honest clients
  expect(r.detection.fedavg).toBeNull(); // FedAvg labels nothing: no rates
  expect(r.detection['bfl-mec']).toEqual({
    none: { detectionRate: null, falsePositiveRate: 1 / 10, attackerUpdates: 0, honestUpdates: 20 },
    'sign-flip': { detectionRate: 1, falsePositiveRate: fp, attackerUpdates: 6, honestUpdates: 14 },
    'scale:10': { detectionRate: attackers.has(0) ? 1 / 3 : 0, falsePositiveRate: fp, attackerUpdates: 6, honestUpdates: 14 },
  });
  expect(r.worstCase).toEqual({ 'bfl-mec': 0.8, fedavg: 0.5 });
  const csv = (await readFile(join(out, 'robustness-detection.csv'), 'utf8')).trim().split('\n');
  expect(csv[0]).toBe('aggregator,attack,detection_rate,false_positive_rate,attacker_updates,honest_updates');
  expect(csv.slice(1)).toEqual([`bfl-mec,none,,0.1000,0,20`, `bfl-mec,sign-flip,1.0000,${fp.toFixed(4)},6,14`, `bfl-mec,scale:10,${(attackers.has(0) ? 1 / 3 : 0).toFixed(4)},${fp.toFixed(4)},6,14`]);
  expect(JSON.parse(await readFile(join(out, 'robustness.json'), 'utf8')).detection['bfl-mec']['sign-flip'].detectionRate).toBe(1);
});
