/** Issue 13: hostile input at the edges of core (non-finite floats, huge values, field bounds). */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AGGREGATORS, createAggregator } from '../../src/core/aggregation/index.ts';
import type { UpdateInput } from '../../src/core/aggregation/types.ts';
import { BflError, ErrorCode } from '../../src/core/errors.ts';
import { sha256 } from '../../src/core/hash.ts';
import { type SignedUpdate, MAX_SAMPLE_COUNT, checkUpdateFields, decodeSignedUpdate, encodeSignedUpdate } from '../../src/core/update.ts';
import { ChainStore } from '../../src/chain/store.ts';
import { parseNetworkConfig } from '../../src/config/network.ts';
import { SigningContext } from '../../src/core/contexts.ts';
import { claimOfRecord, encodeUpdateClaim } from '../../src/core/encoding.ts';
import { generateIdentity } from '../../src/crypto/keyfile.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { UpdateFetcher } from '../../src/node/update-fetcher.ts';
import { KemDirectory, generateKemKey } from '../../src/crypto/kem-keys.ts';
import { KemKeyRing } from '../../src/crypto/seal.ts';
import { UpdateSealing } from '../../src/net/sealed-updates.ts';
import { codeOf } from '../helpers/errors.ts';
import { forgeBlock, makeNetwork } from '../helpers/network.ts';
import { tmpDir } from '../helpers/tmp.ts';

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

  it('a non-finite value is found in every word of the four-word steps and in the tail, and named by its index', () => {
    for (const bad of [Number.NaN, Number.NEGATIVE_INFINITY]) {
      for (let at = 0; at < 11; at++) {
        const values: number[] = Array.from({ length: 11 }, (_, i) => (i % 2 ? -3e38 : 1e-45));
        values[at] = bad;
        let err: unknown;
        try {
          decodeSignedUpdate(encodeSignedUpdate(signedUpdate(values)), 1024);
        } catch (e) {
          err = e;
        }
        expect((err as BflError).code, `${bad} at ${at}`).toBe(ErrorCode.NON_FINITE);
        expect((err as BflError).message).toContain(`parameter ${at} `);
      }
    }
  });

  it('a sealed upload is held to the same check when it is opened (NON_FINITE / REJECT)', () => {
    const kem = generateKemKey().key;
    const directory = new KemDirectory([{ id: 'miner-1', kemPublicKey: kem.publicKey }]);
    const client = new UpdateSealing({ networkId: 'n', directory });
    const miner = new UpdateSealing({ networkId: 'n', directory, keyRing: new KemKeyRing([kem]) });
    const now = 1_700_000_000_000;
    expect(codeOf(() => miner.decode(client.encode(signedUpdate([0.5, Number.NaN]), 'upload', 'miner-1', now), 'upload', now, 1024))).toBe(ErrorCode.NON_FINITE);
    expect(miner.decode(client.encode(signedUpdate([0.5, -1]), 'upload', 'miner-1', now), 'upload', now, 1024).payload.length).toBe(8);
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

describe('field sanity at intake (issue 13, item 10)', () => {
  const GENESIS = 1_700_000_000_000;
  const NOW = GENESIS + 3_600_000;
  const o = { now: NOW, genesisTime: GENESIS, maxFutureMs: 120_000 };
  const fields = (over: { sampleCount?: number; createdAt?: number }) => ({ clientId: 'client-1', sampleCount: 100, createdAt: NOW - 5000, ...over });
  const refusal = (f: () => unknown): BflError => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(BflError);
      return e as BflError;
    }
    throw new Error('expected a refusal');
  };

  it('createdAt a year ahead or 2^53 − 1 is TIMESTAMP_FUTURE (IGNORE); 0 or before genesis is OUT_OF_RANGE (REJECT)', () => {
    for (const createdAt of [NOW + 365 * 86_400_000, Number.MAX_SAFE_INTEGER, NOW + o.maxFutureMs + 1]) {
      const e = refusal(() => checkUpdateFields(fields({ createdAt }), o));
      expect(e.code, String(createdAt)).toBe(ErrorCode.TIMESTAMP_FUTURE);
      expect(e.action).toBe('IGNORE');
      expect(e.message).toMatch(/ahead of our clock.*check the client's clock/);
    }
    for (const createdAt of [0, 1, GENESIS - o.maxFutureMs - 1]) {
      const e = refusal(() => checkUpdateFields(fields({ createdAt }), o));
      expect(e.code, String(createdAt)).toBe(ErrorCode.OUT_OF_RANGE);
      expect(e.action).toBe('REJECT');
      expect(e.message).toMatch(/before the network's genesis/);
    }
    // the edges are fine
    for (const createdAt of [NOW + o.maxFutureMs, GENESIS - o.maxFutureMs, GENESIS]) expect(codeOf(() => checkUpdateFields(fields({ createdAt }), o))).toBe('NO_ERROR');
  });

  it('sampleCount 0 or 2^32 − 1 is OUT_OF_RANGE; 1 and MAX_SAMPLE_COUNT pass', () => {
    for (const sampleCount of [0, 2 ** 32 - 1, MAX_SAMPLE_COUNT + 1]) {
      const e = refusal(() => checkUpdateFields(fields({ sampleCount }), o));
      expect(e.code).toBe(ErrorCode.OUT_OF_RANGE);
      expect(e.message).toContain(`claims ${sampleCount} samples; an update must have 1 to ${MAX_SAMPLE_COUNT}`);
    }
    for (const sampleCount of [1, MAX_SAMPLE_COUNT]) expect(codeOf(() => checkUpdateFields(fields({ sampleCount }), o))).toBe('NO_ERROR');
  });

  it("the miner's intake applies them to uploads and announcements, and the bounds but not our clock to fetched updates", () => {
    const fetcher = new UpdateFetcher(
      {
        config: { networkId: 'n', genesisTime: GENESIS, chain: { maxFutureMs: 120_000 }, learning: { mode: 'federated' } },
        membership: { ofRole: () => ({}) },
        pool: { get: () => undefined },
        clock: { now: () => NOW },
      } as never,
      32,
    );
    const a = { ...signedUpdate([1, 2, 3, 4, 5, 6, 7, 8]), createdAt: NOW };
    expect(codeOf(() => fetcher.checkShape(a))).toBe('NO_ERROR');
    expect(codeOf(() => fetcher.checkShape({ ...a, sampleCount: 0 }))).toBe(ErrorCode.OUT_OF_RANGE);
    expect(codeOf(() => fetcher.checkShape({ ...a, createdAt: 0 }))).toBe(ErrorCode.OUT_OF_RANGE);
    expect(codeOf(() => fetcher.checkShape({ ...a, createdAt: NOW + 365 * 86_400_000 }))).toBe(ErrorCode.TIMESTAMP_FUTURE);
    // fetched to validate a block: the block's own timestamp bounds createdAt (block rules)
    expect(codeOf(() => fetcher.checkShape({ ...a, createdAt: NOW + 200_000 }, true))).toBe('NO_ERROR');
    expect(codeOf(() => fetcher.checkShape({ ...a, sampleCount: 2 ** 32 - 1 }, true))).toBe(ErrorCode.OUT_OF_RANGE);
  });

  it('the block rules refuse a signed record outside the bounds (so intake never refuses what a valid block needs)', async () => {
    const net = makeNetwork({ clients: 1, miners: 1, phi: 5 });
    const store = await ChainStore.open({ datadir: await tmpDir('bfl-harden-'), params: net.params, signatures: new InThreadVerifier(), now: () => net.params.genesisTime + 60_000 });
    try {
      const client = net.clients[0];
      const record = (over: { sampleCount?: number; createdAt?: number }) => {
        const r = { clientId: client.id, minerId: net.miners[0].id, updateDigest: sha256(Uint8Array.of(over.sampleCount ?? 0, (over.createdAt ?? 0) & 0xff)), baseModelHash: store.tip.modelHash, sampleCount: 100, createdAt: net.params.genesisTime + 1000, ...over };
        return { type: 'record' as const, ...r, signature: client.key.sign(encodeUpdateClaim(claimOfRecord(net.params.networkId, r)), SigningContext.update) };
      };
      const ts = net.params.genesisTime + 30_000;
      const add = (over: { sampleCount?: number; createdAt?: number }) => store.addBlock(forgeBlock(net, store.tip, net.miners[0], { records: [record(over)], timestamp: ts })).then(() => 'NO_ERROR', (e: BflError) => `${e.code}/${e.action}`);
      expect(await add({ sampleCount: 0 })).toBe('OUT_OF_RANGE/REJECT');
      expect(await add({ sampleCount: 2 ** 32 - 1 })).toBe('OUT_OF_RANGE/REJECT');
      expect(await add({ createdAt: 0 })).toBe('OUT_OF_RANGE/REJECT');
      expect(await add({ createdAt: ts + net.params.maxFutureMs + 1 })).toBe('TIMESTAMP_FUTURE/REJECT');
      expect(await add({ sampleCount: 7 })).toBe('NO_ERROR');
    } finally {
      await store.close();
    }
  });
});

describe('config sanity (issue 13, item 10)', () => {
  const pk = generateIdentity('m', 'miner').json.publicKey;
  const base = { networkId: 'n', genesisTime: 0, members: [{ id: 'miner-1', role: 'miner', publicKey: pk }] };
  const configError = (json: unknown, now?: number): string => {
    try {
      parseNetworkConfig(json as never, '(inline)', undefined, now);
    } catch (e) {
      expect((e as BflError).code).toBe(ErrorCode.BAD_CONFIG);
      expect((e as BflError).message).not.toContain('\n');
      return (e as BflError).message;
    }
    return 'NO_ERROR';
  };

  it('size limits below the model size are refused, naming the path and the model size', () => {
    // default MLP 784-200-10: 159,010 float32 = 636,040 bytes
    expect(configError({ ...base, p2p: { maxUpdateBytes: 600_000 } })).toMatch(/^p2p\.maxUpdateBytes: expected at least the model's 636040 bytes .*got 600000$/);
    expect(configError({ ...base, chain: { maxBlockBytes: 636_040 } })).toMatch(/^chain\.maxBlockBytes: expected at least the model's 636040 bytes \+ 4096, got 636040$/);
    // a smaller model makes the same limits fine
    expect(configError({ ...base, learning: { layers: [784, 10] }, p2p: { maxUpdateBytes: 600_000 }, chain: { maxBlockBytes: 636_040 } })).toBe('NO_ERROR');
  });

  it('a genesis time more than a year ahead is refused (2100, or seconds typed as ms·1000)', () => {
    const now = Date.UTC(2026, 10, 30);
    expect(configError({ ...base, genesisTime: Date.UTC(2100, 0, 1) }, now)).toMatch(/^genesisTime: expected a time in ms at most a year ahead/);
    expect(configError({ ...base, genesisTime: now * 1000 }, now)).toMatch(/^genesisTime:/);
    expect(configError({ ...base, genesisTime: now + 30 * 86_400_000 }, now)).toBe('NO_ERROR');
  });

  it('an API port outside 1-65535 is refused with its JSON path', () => {
    const withApi = (api: string) => ({ ...base, members: [{ ...base.members[0], api }] });
    expect(configError(withApi('127.0.0.1:99999'))).toMatch(/^members\[0\]\.api: expected host:port with a port in 1-65535, got "127\.0\.0\.1:99999"$/);
    expect(configError(withApi('127.0.0.1:0'))).toMatch(/^members\[0\]\.api:/);
    expect(configError(withApi('127.0.0.1:65535'))).toBe('NO_ERROR');
    expect(configError({ ...base, members: [{ ...base.members[0], listen: '/ip4/127.0.0.1/tcp/70000' }] })).toMatch(/^members\[0\]\.listen: expected a multiaddr .* with a port in 0-65535/);
  });
});
