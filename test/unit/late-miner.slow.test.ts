/**
 * Issue 13, item 2 at the issue's scale: a miner with an empty datadir syncs a chain of 520
 * blocks whose oldest 488 blocks' updates are pruned everywhere, then validates a new block
 * fully. Prints the time the sync took (`npm run test:slow`).
 */
import { expect, it } from 'vitest';
import { toHex } from '../../src/core/bytes.ts';
import { aggregationTxOf } from '../../src/core/chain.ts';
import { PRUNE_DEPTH, lateMiner, producer } from '../helpers/late-miner.ts';

const BLOCKS = 520;

it(`a late miner syncs ${BLOCKS} blocks beyond the pruning depth, then validates new blocks fully`, async () => {
  const p = await producer(BLOCKS);
  const l = await lateMiner(p);
  const t0 = performance.now();
  await l.catchUp();
  const ms = performance.now() - t0;
  expect(toHex(l.store.tip.hash)).toBe(toHex(p.store.tip.hash));
  let onWork = 0;
  for (let h = 1; h <= BLOCKS; h++) if (await l.store.acceptedOnWork((await l.store.hashAt(h))!)) onWork++;
  const aggregations = Math.floor(BLOCKS / 2);
  expect(onWork).toBe(Math.floor((BLOCKS - PRUNE_DEPTH) / 2));
  expect(l.aggregation.computed).toBe(aggregations - onWork);
  expect(await l.store.aggregatorState(l.store.tip.anchor)).toEqual(await p.store.aggregatorState(p.store.tip.anchor));
  let next = await p.mine();
  while (!aggregationTxOf(next)) next = await p.mine();
  const before = l.aggregation.computed;
  await l.catchUp();
  expect(toHex(l.store.tip.hash)).toBe(toHex(p.store.tip.hash));
  expect(l.aggregation.computed).toBe(before + 1);
  console.log(`synced ${BLOCKS} blocks in ${Math.round(ms)} ms: ${onWork} aggregations accepted on work, ${aggregations - onWork} recomputed`);
  await l.close();
  await p.close();
});
