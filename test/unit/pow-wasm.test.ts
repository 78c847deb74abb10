import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { blockHash, encodeHeaderPrefix } from '../../src/core/encoding.ts';
import { PowSearcher, meetsTarget } from '../../src/core/pow.ts';
import type { BlockHeader } from '../../src/core/types.ts';
import { InThreadMiner, WorkerMinerPool } from '../../src/mining/miner.ts';
import { WasmPowSearcher, wasmPowAvailable } from '../../src/mining/pow-wasm.ts';

const header = (over: Partial<BlockHeader> = {}): BlockHeader => ({
  version: 1,
  height: 7,
  prevHash: new Uint8Array(32).fill(3),
  merkleRoot: new Uint8Array(32).fill(4),
  timestamp: 1_700_000_000_123,
  difficulty: 64n,
  minerId: 'miner-1',
  nonce: 0,
  ...over,
});

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('WebAssembly proof-of-work search', () => {
  it('runs on this Node (WebAssembly SIMD)', () => {
    expect(wasmPowAvailable()).toBe(true);
  });

  it('finds the same first nonce and hash as the JS reference on random headers, targets and nonce ranges', () => {
    const arbHeader = fc.record({
      version: fc.integer({ min: 0, max: 0xffff }),
      height: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      prevHash: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      merkleRoot: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      timestamp: fc.integer({ min: 0, max: 2 ** 45 }),
      // every nonce alignment inside the last block (the id's length moves it)
      minerId: fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,23}$/),
    });
    // near 2^32 multiples too: the high nonce word changes inside a search there
    const arbStart = fc.oneof(
      fc.integer({ min: 0, max: 2 ** 40 }),
      fc.integer({ min: 1, max: 2 ** 20 }).map((k) => k * 2 ** 32 - 7),
      fc.constant(Number.MAX_SAFE_INTEGER - 5000),
    );
    fc.assert(
      fc.property(arbHeader, fc.bigInt({ min: 1n, max: 3000n }), arbStart, fc.integer({ min: 1, max: 3000 }), (h, difficulty, start, count) => {
        const prefix = encodeHeaderPrefix({ ...h, difficulty, nonce: 0 });
        const count_ = Math.min(count, Number.MAX_SAFE_INTEGER - start);
        const js = new PowSearcher(prefix, difficulty).search(start, count_);
        const wasm = WasmPowSearcher.create(prefix, difficulty)!.search(start, count_);
        expect(wasm?.nonce).toBe(js?.nonce);
        if (js) {
          expect(hex(wasm!.hash)).toBe(hex(js.hash));
          expect(hex(js.hash)).toBe(hex(blockHash({ ...h, difficulty, nonce: js.nonce })));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('agrees at the target edges: difficulty 1 (every hash) and 2 (first bit clear)', () => {
    for (const difficulty of [1n, 2n, 3n]) {
      const prefix = encodeHeaderPrefix(header({ difficulty }));
      for (const start of [0, 2 ** 32 - 2, 12345]) {
        const js = new PowSearcher(prefix, difficulty).search(start, 64)!;
        const wasm = WasmPowSearcher.create(prefix, difficulty)!.search(start, 64)!;
        expect([wasm.nonce, hex(wasm.hash)]).toEqual([js.nonce, hex(js.hash)]);
        if (difficulty === 1n) expect(wasm.nonce).toBe(start);
      }
    }
  });

  it('a searcher used again after the reference tried nonces gives the same answers', () => {
    const h = header({ difficulty: 700n });
    const prefix = encodeHeaderPrefix(h);
    const a = WasmPowSearcher.create(prefix, 700n)!;
    const first = a.search(0, 1e6)!;
    const second = a.search(first.nonce + 1, 1e6)!;
    const ref = new PowSearcher(prefix, 700n);
    expect(first.nonce).toBe(ref.search(0, 1e6)!.nonce);
    expect(second.nonce).toBe(ref.search(first.nonce + 1, 1e6)!.nonce);
  });

  it('does not apply to headers whose nonce would span two blocks', () => {
    expect(WasmPowSearcher.create(new Uint8Array(120), 10n)).toBeNull();
    expect(WasmPowSearcher.create(new Uint8Array(111), 10n)).not.toBeNull();
  });

  it('the miners use it and find the nonce the reference finds', async () => {
    const h = header({ difficulty: 5000n, height: 11 });
    const expected = new PowSearcher(encodeHeaderPrefix(h), 5000n).search(0, 1e7)!.nonce;
    expect((await new InThreadMiner({ engine: 'wasm' }).mine(h))!.header.nonce).toBe(expected);
    expect((await new InThreadMiner({ engine: 'js' }).mine(h))!.header.nonce).toBe(expected);
    const pool = new WorkerMinerPool({ workers: 1, engine: 'wasm' });
    try {
      const r = (await pool.mine(h))!;
      expect(r.header.nonce).toBe(expected);
      expect(meetsTarget(blockHash(r.header), 5000n)).toBe(true);
    } finally {
      await pool.close();
    }
  });
});
