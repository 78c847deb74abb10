/**
 * A miner answers /status while it scores updates (issue 10, "Done when"): the aggregation runs
 * on a worker thread, so the event loop stays free. Asserted relative to the aggregation's own
 * duration, not in milliseconds (a loaded machine slows both); the absolute figures at the
 * default model's size are `npx node bench/status.ts`.
 */
import { expect, it } from 'vitest';
import { benchStatus } from '../../bench/status.ts';

it('on the worker engine /status keeps answering during an aggregation of 100 updates; in-thread it cannot', { timeout: 120_000 }, async () => {
  const dim = 40_000; // a quarter of the default MLP: long enough to poll many times, quick on a loaded machine
  const worker = await benchStatus('worker', 100, dim);
  const seen = JSON.stringify(worker);
  expect(worker.polls, seen).toBeGreaterThanOrEqual(5);
  expect(worker.statusMaxMs, seen).toBeLessThan(worker.aggregationMs / 4);
  // the same job in-thread blocks the loop: no answer until it is done (what the test guards against)
  const inThread = await benchStatus('in-thread', 100, dim);
  // At most the poll already in flight when the job starts is answered (its latency can be short:
  // it may be served before the job blocks the loop, so its time says nothing); the worker engine,
  // polled the same way, answered many times during its job.
  expect(inThread.polls, JSON.stringify(inThread)).toBeLessThanOrEqual(1);
  expect(worker.polls, seen).toBeGreaterThan(inThread.polls + 3);
});
