import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../helpers/errors.ts';
import { Writer } from '../../src/core/bytes.ts';
import { decodeBlock, decodeHeader, decodeTx, encodeBlock, encodeHeader, encodeTx } from '../../src/core/encoding.ts';
import { merkleRoot } from '../../src/core/merkle.ts';
import type { Block } from '../../src/core/types.ts';
import { computeVectors } from '../vectors/compute.ts';
import * as f from '../vectors/fixtures.ts';

const golden = JSON.parse(readFileSync(new URL('../vectors/encoding.json', import.meta.url), 'utf8')) as Record<string, string>;


describe('golden vectors', () => {
  const now = computeVectors();
  for (const key of Object.keys(golden)) {
    it(`${key} is unchanged`, () => expect(now[key]).toBe(golden[key]));
  }
  it('covers every vector the generator knows', () => expect(Object.keys(now).sort()).toEqual(Object.keys(golden).sort()));

  it('merkle roots follow RFC 6962 hashing (checked independently)', () => {
    const H = (...parts: Uint8Array[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
    const leaf = (i: number) => H(Uint8Array.of(0), H(Uint8Array.of(i)));
    expect(golden.merkle1).toBe(leaf(0).toString('hex'));
    expect(golden.merkle2).toBe(H(Uint8Array.of(1), leaf(0), leaf(1)).toString('hex'));
    expect(golden.merkle3).toBe(H(Uint8Array.of(1), H(Uint8Array.of(1), leaf(0), leaf(1)), leaf(2)).toString('hex'));
  });
});

describe('round trips', () => {
  it('header and every transaction type decode to what was encoded', () => {
    expect(decodeHeader(encodeHeader(f.header))).toEqual(f.header);
    for (const tx of [f.genesisTx, f.coinbase, f.record, f.aggregation]) expect(decodeTx(encodeTx(tx))).toEqual(tx);
  });

  it('blocks round-trip for arbitrary records', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ digest: fc.uint8Array({ minLength: 32, maxLength: 32 }), samples: fc.nat(1e6), at: fc.nat(2 ** 45) }), { maxLength: 8 }), (rs) => {
        const block: Block = {
          header: f.header,
          signature: new Uint8Array(2420).fill(9),
          txs: [f.aggregation, f.coinbase, ...rs.map((r) => ({ ...f.record, updateDigest: r.digest, sampleCount: r.samples, createdAt: r.at }))],
        };
        const bytes = encodeBlock(block);
        expect(decodeBlock(bytes)).toEqual(block);
        expect(Buffer.from(encodeBlock(decodeBlock(bytes)))).toEqual(Buffer.from(bytes));
      }),
      { numRuns: 50 },
    );
  });
});

describe('untrusted bytes', () => {
  const block: Block = { header: f.header, signature: new Uint8Array(2420), txs: [f.coinbase, f.record] };
  const bytes = encodeBlock(block);

  it('every truncation of a block is MALFORMED, never a crash', () => {
    for (let n = 0; n < bytes.length; n += 7) expect(codeOf(() => decodeBlock(bytes.subarray(0, n)))).toBe('MALFORMED');
  });

  it('trailing bytes are MALFORMED (one value, one encoding)', () => {
    expect(codeOf(() => decodeBlock(new Uint8Array([...bytes, 0])))).toBe('MALFORMED');
    expect(codeOf(() => decodeTx(new Uint8Array([...encodeTx(f.coinbase), 1])))).toBe('MALFORMED');
  });

  it('a block over the size limit is OVERSIZED before it is parsed', () => {
    expect(codeOf(() => decodeBlock(bytes, bytes.length - 1))).toBe('OVERSIZED');
    expect(codeOf(() => decodeBlock(new Uint8Array(100), 10))).toBe('OVERSIZED');
  });

  it('random bytes never throw anything but a BflError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (b) => {
        expect(['MALFORMED', 'OVERSIZED', 'NO_ERROR']).toContain(codeOf(() => decodeBlock(b)));
        expect(['MALFORMED', 'OVERSIZED', 'NO_ERROR']).toContain(codeOf(() => decodeTx(b)));
      }),
      { numRuns: 500 },
    );
  });

  it('huge length prefixes and counts are refused without allocating', () => {
    expect(codeOf(() => decodeTx(new Writer().u8(2).str('c').str('m').finish()))).toBe('MALFORMED');
    const hugeCount = new Writer().bytes(encodeHeader(f.header)).bytes(new Uint8Array(0)).u32(0xffffffff).finish();
    expect(codeOf(() => decodeBlock(hugeCount))).toBe('MALFORMED');
    const hugeSig = new Writer().u8(2).str('c').str('m').fixed(new Uint8Array(64), 64).u32(1).u64(1).u32(1e9).finish();
    expect(codeOf(() => decodeTx(hugeSig))).toBe('OVERSIZED');
    const agg = encodeTx({ ...f.aggregation, entries: [], rewards: [] });
    const badCount = Uint8Array.from(agg);
    new DataView(badCount.buffer).setUint32(agg.length - 32 - 8, 5_000_000); // entry count: before the reward count and the state hash
    expect(codeOf(() => decodeTx(badCount))).toBe('MALFORMED');
  });

  it('ids outside the allowed alphabet are MALFORMED; unknown tx types too', () => {
    const w = new Writer().u8(1).u32(1).str('bad id!').u64(1).finish();
    expect(codeOf(() => decodeTx(w))).toBe('MALFORMED');
    expect(codeOf(() => decodeTx(Uint8Array.of(9)))).toBe('MALFORMED');
    // invalid UTF-8 in a string field (found by the property test above)
    expect(codeOf(() => decodeTx(Uint8Array.of(0, 1, 128)))).toBe('MALFORMED');
  });
});

it('merkle root changes with order and content', () => {
  const a = Uint8Array.of(1);
  const b = Uint8Array.of(2);
  expect(Buffer.from(merkleRoot([a, b]))).not.toEqual(Buffer.from(merkleRoot([b, a])));
  expect(Buffer.from(merkleRoot([a]))).not.toEqual(Buffer.from(merkleRoot([a, a])));
});
