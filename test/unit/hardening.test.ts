/** Issue 13: hostile input at the edges of core (non-finite floats, huge values, field bounds). */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AGGREGATORS, createAggregator } from '../../src/core/aggregation/index.ts';
import type { UpdateInput } from '../../src/core/aggregation/types.ts';
import { BflError, ErrorCode } from '../../src/core/errors.ts';
import { sha256 } from '../../src/core/hash.ts';
import { type SignedUpdate, decodeSignedUpdate, encodeSignedUpdate } from '../../src/core/update.ts';
import { codeOf } from '../helpers/errors.ts';

function signedUpdate(values: number[]): SignedUpdate {
  const payload = new Uint8Array(Float32Array.from(values).buffer);
  return {
    clientId: 'client-1',
    minerId: 'miner-1',
    baseModelHash: new Uint8Array(32).fill(7),
    updateDigest: sha256(payload),
    sampleCount: 10,
    createdAt: 1_700_000_000_000,
    signature: new Uint8Array(2420).fill(1),
    payloadBytes: payload.length,
    payload,
  };
}

describe('non-finite update payloads (issue 13, item 6)', () => {
  it('NaN, +Infinity and -Infinity anywhere in the payload are refused at decode with NON_FINITE / REJECT', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      for (const at of [0, 3, 7]) {
        const values = [0.5, -1, 2, 3e38, -3e38, 1e-45, 0, -0];
        values[at] = bad;
        const bytes = encodeSignedUpdate(signedUpdate(values));
        let err: unknown;
        try {
          decodeSignedUpdate(bytes, 1024);
        } catch (e) {
          err = e;
        }
        expect(err, `${bad} at ${at}`).toBeInstanceOf(BflError);
        expect((err as BflError).code).toBe(ErrorCode.NON_FINITE);
        expect((err as BflError).action).toBe('REJECT');
        expect((err as BflError).message).toContain(`parameter ${at}`);
      }
    }
  });

  it('every NaN bit pattern (quiet, signalling, negative) is refused; finite extremes pass', () => {
    const payloadOf = (bits: number[]) => {
      const dv = new DataView(new ArrayBuffer(bits.length * 4));
      bits.forEach((b, i) => dv.setUint32(i * 4, b, true));
      return new Uint8Array(dv.buffer);
    };
    for (const bits of [0x7fc00000, 0x7f800001, 0xffffffff, 0xff800000, 0x7f800000]) {
      const u = { ...signedUpdate([0]), payload: payloadOf([bits]) };
      u.updateDigest = sha256(u.payload);
      expect(codeOf(() => decodeSignedUpdate(encodeSignedUpdate(u), 64)), bits.toString(16)).toBe(ErrorCode.NON_FINITE);
    }
    // largest finite, smallest subnormal, negative zero
    const ok = { ...signedUpdate([0]), payload: payloadOf([0x7f7fffff, 0xff7fffff, 0x00000001, 0x80000000]) };
    ok.updateDigest = sha256(ok.payload);
    expect(decodeSignedUpdate(encodeSignedUpdate(ok), 64).payload).toEqual(ok.payload);
  });
});

const FLOAT32_MAX = 3.4028234663852886e38;

/** Finite float32 values, the huge ones over-represented. */
const finite32 = fc.oneof(
  fc.float({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(3e38, -3e38, FLOAT32_MAX, -FLOAT32_MAX, 1e38, 1e-45, 0),
);

describe('aggregators are total on finite input (issue 13, item 6)', () => {
  it.each(AGGREGATORS)('%s: finite model, integer rewards within the base, no throw, for any finite updates', (name) => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }).chain((dim) =>
          fc.record({
            previous: fc.array(finite32, { minLength: dim, maxLength: dim }),
            deltas: fc.array(fc.array(finite32, { minLength: dim, maxLength: dim }), { minLength: 1, maxLength: 6 }),
            samples: fc.array(fc.integer({ min: 1, max: 1_000_000 }), { minLength: 6, maxLength: 6 }),
          }),
        ),
        ({ previous, deltas, samples }) => {
          const updates: UpdateInput[] = deltas.map((d, i) => {
            const delta = Float32Array.from(d);
            return { clientId: `client-${i}`, digest: createHash('sha256').update(Buffer.from(delta.buffer)).update(String(i)).digest(), delta, sampleCount: samples[i], staleness: i % 3 };
          });
          const a = createAggregator(name);
          const base = 100_000_000n;
          const context = { round: 2, parentHash: new Uint8Array(32).fill(3), previousGlobalUpdate: Float32Array.from(previous, (x) => -x) };
          const { result } = a.aggregate({ previous: Float32Array.from(previous), updates, baseReward: base, context }, a.initialState());
          for (const x of result.model) expect(Number.isFinite(x)).toBe(true);
          for (const e of result.entries) expect(Number.isFinite(e.weight)).toBe(true);
          let paid = 0n;
          for (const r of result.rewards) paid += r.amount;
          expect(paid).toBeLessThanOrEqual(base);
        },
      ),
      { seed: 13, numRuns: 150 },
    );
  });
});
