/**
 * Issue 13, item 4, as found: an admitted client gone rogue floods a miner with valid updates.
 * The rogue is the real client daemon given a config whose data arrive 10 × faster (data rates
 * are not consensus), so every one of its updates is honestly trained and correctly signed, at
 * ~4 a second against the honest clients' one per 2.5 s. Before one vote per client it took 94 %
 * of the rewards; now each aggregation counts it once, its claimed sample count weighs at most
 * maxClaimRatio (2) × the median claim, and the miner's per-client limit (default 60 a minute,
 * burst 10) refuses the excess with CLIENT_RATE_LIMITED.
 * Slow (a minute or two on a loaded machine): `npm run test:slow`.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { defaultP2PConfig } from '../../src/config/network.ts';
import { Cluster } from '../helpers/cluster.ts';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.stopAll();
  cluster = undefined;
});

it('a client flooding valid updates at ~4/s gets one vote per aggregation, its fair share of rewards, and CLIENT_RATE_LIMITED', { timeout: 600_000 }, async () => {
  const p2p = { clientUpdatesPerMinute: defaultP2PConfig.clientUpdatesPerMinute, clientUpdateBurst: defaultP2PConfig.clientUpdateBurst };
  const c = (cluster = await Cluster.create({ miners: 1, clients: 3, phi: 3, learning: { rate: 20 }, p2p }));
  const cfg = JSON.parse(await readFile(c.init.config, 'utf8'));
  cfg.learning.rate = 200; // an update per N = 50 samples: 4 a second
  const rogueConfig = join(c.dir, 'network-rogue.json');
  await writeFile(rogueConfig, JSON.stringify(cfg, null, 2));
  c.start('miner-1');
  c.start('client-1');
  c.start('client-2');
  c.start('client-3', { config: rogueConfig });
  const rounds = 8;
  await c.waitFor(['miner-1'], ([s]) => s.aggregations >= rounds, 420_000, `${rounds} aggregations`);
  const { aggregations } = (await (await fetch(`${c.node('miner-1').api}/api/aggregations?limit=1000`)).json()) as { aggregations: { round: number; updates: number; low: string[]; rewards: Record<string, number> }[] };
  const penalties = (await c.status('miner-1'))!.penalties;
  const log = await c.log('miner-1');
  const rogueLog = await c.log('client-3');
  await c.stopAll();

  const paid = aggregations.filter((a) => a.round > 0);
  const total = new Map<string, number>();
  for (const a of paid) {
    expect(a.updates, `round ${a.round}: one update per client`).toBe(3);
    for (const [id, t] of Object.entries(a.rewards)) total.set(id, (total.get(id) ?? 0) + t);
  }
  const sum = [...total.values()].reduce((x, y) => x + y, 0);
  const rogueShare = (total.get('client-3') ?? 0) / sum;
  const lows = Object.fromEntries(['client-1', 'client-2', 'client-3'].map((id) => [id, paid.filter((a) => a.low.includes(id)).length]));
  console.log(`rogue client's share of ${sum.toFixed(1)} reward tokens over ${paid.length} aggregations: ${(100 * rogueShare).toFixed(1)} % (issue 13 before the rule: 94 %); labelled low: ${JSON.stringify(lows)}`);
  // The rogue's refused updates come back as averages of its buffer with their summed sample
  // counts (100 or 150 where the others claim 50: its data are real, so it weighs up to twice the
  // others, the claim cap's limit). Rewards are samples × agreement × alignment with the aggregate
  // (docs/decisions.md), and an aggregate half made of its own update aligns best with it:
  // 53.4-54.6 % in three runs. Two thirds is what a client weighing twice the others and aligned twice
  // as well would take; with several votes per aggregation it took 94 % (issue 13).
  expect(rogueShare).toBeLessThan(2 / 3);
  // the excess is refused at the intake, without penalty (the rogue uploaded more than the limit allows)
  expect(log).toMatch(/"code":"CLIENT_RATE_LIMITED"/);
  expect(rogueLog).toMatch(/CLIENT_RATE_LIMITED/);
  expect(penalties['client-3']).toBeUndefined();
});
