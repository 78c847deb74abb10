/**
 * The split-learning protocols behind the member check, the per-member request and byte budgets
 * and the penalties of the other protocols (issue 13, item 7): a real peer book, real ML-DSA keys
 * and real onnxruntime graphs on the in-memory transport of test/helpers/hub.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NetworkConfig, chainParamsOf, parseNetworkConfig } from '../../src/config/network.ts';
import { SigningContext } from '../../src/core/contexts.ts';
import { ErrorCode } from '../../src/core/errors.ts';
import { Membership, createGenesisBlock, genesisHash } from '../../src/core/params.ts';
import { deltaToPayload } from '../../src/core/update.ts';
import { type Identity, generateIdentity } from '../../src/crypto/keyfile.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { DEFAULT_MODEL, initParams } from '../../src/learn/model.ts';
import { SplitRuntime } from '../../src/learn/split.ts';
import { PeerBook, type PeerPolicy } from '../../src/net/peer-book.ts';
import { decodeAnswer, encodeBatch, encodeBatchClaim, floatsToBytes, splitProtocol } from '../../src/net/split.ts';
import { SplitMiner, splitRequestBudget } from '../../src/node/split-miner.ts';
import { Verdicts } from '../../src/node/verdicts.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { Hub, HubTransport, testClock } from '../helpers/hub.ts';

const ids = {
  miner: generateIdentity('miner-1', 'miner').identity,
  honest: generateIdentity('client-1', 'client').identity,
  rogue: generateIdentity('client-2', 'client').identity,
};
const WIDTH = DEFAULT_MODEL.layers[1];

function config(learning: Record<string, unknown> = {}): NetworkConfig {
  return parseNetworkConfig(
    {
      networkId: 'n',
      genesisTime: 0,
      learning: { mode: 'split', split: { maxBatch: 16 }, ...learning },
      p2p: { sealUpdates: false },
      members: Object.values(ids).map((i) => ({ id: i.id, role: i.role, publicKey: Buffer.from(i.publicKey).toString('hex') })),
    },
    '(test)',
  );
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

/** A miner (peer book, verdicts, split miner) and the given peers on one hub. */
async function setUp(policy: Partial<PeerPolicy> = {}, cfg = config()) {
  const hub = new Hub();
  const clock = testClock();
  const membership = new Membership(cfg.members);
  const transport = new HubTransport(hub, 'M', '10.0.0.1');
  const book = (t: HubTransport, identity: Identity, p: Partial<PeerPolicy> = {}) =>
    new PeerBook({ transport: t, identity, networkId: cfg.networkId, membership, verifier, timeoutMs: 1000, logger: silentLogger, clock, policy: { helloTimeoutMs: 200, ...p } });
  const peers = book(transport, ids.miner, policy);
  await peers.start();
  const params = chainParamsOf(cfg, deltaToPayload(initParams(DEFAULT_MODEL, 1)));
  const genesis = createGenesisBlock(params);
  const m = new SplitMiner(
    { config: cfg, identity: ids.miner },
    {
      store: { tip: { anchor: genesisHash(params) } as never, getBlock: async () => genesis },
      membership,
      submit: async () => undefined,
      transport,
      peers,
      verifier,
      verdicts: new Verdicts({ peers, logger: silentLogger }),
      runtime,
      clock,
      logger: silentLogger,
    },
  );
  await m.start();
  /** A member (its own peer book says hello) or, without an identity, an outsider, connected to the miner. */
  const join = async (peerId: string, ip: string, identity?: Identity) => {
    const t = new HubTransport(hub, peerId, ip);
    if (identity) await book(t, identity).start();
    hub.connect('M', peerId);
    await new Promise((r) => setTimeout(r, 60)); // the hellos
    return t;
  };
  let seq = 0;
  /** A batch of `count` samples signed by `who` (createdAt strictly increasing). */
  const batch = (who: Identity, count = 8) => {
    const body = { clientId: who.id, minerId: 'miner-1', createdAt: clock.t + ++seq, count, width: WIDTH, activations: floatsToBytes(Float32Array.from({ length: count * WIDTH }, (_, k) => ((k * 7919) % 13) / 13)), labels: Uint8Array.from({ length: count }, (_, i) => i % 10) };
    return encodeBatch({ ...body, signature: who.key.sign(encodeBatchClaim(cfg.networkId, body), SigningContext.splitBatch) });
  };
  const send = (from: HubTransport, bytes: Uint8Array) => from.request('M', splitProtocol(cfg.networkId), bytes, { timeoutMs: 5000 }).then(() => 'ok', (e) => e.code as string);
  return { m, peers, clock, join, batch, send, cfg, transport };
}

describe('split protocols: members only, within their budgets', () => {
  it('an outsider is refused UNAUTHORIZED at the gate (before its request is read), and penalised by address', async () => {
    const { m, peers, join, batch, send, transport, cfg } = await setUp();
    expect(transport.gates.has(splitProtocol(cfg.networkId))).toBe(true);
    const x = await join('X', '10.9.9.9');
    // even a validly signed batch of an admitted client: the sender is not a member
    expect(await send(x, batch(ids.honest))).toBe(ErrorCode.UNAUTHORIZED);
    expect(m.status().batches).toBe(0);
    expect(peers.penaltyReport()).toEqual({ 'ip:10.9.9.9': 10 });
  });

  it("a member's batch in another client's name is refused UNAUTHORIZED (batches are never relayed)", async () => {
    const { m, join, batch, send, peers } = await setUp();
    const r = await join('R', '10.0.0.2', ids.rogue);
    expect(await send(r, batch(ids.honest))).toBe(ErrorCode.UNAUTHORIZED);
    expect(m.status().batches).toBe(0);
    expect(peers.penaltyReport()).toEqual({ 'client-2': 10 });
  });

  it("honest split traffic passes: two local rounds' batches back to back, then a round every N / rate s", async () => {
    // the defaults: E = 5, N = 100, B = 10, rate = 20/s: 50 batches a round, a round every 5 s
    const { m, join, batch, send, clock, peers, cfg } = await setUp();
    const budget = splitRequestBudget(cfg);
    expect(budget).toEqual({ perSecond: 40, burst: 100 });
    const h = await join('H', '10.0.0.3', ids.honest);
    const codes: string[] = [];
    for (let i = 0; i < 100; i++) codes.push(await send(h, batch(ids.honest, 10)));
    for (let round = 0; round < 4; round++) {
      clock.t += 5000;
      for (let i = 0; i < 50; i++) codes.push(await send(h, batch(ids.honest, 10)));
    }
    expect(codes.filter((c) => c !== 'ok')).toEqual([]);
    expect(m.status().batches).toBe(300);
    expect(peers.penaltyReport()).toEqual({});
  });

  it('a member over its request budget is limited (RATE_LIMITED, 2 points each) while another member is served', async () => {
    const { m, join, batch, send, clock, peers, cfg } = await setUp();
    const { perSecond, burst } = splitRequestBudget(cfg);
    const r = await join('R', '10.0.0.2', ids.rogue);
    const h = await join('H', '10.0.0.3', ids.honest);
    const codes: string[] = [];
    for (let i = 0; i < burst + 10; i++) codes.push(await send(r, batch(ids.rogue, 1)));
    expect(codes.slice(0, burst).filter((c) => c !== 'ok')).toEqual([]);
    expect(codes.slice(burst)).toEqual(Array(10).fill(ErrorCode.RATE_LIMITED));
    expect(peers.penaltyReport()).toEqual({ 'client-2': 20 });
    expect(await send(h, batch(ids.honest))).toBe('ok');
    // the rate refills the bucket
    clock.t += Math.ceil(1000 / perSecond) * 5;
    expect(await send(r, batch(ids.rogue, 1))).toBe('ok');
    expect(m.status().batches).toBe(burst + 2);
  });

  it('a member over its byte budget is limited: batch and answer bytes count, as a download does', async () => {
    // 100 KB/s: 800 KB of burst (8 s); a 16-sample batch is ~15 KB in and ~13 KB out
    const { join, batch, clock, cfg } = await setUp({ downloadBytesPerSecond: 100_000 });
    const r = await join('R', '10.0.0.2', ids.rogue);
    const sizes: number[] = [];
    const codes: string[] = [];
    for (let i = 0; i < 60; i++) {
      const bytes = batch(ids.rogue, 16);
      codes.push(await r.request('M', splitProtocol(cfg.networkId), bytes, { timeoutMs: 5000 }).then((res) => (sizes.push(bytes.length + res.length), 'ok'), (e) => e.code));
    }
    // admitted while the bucket is not in debt: the batch that overdraws it is the last served,
    // well within the request burst of 100
    const served = Math.ceil(800_000 / sizes[0]);
    expect(served).toBeLessThan(40);
    expect(codes.slice(0, served)).toEqual(Array(served).fill('ok'));
    expect(new Set(codes.slice(served))).toEqual(new Set([ErrorCode.RATE_LIMITED]));
    clock.t += 1000; // 100 KB paid back: more than one batch's overdraft
    expect(decodeAnswer(await r.request('M', splitProtocol(cfg.networkId), batch(ids.rogue, 16), { timeoutMs: 5000 }), 16 * WIDTH).gradients.length).toBe(16 * WIDTH * 4);
  });
});
