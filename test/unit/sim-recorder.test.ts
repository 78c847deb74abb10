import { EventEmitter } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/core/bytes.ts';
import { deltaToPayload } from '../../src/core/update.ts';
import { loadEmbeddedMnist, subset } from '../../src/learn/data.ts';
import { DEFAULT_MODEL, initParams } from '../../src/learn/model.ts';
import { ModelRuntime } from '../../src/learn/runtime.ts';
import { Recorder, type SimOptions } from '../../src/sim/harness.ts';

/**
 * The experiment harness's report of the rounds on a miner's canonical chain. A narrow stand-in
 * for the chain store (its 'tip' event, getBlock, hashAt) drives the real Recorder.
 */
let runtime: ModelRuntime;
beforeAll(async () => {
  runtime = await ModelRuntime.create(DEFAULT_MODEL, { threads: 1 });
});
afterAll(async () => {
  await runtime.close();
});

const hash = (n: number) => Uint8Array.from({ length: 32 }, () => n);
const plain = (height: number) => ({ header: { height }, txs: [] });
const aggregation = (height: number, round: number) => ({
  header: { height },
  txs: [{ type: 'aggregation', round, baseModelHash: hash(0), modelHash: hash(0), model: deltaToPayload(initParams(DEFAULT_MODEL, round)), entries: [], rewards: [], stateHash: hash(0) }],
});

describe('the harness reports every aggregation of the final chain', () => {
  it('an aggregation that a winning branch connects below its tip (never the tip here) is reported, once, without calling onRound', async () => {
    const blocks = new Map<string, unknown>([
      [toHex(hash(2)), aggregation(2, 1)],
      [toHex(hash(3)), aggregation(3, 2)],
      [toHex(hash(4)), plain(4)],
    ]);
    const canonical = new Map<number, string>([[2, toHex(hash(2))], [3, toHex(hash(3))], [4, toHex(hash(4))]]);
    const store = Object.assign(new EventEmitter(), {
      getBlock: async (h: Uint8Array) => blocks.get(toHex(h)),
      hashAt: async (height: number) => canonical.get(height),
    });
    const seen: number[] = [];
    const data = loadEmbeddedMnist();
    const o = { aggregations: 2, onRound: (r: { round: number }) => seen.push(r.round) } as unknown as SimOptions;
    const rec = new Recorder(o, runtime, { train: data.train, test: subset(data.test, [0, 1, 2, 3]) });
    rec.watch(store as never, () => 7);
    // round 1 becomes the tip; then a branch whose aggregation (round 2, height 3) and the block on it arrive together
    store.emit('tip', { hash: hash(2), anchor: hash(2), height: 2, rounds: 2 }, { forkHeight: 1, disconnected: [], connected: [toHex(hash(2))] });
    store.emit('tip', { hash: hash(4), anchor: hash(3), height: 4, rounds: 3 }, { forkHeight: 2, disconnected: [], connected: [toHex(hash(3)), toHex(hash(4))] });
    // the same blocks again (a repeated event) add nothing
    store.emit('tip', { hash: hash(4), anchor: hash(3), height: 4, rounds: 3 }, { forkHeight: 2, disconnected: [], connected: [toHex(hash(3)), toHex(hash(4))] });
    await rec.settled();
    const rows = await rec.report(store as never);
    expect(rows.map((r) => [r.round, r.height, r.seconds])).toEqual([[1, 2, 7], [2, 3, 7]]);
    expect(rows[1].accuracy).toBeGreaterThanOrEqual(0);
    // the callbacks follow the tips this miner saw, as before
    expect(seen).toEqual([1]);
  });
});
