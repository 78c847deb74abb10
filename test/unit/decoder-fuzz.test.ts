/**
 * Fuzz of every decoder of peer input (issue 13, "a fuzz test of every decoder"): valid
 * encodings mutated (bit flips, byte overwrites, truncation, extension, splices) and random
 * bytes never make a decoder throw anything but a BflError with a code. Seeded (fast-check's
 * seed) so a failure reproduces; a few hundred runs per decoder, about a second in all.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createAggregator } from '../../src/core/aggregation/index.ts';
import { decodeAgreementState } from '../../src/core/aggregation/agreement.ts';
import { BflError, ErrorCode } from '../../src/core/errors.ts';
import { decodeBlock, decodeHeader, decodeTx, encodeBlock, encodeHeader, encodeTx } from '../../src/core/encoding.ts';
import { sha256 } from '../../src/core/hash.ts';
import type { Block, BlockHeader, Tx } from '../../src/core/types.ts';
import { decodeAnnouncement, decodeSignedUpdate, encodeAnnouncement, encodeSignedUpdate } from '../../src/core/update.ts';
import {
  decodeBlockAnnouncement,
  decodeChainRequest,
  decodeHashes,
  decodeHead,
  decodeModelAfter,
  decodePeerRecord,
  encodeBlockAnnouncement,
  encodeChainRequest,
  encodeHashes,
  encodeHead,
  encodeModelAfter,
  encodePeerRecord,
} from '../../src/net/messages.ts';
import { makeUpdates } from '../helpers/updates.ts';

const h32 = (n: number) => new Uint8Array(32).fill(n);
const header: BlockHeader = { version: 1, height: 7, prevHash: h32(1), merkleRoot: h32(2), timestamp: 1_700_000_000_000, difficulty: 1_000_000n, minerId: 'miner-1', nonce: 12345 };
const model = new Uint8Array(Float32Array.from([0.5, -1, 2, 3]).buffer);
const txs: Tx[] = [
  { type: 'aggregation', round: 3, baseModelHash: h32(3), modelHash: sha256(model), model, entries: [{ clientId: 'client-1', updateDigest: h32(4), high: true, weight: 0.75 }, { clientId: 'client-2', updateDigest: h32(5), high: false, weight: 0 }], rewards: [{ id: 'client-1', amount: 100n }], stateHash: h32(6) },
  { type: 'coinbase', height: 7, minerId: 'miner-1', amount: 10n },
  { type: 'record', clientId: 'client-1', minerId: 'miner-1', updateDigest: h32(6), baseModelHash: h32(3), sampleCount: 100, createdAt: 1_700_000_000_500, signature: new Uint8Array(2420).fill(9) },
  { type: 'genesis', networkId: 'test-net', paramsDigest: h32(8) },
];
const block: Block = { header, signature: new Uint8Array(2420).fill(7), txs: txs.slice(0, 3) };
const update = { clientId: 'client-1', minerId: 'miner-1', baseModelHash: h32(3), updateDigest: sha256(model), sampleCount: 100, createdAt: 1_700_000_000_500, signature: new Uint8Array(2420).fill(9), payloadBytes: model.length, payload: model };

/** A real aggregator state: bfl-mec after one aggregation. */
function agreementState(): Uint8Array {
  const a = createAggregator('bfl-mec');
  const { updates, previous } = makeUpdates({ seed: 5, honest: 4, attackers: 1, dim: 16 });
  const { state } = a.aggregate({ previous, updates, baseReward: 1000n, context: { round: 1, parentHash: h32(1) } }, a.initialState());
  return (a as unknown as { encodeState(s: unknown): Uint8Array }).encodeState(state);
}
const sketch = (createAggregator('bfl-mec') as unknown as { options: { sketchSize: number } }).options.sketchSize;

const decoders: { name: string; seeds: Uint8Array[]; decode: (b: Uint8Array) => unknown }[] = [
  { name: 'block header', seeds: [encodeHeader(header)], decode: decodeHeader },
  { name: 'transaction', seeds: txs.map(encodeTx), decode: decodeTx },
  { name: 'block', seeds: [encodeBlock(block)], decode: (b) => decodeBlock(b, 1 << 20) },
  { name: 'update announcement', seeds: [encodeAnnouncement(update)], decode: decodeAnnouncement },
  { name: 'signed update', seeds: [encodeSignedUpdate(update)], decode: (b) => decodeSignedUpdate(b, 1 << 16) },
  { name: 'block announcement', seeds: [encodeBlockAnnouncement({ header, blockBytes: 5000 })], decode: decodeBlockAnnouncement },
  { name: 'peer record', seeds: [encodePeerRecord({ memberId: 'miner-1', peerId: '12D3KooWGzh6Sd1ZJ8Tm5cQ9v4kYF2d5Ww8q9o5qfN9hRk3tK7hX', signature: new Uint8Array(2420).fill(3) })], decode: decodePeerRecord },
  {
    name: 'chain request',
    seeds: [encodeChainRequest({ kind: 'head' }), encodeChainRequest({ kind: 'block', hash: h32(1) }), encodeChainRequest({ kind: 'hashes', from: 3, count: 10 }), encodeChainRequest({ kind: 'model-after', anchor: h32(2) }), encodeChainRequest({ kind: 'balance', id: 'client-1' })],
    decode: decodeChainRequest,
  },
  { name: 'head', seeds: [encodeHead({ height: 9, hash: h32(1), work: 123456789012345678901234567890n, rounds: 2, anchor: h32(2), modelHash: h32(3) })], decode: decodeHead },
  { name: 'model after', seeds: [encodeModelAfter({ newer: true, blockHash: h32(1), height: 4, round: 2, modelHash: sha256(model), model })], decode: (b) => decodeModelAfter(b, 1 << 16) },
  { name: 'hashes', seeds: [encodeHashes([h32(1), h32(2), h32(3)])], decode: decodeHashes },
  { name: 'aggregator state (bfl-mec)', seeds: [agreementState()], decode: (b) => decodeAgreementState(b, sketch) },
];

type Mutation = { kind: 'flip'; at: number; bit: number } | { kind: 'set'; at: number; value: number } | { kind: 'truncate'; at: number } | { kind: 'extend'; extra: Uint8Array } | { kind: 'splice'; at: number; bytes: Uint8Array };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.constantFrom(0, 0xff, 0x7f, 0x80, 1) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
);

function mutate(seed: Uint8Array, ms: Mutation[]): Uint8Array {
  let b = Uint8Array.from(seed);
  for (const m of ms) {
    if (b.length === 0) break;
    if (m.kind === 'flip') b[m.at % b.length] ^= 1 << m.bit;
    else if (m.kind === 'set') b[m.at % b.length] = m.value;
    else if (m.kind === 'truncate') b = b.subarray(0, m.at % b.length);
    else if (m.kind === 'extend') b = Uint8Array.from([...b, ...m.extra]);
    else b.set(m.bytes.subarray(0, b.length - (m.at % b.length)), m.at % b.length);
  }
  return b;
}

/** Decoding either succeeds or throws a BflError with a known code: nothing else (no RangeError, TypeError, raw BigInt/TextDecoder errors). */
function decodesOrRefuses(decode: (b: Uint8Array) => unknown, bytes: Uint8Array): void {
  try {
    decode(bytes);
  } catch (e) {
    if (!(e instanceof BflError)) throw new Error(`threw ${(e as Error)?.name}: ${(e as Error)?.message} on ${Buffer.from(bytes).toString('hex').slice(0, 200)}`);
    expect(Object.values(ErrorCode)).toContain(e.code);
  }
}

describe('decoder fuzz: mutated and random bytes give a BflError with a code or a value, never another throw', () => {
  it.each(decoders)('$name', ({ seeds, decode }) => {
    for (const s of seeds) expect(() => decode(s)).not.toThrow(); // the seeds are valid encodings
    fc.assert(
      fc.property(fc.nat({ max: seeds.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), (i, ms) => decodesOrRefuses(decode, mutate(seeds[i], ms))),
      { seed: 1313, numRuns: 400 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => decodesOrRefuses(decode, bytes)),
      { seed: 1314, numRuns: 200 },
    );
  });
});
