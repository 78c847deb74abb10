import { expect, it } from 'vitest';
import { SimClock } from '../../src/sim/clock.ts';

it('virtual time moves only when every activity waits; timers fire in order', async () => {
  const c = new SimClock(1000);
  const log: string[] = [];
  c.spawn(async () => {
    await c.sleep(50);
    log.push(`a@${c.now()}`);
    // real work inside an activity: time must not move meanwhile
    await new Promise((r) => setTimeout(r, 30));
    log.push(`a-work@${c.now()}`);
    await c.sleep(10);
    log.push(`a2@${c.now()}`);
  });
  c.spawn(async () => {
    await c.sleep(55);
    log.push(`b@${c.now()}`);
  });
  await c.advance(10_000);
  expect(log).toEqual(['a@1050', 'a-work@1050', 'b@1055', 'a2@1060']);
  expect(c.activities).toBe(0);
});

it('an abort resumes a sleeper at once; suspend waits for another activity without holding time', async () => {
  const c = new SimClock(0);
  const ac = new AbortController();
  let woke = -1;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let passed = -1;
  c.spawn(async () => {
    await c.sleep(1_000_000, ac.signal);
    woke = c.now();
  });
  c.spawn(async () => {
    await c.suspend(gate);
    passed = c.now();
  });
  c.spawn(async () => {
    await c.sleep(20);
    ac.abort();
    await c.sleep(5);
    release();
  });
  await c.advance(2_000_000);
  expect(woke).toBe(20);
  expect(passed).toBe(25);
});

it('advance stops at `until` and when the stop condition holds', async () => {
  const c = new SimClock(0);
  let ticks = 0;
  c.spawn(async () => {
    for (;;) {
      await c.sleep(10);
      ticks++;
    }
  });
  await c.advance(95);
  expect(ticks).toBe(9);
  expect(c.now()).toBe(95);
  await c.advance(10_000, () => ticks >= 20);
  expect(ticks).toBe(20);
  expect(c.now()).toBe(200);
});

it('same-instant timers fire in the order of their activities, not of real completion', async () => {
  // Two activities do real work of different lengths, then sleep until the same virtual
  // instant. Ordered by creation, the one whose work finished first in real time would wake
  // first; the order must depend only on who started them (issue 11: byte-identical runs).
  const order = async (workA: number, workB: number) => {
    const c = new SimClock(0);
    const log: string[] = [];
    const task = (name: string, work: number) => async () => {
      await new Promise((r) => setTimeout(r, work));
      await c.sleep(10);
      log.push(name);
      // children inherit the order of their parent
      c.spawn(async () => {
        await c.sleep(5);
        log.push(`${name}-child`);
      });
    };
    c.spawn(task('a', workA));
    c.spawn(task('b', workB));
    await c.advance(1000);
    return log;
  };
  const fastA = await order(0, 40);
  const fastB = await order(40, 0);
  expect(fastA).toEqual(['a', 'b', 'a-child', 'b-child']);
  expect(fastB).toEqual(fastA);
});

it('nested suspends of one activity wait once (a stop joining parts that suspend too)', async () => {
  // Miner.stop suspends on Promise.all([..., sync.stop()]) and sync.stop suspends on its own
  // loop: counted twice, the activity count went below zero and the clock threw at shutdown.
  const c = new SimClock(0);
  const ac = new AbortController();
  let loopEnd = -1;
  let stopped = -1;
  const loop = c.run(async () => {
    await c.sleep(1_000_000, ac.signal);
    await c.sleep(7);
    loopEnd = c.now();
  });
  const partStop = async () => {
    ac.abort();
    await c.suspend(loop);
  };
  c.spawn(async () => {
    await c.sleep(20);
    await c.suspend(Promise.all([loop, partStop()]));
    stopped = c.now();
    // running again: time stands still while it works
    await new Promise((r) => setTimeout(r, 20));
    expect(c.now()).toBe(27);
  });
  await c.advance(2_000_000);
  expect(loopEnd).toBe(27);
  expect(stopped).toBe(27);
  expect(c.activities).toBe(0);
});
