/**
 * The split-learning protocol's miner half (node/split-miner.ts, net/split.ts): a good batch is
 * trained on and answered with the cut gradients; bad batches get their own codes; after
 * samplesPerUpdate samples the miner submits a signed body update (zeros over the head). Real
 * ML-DSA keys, real onnxruntime graphs; the store, transport and intake are narrow stubs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NetworkConfig, chainParamsOf, defaultAggregationConfig, defaultSplitConfig, parseNetworkConfig, rulesOf } from '../../src/config/network.ts';
import { SigningContext } from '../../src/core/contexts.ts';
import { claimOfRecord, encodeUpdateClaim } from '../../src/core/encoding.ts';
import { BflError, ErrorCode } from '../../src/core/errors.ts';
import { sha256 } from '../../src/core/hash.ts';
import type { AggregationTx } from '../../src/core/types.ts';
import { Membership, contributorRole, createGenesisBlock, genesisHash } from '../../src/core/params.ts';
import { type SignedUpdate, deltaToPayload, payloadToDelta } from '../../src/core/update.ts';
import { generateIdentity } from '../../src/crypto/keyfile.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { DEFAULT_MODEL, initParams } from '../../src/learn/model.ts';
import { SplitRuntime, cutDropoutMask, splitParams } from '../../src/learn/split.ts';
import { augmentImage, augments, drawKey, drawOf, parseAugment } from '../../src/learn/augment.ts';
import { Rng } from '../../src/core/random.ts';
import { type SplitBatch, bytesToFloats, decodeAnswer, decodeBatch, decodeHeadShare, encodeBatch, encodeBatchClaim, encodeHeadClaim, encodeHeadShare, floatsToBytes, splitHeadProtocol } from '../../src/net/split.ts';
import { headShareAccount } from '../../src/learn/privacy.ts';
import { SplitLearner, privatise } from '../../src/node/split-client.ts';
import { loadEmbeddedMnist, subset } from '../../src/learn/data.ts';
import { openAnswer, sealAnswer, splitSealAd } from '../../src/net/split.ts';
import { UpdateSealing } from '../../src/net/sealed-updates.ts';
import { KemDirectory } from '../../src/crypto/kem-keys.ts';
import { KemKeyRing, SealContext } from '../../src/crypto/seal.ts';
import { SplitMiner, batchMaskSeed } from '../../src/node/split-miner.ts';
import { UpdateFetcher } from '../../src/node/update-fetcher.ts';
import { ChainStore } from '../../src/chain/store.ts';
import { makeNetwork, mineBlock, signedRecord } from '../helpers/network.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { systemClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/logger.ts';

const NOW = 1_800_000_000_000;
const miner = generateIdentity('miner-1', 'miner');
const client = generateIdentity('client-1', 'client');
const stranger = generateIdentity('client-9', 'client');
const WIDTH = DEFAULT_MODEL.layers[1];

function config(split: Record<string, unknown> = {}, more: { id: string; role: string; publicKey: string }[] = []): NetworkConfig {
  return parseNetworkConfig({
    networkId: 'split-test',
    genesisTime: NOW - 3600_000,
    learning: { mode: 'split', split: { samplesPerUpdate: 40, maxBatch: 16, ...split } },
    members: [
      { id: 'miner-1', role: 'miner', publicKey: miner.json.publicKey },
      { id: 'client-1', role: 'client', publicKey: client.json.publicKey },
      ...more,
    ],
  }, '(test)', new Map(), NOW);
}

let runtime: SplitRuntime;
let verifier: InThreadVerifier;
beforeAll(() => {
  runtime = SplitRuntime.create(DEFAULT_MODEL, 1);
  verifier = new InThreadVerifier();
});
afterAll(async () => {
  await runtime.close();
  await verifier.close();
});

function setUp(cfg = config(), extra: { sealing?: UpdateSealing; submit?: (u: SignedUpdate) => Promise<void>; peers?: ConstructorParameters<typeof SplitMiner>[1]['peers'] } = {}) {
  const initial = initParams(DEFAULT_MODEL, 1);
  const params = chainParamsOf(cfg, deltaToPayload(initial));
  const genesis = createGenesisBlock(params);
  const submitted: SignedUpdate[] = [];
  let now = NOW;
  const store = { tip: { anchor: genesisHash(params) } as { anchor: Uint8Array }, block: genesis };
  const served = new Map<string, (req: Uint8Array) => Promise<Uint8Array>>();
  const m = new SplitMiner(
    { config: cfg, identity: miner.identity },
    {
      store: { get tip() { return store.tip as never; }, getBlock: async () => store.block },
      membership: new Membership(cfg.members),
      submit: async (u) => void submitted.push(u),
      transport: { serve: async (protocol, handler) => void served.set(protocol, (req) => handler(req, 'peer')) },
      verifier,
      runtime,
      ...extra,
      clock: { ...systemClock, now: () => now },
      logger: silentLogger,
    },
  );
  /** A new global model on the tip (the anchor of a new aggregation block). */
  const newGlobal = (model: Float32Array) => {
    const payload = deltaToPayload(model);
    store.block = { ...genesis, txs: [{ ...(genesis.txs[0] as AggregationTx), model: payload, modelHash: sha256(payload), round: 1 }, ...genesis.txs.slice(1)] };
    store.tip = { anchor: sha256(Uint8Array.of(1, 2, 3)) };
  };
  return { m, cfg, initial, submitted, newGlobal, served, advance: (ms: number) => (now += ms) };
}

let seq = 0;
/** A batch of `count` samples of the default head's width, signed by `who` (createdAt NOW + seq: strictly increasing). */
function batch(o: { count?: number; who?: typeof client; minerId?: string; createdAt?: number; activations?: Float32Array; labels?: Uint8Array; width?: number; sign?: boolean } = {}): { bytes: Uint8Array; b: SplitBatch } {
  const count = o.count ?? 8;
  const width = o.width ?? WIDTH;
  const who = o.who ?? client;
  const acts = o.activations ?? Float32Array.from({ length: count * width }, (_, k) => ((k * 7919) % 13) / 13);
  const body = { clientId: who.identity.id, minerId: o.minerId ?? 'miner-1', createdAt: o.createdAt ?? NOW + ++seq, count, width, activations: floatsToBytes(acts), labels: o.labels ?? Uint8Array.from({ length: count }, (_, i) => i % 10) };
  const signature = who.identity.key.sign(encodeBatchClaim('split-test', body), SigningContext.splitBatch);
  const b = { ...body, signature };
  return { bytes: encodeBatch(b), b };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof BflError) return e.code;
    throw e;
  }
  return 'NO_ERROR';
}

/** The miner's step on batch `b` from global model `model`, computed here: with cut dropout p the
 * body steps on a ⊙ mask (the mask drawn from the batch's signature) and the cut gradient is
 * taken back through it. Returns the loss and the cut gradient the miner must answer. */
async function minerStep(model: Float32Array, b: SplitBatch, p: number): Promise<{ loss: number; ga: Float32Array; mask: Float32Array | null }> {
  const body = Float32Array.from(splitParams(model, DEFAULT_MODEL, 1).body);
  const y = new Float32Array(b.count * 10);
  for (let i = 0; i < b.count; i++) y[i * 10 + b.labels[i]] = 1;
  const a = payloadToDelta(b.activations);
  const mask = p > 0 ? cutDropoutMask(new Rng(batchMaskSeed(b.signature)), p, b.count, WIDTH, new Float32Array(b.count * WIDTH)) : null;
  if (mask) for (let k = 0; k < a.length; k++) a[k] *= mask[k];
  const ga = new Float32Array(b.count * WIDTH);
  const loss = await runtime.bodySgdStep(body, a, y, b.count, 0.01, new Float32Array(body.length), ga);
  if (mask) for (let k = 0; k < ga.length; k++) ga[k] *= mask[k];
  return { loss, ga, mask };
}

describe('split protocol, miner side', () => {
  it('trains on a good batch and answers the cut gradients, which the body step gives for those activations (without cut dropout)', async () => {
    const { m, initial } = setUp(config({ cutDropout: 0 }));
    const { bytes, b } = batch();
    const answer = decodeAnswer(await m.handle(bytes), b.count * WIDTH);
    // the same step on the global body, computed here
    const want = await minerStep(initial, b, 0);
    expect(answer.loss).toBeCloseTo(want.loss, 6);
    expect(new Float32Array(answer.gradients.slice().buffer)).toEqual(want.ga);
    expect(m.status()).toMatchObject({ batches: 1, samples: 8, pending: 8, bodyUpdates: 0 });
  });

  it('with learning.split.cutDropout (default 0.3) the body steps on the thinned smashed data and the cut gradient goes back through the same mask, drawn from the batch signature', async () => {
    expect(config().learning.split.cutDropout).toBe(defaultSplitConfig.cutDropout);
    expect(defaultSplitConfig.cutDropout).toBe(0.3);
    const { m, initial } = setUp();
    const { bytes, b } = batch({ count: 16 });
    const got = new Float32Array(decodeAnswer(await m.handle(bytes), b.count * WIDTH).gradients.slice().buffer);
    const want = await minerStep(initial, b, 0.3);
    expect(got).toEqual(want.ga);
    // the dropped activations get no gradient; about 30 % of them are dropped
    const dropped = want.mask!.reduce((n, v) => n + (v === 0 ? 1 : 0), 0);
    expect(dropped / want.mask!.length).toBeGreaterThan(0.25);
    expect(dropped / want.mask!.length).toBeLessThan(0.35);
    want.mask!.forEach((v, k) => v === 0 && expect(Math.abs(got[k])).toBe(0));
    // and it is not the unthinned step
    expect(got).not.toEqual((await minerStep(initial, b, 0)).ga);
    // each batch has a mask of its own: the same activations and labels signed again (a later
    // createdAt) are answered through other zeros
    const zerosOf = (g: Float32Array) => Array.from(g, (v) => v === 0);
    const first = await m.handle(batch({ count: 16 }).bytes);
    const second = await m.handle(batch({ count: 16 }).bytes);
    expect(zerosOf(new Float32Array(decodeAnswer(second, 16 * WIDTH).gradients.slice().buffer))).not.toEqual(zerosOf(new Float32Array(decodeAnswer(first, 16 * WIDTH).gradients.slice().buffer)));
  });

  it('an augment spec the client cannot use, or on inputs that are not square images, is a BAD_CONFIG naming learning.split.augment', () => {
    expect(() => config({ augment: 'shift:20' })).toThrow(/learning\.split\.augment: expected none, shift:K/);
    expect(() => config({ augment: 'blur:2' })).toThrow(/learning\.split\.augment: expected none, shift:K/);
    expect(() => config({ cutDropout: 1 })).toThrow(/learning\.split\.cutDropout/);
    expect(() => parseNetworkConfig({ networkId: 'split-test', genesisTime: NOW - 3600_000, learning: { mode: 'split', layers: [780, 200, 10] }, members: [{ id: 'miner-1', role: 'miner', publicKey: miner.json.publicKey }] }, '(test)', new Map(), NOW)).toThrow(/learning\.split\.augment: expected "none" \(augmentation needs square images, and learning\.layers\[0\] is 780\)/);
    expect(config({ augment: 'none' }).learning.split.augment).toBe('none');
  });

  it('refuses bad batches with their own codes, before training', async () => {
    const { m } = setUp();
    const tampered = batch();
    tampered.bytes[tampered.bytes.length - 10] ^= 1; // a byte of the signature
    expect(await codeOf(m.handle(tampered.bytes))).toBe('BAD_SIGNATURE');
    const forged = batch();
    const other = encodeBatch({ ...forged.b, labels: forged.b.labels.map((l) => (l + 1) % 10) }); // labels changed after signing
    expect(await codeOf(m.handle(other))).toBe('BAD_SIGNATURE');
    expect(await codeOf(m.handle(batch({ count: 17 }).bytes))).toBe('OVERSIZED'); // maxBatch 16
    expect(await codeOf(m.handle(new Uint8Array(16 * (WIDTH * 4 + 1) + 10_000)))).toBe('OVERSIZED');
    const nan = new Float32Array(8 * WIDTH);
    nan[123] = Number.NaN;
    expect(await codeOf(m.handle(batch({ activations: nan }).bytes))).toBe('NON_FINITE');
    const inf = new Float32Array(8 * WIDTH);
    inf[5] = Number.POSITIVE_INFINITY;
    expect(await codeOf(m.handle(batch({ activations: inf }).bytes))).toBe('NON_FINITE');
    expect(await codeOf(m.handle(batch({ labels: Uint8Array.of(0, 1, 2, 3, 4, 5, 6, 10) }).bytes))).toBe('OUT_OF_RANGE');
    expect(await codeOf(m.handle(batch({ width: 100, activations: new Float32Array(800) }).bytes))).toBe('MALFORMED');
    expect(await codeOf(m.handle(batch({ minerId: 'miner-2' }).bytes))).toBe('MALFORMED');
    expect(await codeOf(m.handle(batch({ who: stranger }).bytes))).toBe('UNKNOWN_CLIENT');
    expect(await codeOf(m.handle(batch({ createdAt: NOW + 10 * 60_000 }).bytes))).toBe('TIMESTAMP_FUTURE');
    expect(await codeOf(m.handle(new Uint8Array([1, 2, 3])))).toBe('MALFORMED');
    expect(m.status().batches).toBe(0);
  });

  it('refuses replays: the same batch twice, an older one, one outside the replay window', async () => {
    const { m } = setUp();
    const first = batch();
    const second = batch();
    await m.handle(second.bytes);
    expect(await codeOf(m.handle(second.bytes))).toBe('BATCH_REPLAYED');
    expect(await codeOf(m.handle(first.bytes))).toBe('BATCH_REPLAYED'); // created before the last one accepted
    expect(await codeOf(m.handle(batch({ createdAt: NOW - 61_000 }).bytes))).toBe('BATCH_REPLAYED'); // replayWindowMs 60 s
    // two copies in flight at once: one is trained on, the other refused
    const twin = batch();
    const codes = await Promise.all([codeOf(m.handle(twin.bytes)), codeOf(m.handle(twin.bytes))]);
    expect(codes.sort()).toEqual(['BATCH_REPLAYED', 'NO_ERROR']);
    expect(m.status().batches).toBe(2);
  });

  it('after samplesPerUpdate samples submits its body update, signed as the contributor, zero over the head', async () => {
    const { m, initial, submitted } = setUp();
    for (let i = 0; i < 5; i++) await m.handle(batch().bytes); // 5 × 8 = 40 samples
    expect(submitted).toHaveLength(1);
    const u = submitted[0];
    expect(u).toMatchObject({ clientId: 'miner-1', minerId: 'miner-1', sampleCount: 40 });
    const delta = payloadToDelta(u.payload);
    const { head, body } = splitParams(delta, DEFAULT_MODEL, 1);
    expect(head.every((v) => v === 0)).toBe(true);
    expect(body.some((v) => v !== 0)).toBe(true);
    expect(u.baseModelHash).toEqual(sha256(deltaToPayload(initial))); // the genesis model
    const [ok] = await verifier.verify([{ publicKey: miner.identity.publicKey, message: encodeUpdateClaim(claimOfRecord('split-test', u)), signature: u.signature, context: SigningContext.update }]);
    expect(ok).toBe(true);
    // it trains on from its body: the next update carries all 80 samples since the global model
    for (let i = 0; i < 5; i++) await m.handle(batch().bytes);
    expect(submitted).toHaveLength(2);
    expect(submitted[1].sampleCount).toBe(80);
    const again = splitParams(payloadToDelta(submitted[1].payload), DEFAULT_MODEL, 1).body;
    expect(again).not.toEqual(body);
    expect(m.status()).toMatchObject({ pending: 80, bodyUpdates: 2 });
  });

  it('a new global model restarts the body from it; half an update\'s worth trained on the old one is submitted first', async () => {
    const { m, initial, submitted, newGlobal } = setUp();
    for (let i = 0; i < 3; i++) await m.handle(batch().bytes); // 24 samples: more than half of 40
    const next = Float32Array.from(initial, (v) => v + 0.001);
    newGlobal(next);
    const { bytes, b } = batch();
    const answer = decodeAnswer(await m.handle(bytes), b.count * WIDTH);
    expect(submitted).toHaveLength(1);
    expect(submitted[0]).toMatchObject({ sampleCount: 24, baseModelHash: sha256(deltaToPayload(initial)) });
    expect(m.status().pending).toBe(8);
    // the answer is the body step at the new global body
    expect(new Float32Array(answer.gradients.slice().buffer)).toEqual((await minerStep(next, b, defaultSplitConfig.cutDropout)).ga);
  });
});

describe('split protocol, client side', () => {
  it('a client trains its head with the miner over the protocol: the loss falls, the head moves, the body does not leave the miner', async () => {
    const cfg = config({ samplesPerUpdate: 100_000 }); // no body update here
    const { m } = setUp(cfg);
    const learner = new SplitLearner({ config: cfg, identity: client.identity, transport: { request: (_peer, protocol, body) => (protocol.endsWith('/split/1.0.0') ? m.handle(body) : Promise.reject(new Error(protocol))) }, runtime, clock: { ...systemClock, now: () => NOW } });
    const data = subset(loadEmbeddedMnist().train, Array.from({ length: 100 }, (_, i) => i));
    const head0 = learner.headOf(initParams(DEFAULT_MODEL, 1));
    const r1 = await learner.round(head0, data, { id: 'miner-1', peerId: 'p' }, 1);
    const r2 = await learner.round(r1.head, data, { id: 'miner-1', peerId: 'p' }, 2);
    expect(r1.batches).toBe((cfg.learning.E * 100) / cfg.learning.B); // E epochs of N/B batches
    expect(m.status().batches).toBe(2 * r1.batches);
    expect(r2.loss).toBeLessThan(r1.loss);
    expect(r1.head).not.toEqual(head0);
    expect(r1.head.length).toBe(runtime.headParams);
  });
});

describe('split protocol, client side: augmentation (learning.split.augment)', () => {
  it("a client's batches are its head's activations of its images distorted by the spec, keyed by (round seed, epoch, position); \"none\" sends them as they are", async () => {
    const data = subset(loadEmbeddedMnist().train, Array.from({ length: 20 }, (_, i) => i));
    const head0 = splitParams(initParams(DEFAULT_MODEL, 1), DEFAULT_MODEL, 1).head;
    const firstBatch = async (augment: string): Promise<SplitBatch> => {
      const cfg = config({ samplesPerUpdate: 100_000, augment });
      const { m } = setUp(cfg);
      const sent: SplitBatch[] = [];
      const learner = new SplitLearner({ config: cfg, identity: client.identity, transport: { request: (_peer, _protocol, body) => (sent.push(decodeBatch(body, { maxBatch: 16, width: WIDTH })), m.handle(body)) }, runtime, clock: { ...systemClock, now: () => NOW } });
      await learner.round(Float32Array.from(head0), data, { id: 'miner-1', peerId: 'p' }, 7);
      return sent[0];
    };
    // the client's first batch: the first B of its epoch-0 order (Rng(round seed) shuffles it)
    const B = config().learning.B;
    const order = new Rng(7).shuffle(Array.from({ length: 20 }, (_, i) => i)).slice(0, B);
    const expectFrom = async (b: SplitBatch, image: (j: number, pos: number) => Float32Array) => {
      const x = new Float32Array(B * 784);
      order.forEach((j, pos) => x.set(image(j, pos), pos * 784));
      const want = Float32Array.from(await runtime.headForward(head0, x, B));
      expect(bytesToFloats(b.activations)).toEqual(want);
      expect(Array.from(b.labels)).toEqual(order.map((j) => data.y[j]));
    };
    const raw = (j: number) => data.x.slice(j * 784, (j + 1) * 784);
    const spec = parseAugment(defaultSplitConfig.augment);
    expect(augments(spec)).toBe(true);
    const augmented = (j: number, pos: number) => {
      const out = new Float32Array(784);
      augmentImage(raw(j), 28, drawOf(spec, drawKey(7, 0, pos)), out);
      return out;
    };
    await expectFrom(await firstBatch(defaultSplitConfig.augment), augmented);
    await expectFrom(await firstBatch('none'), raw);
  });
});

describe('sealed split traffic (p2p.sealUpdates)', () => {
  it('a sealed batch is opened, trained on and answered under its answer key; clear, replayed and tampered requests are refused', async () => {
    const cfg = config();
    const kem = miner.identity.kemKeys![0];
    const directory = new KemDirectory([{ id: 'miner-1', kemPublicKey: kem.publicKey }]);
    const minerSealing = new UpdateSealing({ networkId: 'split-test', directory, keyRing: new KemKeyRing([kem]) });
    const clientSealing = new UpdateSealing({ networkId: 'split-test', directory });
    const { m, served } = setUp(cfg, { sealing: minerSealing });
    await m.start();
    expect([...served.keys()].sort()).toEqual(['/bfl/split-test/split-sealed/1.0.0', '/bfl/split-test/split/1.0.0']);
    expect(await codeOf(served.get('/bfl/split-test/split/1.0.0')!(batch().bytes))).toBe('SEAL_REQUIRED');
    const key = new Uint8Array(32).fill(7);
    const sealedOf = (inner: Uint8Array) => {
      const plain = new Uint8Array(32 + inner.length);
      plain.set(key);
      plain.set(inner, 32);
      return clientSealing.sealTo('miner-1', SealContext.split, plain, splitSealAd('split-test', 'miner-1'), NOW);
    };
    const handle = served.get('/bfl/split-test/split-sealed/1.0.0')!;
    const { bytes, b } = batch();
    const envelope = sealedOf(bytes);
    const answer = decodeAnswer(openAnswer(key, await handle(envelope)), b.count * WIDTH);
    expect(answer.gradients.length).toBe(b.count * WIDTH * 4);
    expect(m.status().batches).toBe(1);
    expect(await codeOf(handle(envelope))).toBe('SEAL_REPLAYED');
    const tampered = sealedOf(batch().bytes);
    tampered[tampered.length - 1] ^= 1;
    expect(await codeOf(handle(tampered))).toBe('SEAL_TAMPERED');
    // sealed for another miner's key binding (associated data): refused
    const other = clientSealing.sealTo('miner-1', SealContext.split, new Uint8Array(64), splitSealAd('split-test', 'miner-2'), NOW);
    expect(await codeOf(handle(other))).toBe('SEAL_TAMPERED');
    expect(() => openAnswer(new Uint8Array(32), sealAnswer(key, new Uint8Array(8)))).toThrow(expect.objectContaining({ code: 'SEAL_TAMPERED' }));
    expect(m.status().batches).toBe(1);
  });
});

describe('what a split node reports on /status', () => {
  it('a miner counts batches answered and refused (in its checks or before them, once each), its clients of the last minute, samples towards the next body update, a body update its intake refused, and the last error', async () => {
    let limited = false;
    const peers = {
      admit: async () => {
        if (limited) throw new BflError(ErrorCode.RATE_LIMITED, 'client-1 is over its split budget');
        return { memberId: 'client-1' } as never;
      },
      charge: () => undefined,
      member: async () => ({ memberId: 'client-1' }) as never,
    };
    const { m, served, advance } = setUp(config(), { peers, submit: async () => Promise.reject(new BflError(ErrorCode.RATE_LIMITED, 'own updates: one a second')) });
    await m.start();
    const send = served.get('/bfl/split-test/split/1.0.0')!;
    const good = batch();
    await send(good.bytes);
    for (let i = 0; i < 3; i++) await send(batch().bytes); // 4 × 8 = 32 samples of samplesPerUpdate 40
    expect(m.status()).toMatchObject({ batches: 4, refused: 0, samples: 32, pending: 32, sinceUpdate: 32, samplesPerUpdate: 40, bodyUpdates: 0, clients: ['client-1'], clientWindowMs: 60_000, lastError: null });
    expect(await codeOf(send(good.bytes))).toBe('BATCH_REPLAYED'); // refused in handle: counted once
    expect(m.status()).toMatchObject({ refused: 1, lastError: { what: 'batch', code: 'BATCH_REPLAYED', peer: 'client-1', at: NOW } });
    limited = true;
    expect(await codeOf(send(batch().bytes))).toBe('RATE_LIMITED'); // refused before handle
    expect(m.status()).toMatchObject({ batches: 4, refused: 2, lastError: { what: 'batch', code: 'RATE_LIMITED', message: 'client-1 is over its split budget', peer: 'peer' } }); // its PeerId: not admitted
    limited = false;
    await send(batch().bytes); // 40 samples: a body update, which our intake refuses
    expect(m.status()).toMatchObject({ batches: 5, bodyUpdates: 0, bodyUpdatesRefused: 1, sinceUpdate: 0, pending: 40, lastError: { what: 'body update', code: 'RATE_LIMITED', peer: null } });
    expect(await codeOf(m.handleHead(new Uint8Array([1, 2, 3]), 'client-1'))).toBe('MALFORMED');
    expect(m.status()).toMatchObject({ headShares: 0, headSharesRefused: 1, refused: 2, lastError: { what: 'head share', code: 'MALFORMED', peer: 'client-1' } });
    advance(60_001); // no batch for longer than the window: no client served
    expect(m.status().clients).toEqual([]);
  });

  it('a client reports its rounds, the miner and loss of the last, and a failed round', async () => {
    const cfg = config({ samplesPerUpdate: 100_000 });
    const { m } = setUp(cfg);
    let down = false;
    const learner = new SplitLearner({ config: cfg, identity: client.identity, transport: { request: (_peer, _protocol, body) => (down ? Promise.reject(new BflError(ErrorCode.UNAVAILABLE, 'miner-1 is not answering')) : m.handle(body)) }, runtime, clock: { ...systemClock, now: () => NOW } });
    expect(learner.status()).toEqual({ rounds: 0, failed: 0, miner: null, lastLoss: null, lastRoundAt: null, lastError: null });
    const data = subset(loadEmbeddedMnist().train, Array.from({ length: 20 }, (_, i) => i));
    const r = await learner.round(learner.headOf(initParams(DEFAULT_MODEL, 1)), data, { id: 'miner-1', peerId: 'p' }, 1);
    expect(learner.status()).toEqual({ rounds: 1, failed: 0, miner: 'miner-1', lastLoss: r.loss, lastRoundAt: NOW, lastError: null });
    down = true;
    await expect(learner.round(r.head, data, { id: 'miner-2', peerId: 'q' }, 2)).rejects.toThrow('not answering');
    expect(learner.status()).toEqual({ rounds: 1, failed: 1, miner: 'miner-1', lastLoss: r.loss, lastRoundAt: NOW, lastError: { what: 'round', code: 'UNAVAILABLE', message: 'miner-1 is not answering', peer: 'miner-2', at: NOW } });
  });
});

describe('head aggregation with differential privacy (eq. 4)', () => {
  const sharing = { headSharing: { clients: ['client-1'], clip: 1, noise: 0 } };
  /** client-1 shares its head; client-9 is admitted and does not. */
  const sharingConfig = () => config(sharing, [{ id: 'client-9', role: 'client', publicKey: stranger.json.publicKey }]);
  function share(o: { who?: typeof client; base: Uint8Array; delta: Float32Array; samples?: number; createdAt?: number }): Uint8Array {
    const who = o.who ?? client;
    const body = { clientId: who.identity.id, minerId: 'miner-1', baseModelHash: o.base, createdAt: o.createdAt ?? NOW + ++seq, samples: o.samples ?? 10, delta: floatsToBytes(o.delta) };
    return encodeHeadShare({ ...body, signature: who.identity.key.sign(encodeHeadClaim('split-test', body), SigningContext.splitHead) });
  }

  it('a client clips its head update to C and adds N(0, (σC)²) noise from the CSPRNG', () => {
    const head = Float32Array.from({ length: 100_000 }, (_, k) => (k % 2 ? 0.01 : -0.01));
    const global = new Float32Array(head.length);
    const clipped = privatise(head, global, 1, 0);
    const norm = Math.sqrt(clipped.reduce((t, v) => t + v * v, 0));
    expect(norm).toBeCloseTo(1, 4); // ‖Δ‖ = √(10^5 · 10^-4) = 3.16 > C = 1
    expect(clipped[0] / clipped[1]).toBeCloseTo(-1, 6); // direction kept
    expect(privatise(Float32Array.of(0.1, 0.2), new Float32Array(2), 1, 0)).toEqual(Float32Array.of(0.1, 0.2)); // within C: unchanged
    const a = privatise(head, global, 1, 0.5);
    const b = privatise(head, global, 1, 0.5);
    const noise = a.map((v, k) => v - clipped[k]);
    const mean = noise.reduce((t, v) => t + v, 0) / noise.length;
    const sd = Math.sqrt(noise.reduce((t, v) => t + (v - mean) ** 2, 0) / noise.length);
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(sd).toBeGreaterThan(0.49);
    expect(sd).toBeLessThan(0.51);
    expect(a).not.toEqual(b); // fresh noise every time, not a seed
  });

  it('a miner refuses shares of clients who did not opt in, forged, replayed or stale, and puts the weighted mean of the others in its update', async () => {
    const { m, initial, submitted } = setUp(sharingConfig());
    const base = sha256(deltaToPayload(initial));
    const H = runtime.headParams;
    expect(await codeOf(m.handleHead(share({ who: stranger, base, delta: new Float32Array(H) })))).toBe('UNAUTHORIZED');
    const forged = share({ base, delta: new Float32Array(H) });
    forged[forged.length - 3] ^= 1;
    expect(await codeOf(m.handleHead(forged))).toBe('BAD_SIGNATURE');
    expect(await codeOf(m.handleHead(share({ base: new Uint8Array(32), delta: new Float32Array(H) })))).toBe('UNKNOWN_BASE_MODEL');
    const nan = new Float32Array(H);
    nan[7] = Number.NaN;
    expect(await codeOf(m.handleHead(share({ base, delta: nan })))).toBe('NON_FINITE');
    expect(await codeOf(m.handleHead(share({ base, delta: new Float32Array(H - 1) })))).toBe('MALFORMED');
    const one = share({ base, delta: new Float32Array(H).fill(1), samples: 10 });
    await m.handleHead(one);
    expect(await codeOf(m.handleHead(one))).toBe('BATCH_REPLAYED');
    await m.handleHead(share({ base, delta: new Float32Array(H).fill(4), samples: 30 }));
    for (let i = 0; i < 5; i++) await m.handle(batch().bytes);
    expect(submitted).toHaveLength(1);
    const { head } = splitParams(payloadToDelta(submitted[0].payload), DEFAULT_MODEL, 1);
    expect(head.every((v) => v === (10 * 1 + 30 * 4) / 40)).toBe(true); // Σ D_n Δ_n / Σ D_n
    expect(m.status().headShares).toBe(2);
  });

  it('a share that reaches a miner after its last update on a base goes into its first update on the next global model; one already sent does not', async () => {
    const { m, initial, submitted, newGlobal } = setUp(sharingConfig());
    const base = sha256(deltaToPayload(initial));
    const H = runtime.headParams;
    await m.handleHead(share({ base, delta: new Float32Array(H).fill(2), samples: 10 }));
    for (let i = 0; i < 5; i++) await m.handle(batch().bytes); // the update: 40 samples, this share
    // a client's round ends with the batch that made the update; its share comes after it
    await m.handleHead(share({ base, delta: new Float32Array(H).fill(3), samples: 20 }));
    // the aggregation takes that update: a new global model, nothing left of the old base to send
    newGlobal(Float32Array.from(initial, (v) => v + 0.001));
    for (let i = 0; i < 5; i++) await m.handle(batch().bytes);
    expect(submitted).toHaveLength(2);
    const headOf = (u: SignedUpdate) => splitParams(payloadToDelta(u.payload), DEFAULT_MODEL, 1).head;
    expect(headOf(submitted[0]).every((v) => v === 2)).toBe(true);
    expect(submitted[1].sampleCount).toBe(40); // the new base's body, from its first sample
    expect(headOf(submitted[1]).every((v) => v === 3)).toBe(true); // the late share, alone
  });

  it('a client with headSharing.every = 3 shares at its rounds 3 and 6 only, clipped and noised as every round, takes the global head once after each share, and reports the accountant\'s (ε, δ)', async () => {
    const C = 1;
    const z = 0.02; // small enough that the clipping shows through the noise (below)
    const cfg = config({ samplesPerUpdate: 100_000, headSharing: { clients: ['client-1'], clip: C, noise: z, every: 3 } });
    const { m, initial } = setUp(cfg);
    const sent: Uint8Array[] = [];
    const learner = new SplitLearner({
      config: cfg,
      identity: client.identity,
      transport: { request: (_peer, protocol, body) => (protocol === splitHeadProtocol('split-test') ? (sent.push(body), m.handleHead(body)) : Promise.reject(new Error(protocol))) },
      runtime,
      clock: { ...systemClock, now: () => NOW },
    });
    const base = sha256(deltaToPayload(initial));
    const global = learner.headOf(initial);
    // a head update of norm 3.16 (> C): the share carries it clipped to C, plus N(0, (zC)²) per coordinate
    const head = Float32Array.from(global, (v, k) => v + (k % 2 ? 0.008 : -0.008));
    const norm = 0.008 * Math.sqrt(head.length);
    expect(learner.privacyAccount()).toEqual({ every: 3, shares: 0, clip: C, noise: z, delta: 1e-5, epsilon: 0 });
    expect(learner.takesGlobalHead(base)).toBe(true); // the first global model it sees
    expect(learner.takesGlobalHead(sha256(Uint8Array.of(9)))).toBe(false); // then its own head, until it shares
    const shared: boolean[] = [];
    for (let round = 1; round <= 7; round++) {
      shared.push(await learner.afterRound({ id: 'miner-1', peerId: 'p' }, head, initial, base, 10));
      if (round === 3) {
        expect(learner.takesGlobalHead(base)).toBe(false); // the model its share was built on
        expect(learner.takesGlobalHead(sha256(Uint8Array.of(1)))).toBe(true); // the next one: the aggregated head
        expect(learner.takesGlobalHead(sha256(Uint8Array.of(2)))).toBe(false); // once
      }
    }
    expect(shared).toEqual([false, false, true, false, false, true, false]);
    expect(sent).toHaveLength(2);
    expect(m.status().headShares).toBe(2);
    for (const bytes of sent) {
      const d = bytesToFloats(decodeHeadShare(bytes, runtime.headParams).delta);
      // the share's projection on the update: the clip factor C/‖Δ‖ = 0.32 (standard error 0.006)
      let dot = 0;
      let sq = 0;
      for (let k = 0; k < d.length; k++) {
        dot += d[k] * (head[k] - global[k]);
        sq += (head[k] - global[k]) ** 2;
      }
      expect(Math.abs(dot / sq - C / norm)).toBeLessThan(0.03);
      const noise = d.map((v, k) => v - (head[k] - global[k]) * (C / norm));
      const sd = Math.sqrt(noise.reduce((t, v) => t + v * v, 0) / noise.length);
      expect(sd).toBeGreaterThan(0.98 * z * C);
      expect(sd).toBeLessThan(1.02 * z * C);
      expect(Math.abs(noise.reduce((t, v) => t + v, 0) / noise.length)).toBeLessThan(0.001);
    }
    const account = (releases: number) => headShareAccount({ clip: C, noise: z, releases, delta: 1e-5 }).epsilon;
    expect(learner.privacyAccount()).toEqual({ every: 3, shares: 2, clip: C, noise: z, delta: 1e-5, epsilon: account(2) });
    expect(account(2)).toBeGreaterThan(account(1));
    learner.restoreShares(40); // after a restart: the shares sent before it still count
    expect(learner.privacyAccount()?.epsilon).toBe(account(40));
  });

  it('a private head reports no account; sharing without noise an unbounded ε (null); every < 1 is a BAD_CONFIG naming the field', () => {
    const make = (cfg: NetworkConfig) => new SplitLearner({ config: cfg, identity: client.identity, transport: { request: () => Promise.reject(new Error('no network')) }, runtime, clock: systemClock });
    expect(make(config()).privacyAccount()).toBeNull();
    expect(make(config()).takesGlobalHead(new Uint8Array(32))).toBe(false); // a private head is never replaced
    const noiseless = make(config({ headSharing: { clients: 'all', clip: 1, noise: 0 } }));
    noiseless.restoreShares(1);
    expect(noiseless.privacyAccount()).toEqual({ every: 1, shares: 1, clip: 1, noise: 0, delta: 1e-5, epsilon: null });
    expect(() => config({ headSharing: { clients: 'all', clip: 1, noise: 1, every: 0 } })).toThrow(/learning\.split\.headSharing\.every: expected an integer >= 1/);
    expect(() => config({ headSharing: { clients: 'all', clip: 1, noise: 1, every: 2.5 } })).toThrow(/learning\.split\.headSharing\.every: expected an integer/);
  });
});

describe('split mode in the config and the block rules', () => {
  it('the miners are the contributors of a split network; a federated network keeps its rules (and genesis)', () => {
    const split = config();
    expect(split.learning.mode).toBe('split');
    expect(contributorRole(chainParamsOf(split, new Uint8Array(8)))).toBe('miner');
    const fed = { ...split, learning: { ...split.learning, mode: 'federated' as const } };
    expect(chainParamsOf(fed, new Uint8Array(8)).rules).toBe(rulesOf(defaultAggregationConfig));
    expect(contributorRole(chainParamsOf(fed, new Uint8Array(8)))).toBe('client');
  });

  it("a split network's blocks record miners' body updates and refuse clients' updates (UNKNOWN_CLIENT)", async () => {
    const net = makeNetwork({ phi: 5 });
    net.params.rules = rulesOf(defaultAggregationConfig, { mode: 'split', split: defaultSplitConfig });
    const store = await ChainStore.open({ datadir: await tmpDir('bfl-split-val-'), params: net.params, signatures: verifier, now: () => 1_700_000_500_000 });
    try {
      const [m1, m2] = net.miners;
      const byClient = mineBlock(net, store.tip, m1, { records: [signedRecord(net, net.clients[0], m1.id, store.tip.modelHash)] });
      expect(await codeOf(store.addBlock(byClient))).toBe('UNKNOWN_CLIENT');
      const byMiner = mineBlock(net, store.tip, m1, { records: [signedRecord(net, m2, m2.id, store.tip.modelHash)] });
      expect((await store.addBlock(byMiner)).status).toBe('connected');
    } finally {
      await store.close();
    }
  });

  it('a client\'s federated upload to a split network is WRONG_MODE, a miner\'s body update passes the shape checks', () => {
    const cfg = config();
    const fetcher = new UpdateFetcher({ config: cfg, membership: new Membership(cfg.members), pool: { get: () => undefined } as never, clock: { ...systemClock, now: () => NOW } } as never, 64);
    const u = { minerId: 'miner-1', baseModelHash: new Uint8Array(32), updateDigest: new Uint8Array(32), sampleCount: 10, createdAt: NOW, signature: new Uint8Array(0), payloadBytes: 64 };
    expect(() => fetcher.checkShape({ ...u, clientId: 'client-1' })).toThrow(expect.objectContaining({ code: 'WRONG_MODE' }));
    expect(() => fetcher.checkShape({ ...u, clientId: 'miner-1' })).not.toThrow();
  });

  it('a cut the model cannot take is a BAD_CONFIG naming learning.split.cut', () => {
    expect(() => config({ cut: 2 })).toThrow(/learning\.split\.cut: expected at most 1/);
    expect(() => config({ maxBatch: 0 })).toThrow(/learning\.split\.maxBatch/);
    expect(() => config({ headSharing: { clients: ['client-7'], clip: 1, noise: 0.1 } })).toThrow(/learning\.split\.headSharing\.clients\[0\]: expected the id of a client in members/);
  });
});
