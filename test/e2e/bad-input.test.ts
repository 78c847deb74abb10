/**
 * Bad input over the wire, against a running miner: each kind is refused with its code, the
 * sender is penalised, and the honest client's traffic goes on. The attacker is an in-process
 * libp2p node holding an admitted miner's keys (miner-2) and an admitted client's (client-2).
 */
import { afterEach, expect, it } from 'vitest';
import { multiaddr } from '@multiformats/multiaddr';
import { chainParamsOf, loadNetworkConfig } from '../../src/config/network.ts';
import { buildBlockTemplate, signBlock } from '../../src/core/block-builder.ts';
import { SigningContext } from '../../src/core/contexts.ts';
import { blockHash, claimOfRecord, decodeBlock, encodeBlock, encodeUpdateClaim } from '../../src/core/encoding.ts';
import { sha256 } from '../../src/core/hash.ts';
import { Membership } from '../../src/core/params.ts';
import { mineHeaderSync } from '../../src/core/pow.ts';
import { generateIdentity, loadKeyFile, loadPeerKey, type Identity } from '../../src/crypto/keyfile.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { type SignedUpdate, deltaToPayload, encodeSignedUpdate, payloadToDelta, recordOf } from '../../src/core/update.ts';
import { decodeHead, decodeModelAfter, encodeBlockAnnouncement, encodeChainRequest } from '../../src/net/messages.ts';
import { createP2P } from '../../src/net/p2p.ts';
import { PeerBook } from '../../src/net/peer-book.ts';
import { protocols, topics } from '../../src/net/protocols.ts';
import { RemoteError, request, serve } from '../../src/net/reqres.ts';
import { Libp2pTransport } from '../../src/net/transport.ts';
import { initialModelOf } from '../../src/node/daemon.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { Cluster } from '../helpers/cluster.ts';

let cluster: Cluster | undefined;
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
  await cluster?.stopAll();
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    return e instanceof RemoteError ? e.code : `local:${(e as Error).name}:${(e as Error).message}`;
  }
}

function signedUpdate(cfgId: string, client: Identity, minerId: string, base: Uint8Array, delta: Float32Array, over: { sampleCount?: number; createdAt?: number } = {}): SignedUpdate {
  const payload = deltaToPayload(delta);
  const a = { clientId: client.id, minerId, baseModelHash: base, updateDigest: sha256(payload), sampleCount: 50, createdAt: Date.now(), payloadBytes: payload.length, ...over };
  const signature = client.key.sign(encodeUpdateClaim(claimOfRecord(cfgId, a)), SigningContext.update);
  return { ...a, signature, payload };
}

it('oversized, malformed, badly signed, unknown, replayed updates and a block with a tampered model are refused with their codes', { timeout: 180_000 }, async () => {
  // The clear protocols (sealed updates: sealed-updates.test.ts); with sealing on they answer SEAL_REQUIRED.
  const c = (cluster = await Cluster.create({ miners: 2, clients: 2, phi: 1, p2p: { sealUpdates: false } }));
  c.start('miner-1');
  c.start('client-1');
  const [before] = await c.waitFor(['miner-1'], ([s]) => s.aggregations >= 1, 60_000, 'honest traffic to start');

  const cfg = await loadNetworkConfig(c.init.config);
  const params = chainParamsOf(cfg, new Uint8Array(initialModelOf(cfg).buffer));
  const evilMiner = await loadKeyFile(c.node('miner-2').identity);
  const evilClient = await loadKeyFile(c.node('client-2').identity);
  const node = await createP2P({ privateKey: await loadPeerKey(c.node('miner-2').identity), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], networkId: cfg.networkId, gossip: true, mdns: false, ipColocationPenalty: false, maxMessageBytes: 65536 });
  cleanup.push(() => node.stop());
  const peers = new PeerBook({ transport: new Libp2pTransport(node), identity: evilMiner, networkId: cfg.networkId, membership: new Membership(cfg.members), verifier: new InThreadVerifier(), timeoutMs: 5000, logger: silentLogger });
  await peers.start();
  const m1 = c.node('miner-1');
  const target = multiaddr(`${m1.listen}/p2p/${m1.peerId}`);
  const proto = protocols(cfg.networkId);
  const send = (bytes: Uint8Array) => request(node, target, proto.submit, bytes, { maxResponseBytes: 4096, timeoutMs: 10_000 });
  const chain = async (q: Parameters<typeof encodeChainRequest>[0]) => request(node, target, proto.chain, encodeChainRequest(q), { maxResponseBytes: 16 << 20, timeoutMs: 10_000 });

  const head = decodeHead(await chain({ kind: 'head' }));
  const model = decodeModelAfter(await chain({ kind: 'model-after', anchor: new Uint8Array(32) }), 16 << 20);
  const dim = model.model.length / 4;
  const delta = () => Float32Array.from({ length: dim }, () => (Math.random() - 0.5) * 1e-3);
  const penalty = async () => ((await c.status('miner-1'))!.penalties['miner-2'] as number) ?? 0;

  // 1. oversized: more than maxUpdateBytes
  expect(await codeOf(send(new Uint8Array(cfg.p2p.maxUpdateBytes + 9000)))).toBe('OVERSIZED');
  // 2. malformed bytes
  expect(await codeOf(send(new Uint8Array(300).fill(7)))).toBe('MALFORMED');
  // 3. bad signature
  const good = signedUpdate(cfg.networkId, evilClient, 'miner-1', head.modelHash, delta());
  const badSig = Uint8Array.from(good.signature);
  badSig[100] ^= 1;
  expect(await codeOf(send(encodeSignedUpdate({ ...good, signature: badSig })))).toBe('BAD_SIGNATURE');
  // 4. unknown client
  const stranger = generateIdentity('client-99', 'client').identity;
  expect(await codeOf(send(encodeSignedUpdate(signedUpdate(cfg.networkId, stranger, 'miner-1', head.modelHash, delta()))))).toBe('UNKNOWN_CLIENT');
  // 4b. hostile fields, properly signed (issue 13): NaN / Infinity in the payload, absurd sample counts and times
  const nan = delta();
  nan[3] = Number.NaN;
  expect(await codeOf(send(encodeSignedUpdate(signedUpdate(cfg.networkId, evilClient, 'miner-1', head.modelHash, nan))))).toBe('NON_FINITE');
  const inf = delta();
  inf[dim - 1] = Number.NEGATIVE_INFINITY;
  expect(await codeOf(send(encodeSignedUpdate(signedUpdate(cfg.networkId, evilClient, 'miner-1', head.modelHash, inf))))).toBe('NON_FINITE');
  expect(await codeOf(send(encodeSignedUpdate(signedUpdate(cfg.networkId, evilClient, 'miner-1', head.modelHash, delta(), { sampleCount: 0 }))))).toBe('OUT_OF_RANGE');
  expect(await codeOf(send(encodeSignedUpdate(signedUpdate(cfg.networkId, evilClient, 'miner-1', head.modelHash, delta(), { sampleCount: 2 ** 32 - 1 }))))).toBe('OUT_OF_RANGE');
  expect(await codeOf(send(encodeSignedUpdate(signedUpdate(cfg.networkId, evilClient, 'miner-1', head.modelHash, delta(), { createdAt: 0 }))))).toBe('OUT_OF_RANGE');
  expect(await codeOf(send(encodeSignedUpdate(signedUpdate(cfg.networkId, evilClient, 'miner-1', head.modelHash, delta(), { createdAt: Date.now() + 365 * 86_400_000 }))))).toBe('TIMESTAMP_FUTURE');
  // 5. replay: the same signed update twice
  expect(await codeOf(send(encodeSignedUpdate(good)))).toBe('OK');
  expect(await codeOf(send(encodeSignedUpdate(good)))).toBe('DUPLICATE_RECORD');
  const afterUpdates = await penalty();
  expect(afterUpdates).toBeGreaterThanOrEqual(10 * 4); // oversized, malformed, bad signature, unknown client (+2 for the replay)

  // 6. a block whose global model was tampered with: structurally valid, wrong maths
  const tipTimestamp = decodeBlock(await chain({ kind: 'block', hash: head.hash })).header.timestamp;
  const own = signedUpdate(cfg.networkId, evilClient, 'miner-2', head.modelHash, delta());
  const tampered = payloadToDelta(model.model).map((v) => v + 1);
  const tamperedBytes = deltaToPayload(tampered);
  const parent = { hash: head.hash, parentHash: new Uint8Array(32), height: head.height, timestamp: tipTimestamp, work: head.work, rounds: head.rounds, anchor: head.anchor, modelHash: head.modelHash, pending: [] };
  const template = buildBlockTemplate({
    parent,
    params,
    minerId: 'miner-2',
    timestamp: Date.now(),
    records: [recordOf(own)],
    aggregation: { type: 'aggregation', round: head.rounds, baseModelHash: head.modelHash, modelHash: sha256(tamperedBytes), model: tamperedBytes, entries: [{ clientId: 'client-2', updateDigest: own.updateDigest, high: true, weight: 1 }], rewards: [{ id: 'client-2', amount: params.baseReward }], stateHash: sha256(new Uint8Array(0)) },
  });
  const block = signBlock({ ...template, header: mineHeaderSync(template.header)! }, cfg.networkId, evilMiner.key);
  const blockBytes = encodeBlock(block);
  // serve what miner-1 will ask for: the block body and the raw update it aggregates
  await serve(node, proto.chain, async () => blockBytes, { maxRequestBytes: 1024, timeoutMs: 5000 });
  await serve(node, proto.update, async () => encodeSignedUpdate(own), { maxRequestBytes: 1024, timeoutMs: 5000 });
  // Mining the block above blocked this process's event loop (13 s on a loaded machine): the
  // miner's ping monitor may have dropped our connection as dead, and its close arrives only
  // now. Let it arrive, then dial (a fresh connection if it was closed); else the announcement
  // below went to a closed connection (seen on main and here, about one run in three).
  await new Promise((r) => setTimeout(r, 1000));
  await node.dial(target);
  await peers.identify(node.getConnections()[0].remotePeer.toString());
  const pubsub = node.services.pubsub!;
  pubsub.subscribe(topics(cfg.networkId).blocks);
  const until = Date.now() + 15_000;
  while (pubsub.getSubscribers(topics(cfg.networkId).blocks).length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
  await pubsub.publish(topics(cfg.networkId).blocks, encodeBlockAnnouncement({ header: block.header, blockBytes: blockBytes.length }));
  const refused = await c.waitFor(['miner-1'], ([s]) => ((s.penalties['miner-2'] as number) ?? 0) >= afterUpdates + 50, 30_000, 'the tampered block to be refused and penalised');
  expect(refused[0].tip).not.toBe(Buffer.from(blockHash(block.header)).toString('hex'));
  expect(await c.log('miner-1')).toMatch(/"code":"BAD_AGGREGATION"/);

  // only admitted miners may fetch raw updates: an outsider and an admitted client are refused
  const updateReq = new Uint8Array([...new TextEncoder().encode('\u0008client-1'), ...new Uint8Array(32)]);
  const { generateKeyPair } = await import('@libp2p/crypto/keys');
  const outsider = await createP2P({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], networkId: cfg.networkId, gossip: false, mdns: false, ipColocationPenalty: false, maxMessageBytes: 65536 });
  cleanup.push(() => outsider.stop());
  expect(await codeOf(request(outsider, target, proto.update, updateReq, { maxResponseBytes: 8 << 20, timeoutMs: 10_000 }))).toBe('UNAUTHORIZED');
  const asClient = await createP2P({ privateKey: await loadPeerKey(c.node('client-2').identity), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], networkId: cfg.networkId, gossip: false, mdns: false, ipColocationPenalty: false, maxMessageBytes: 65536 });
  cleanup.push(() => asClient.stop());
  await new PeerBook({ transport: new Libp2pTransport(asClient), identity: evilClient, networkId: cfg.networkId, membership: new Membership(cfg.members), verifier: new InThreadVerifier(), timeoutMs: 5000, logger: silentLogger }).start();
  expect(await codeOf(request(asClient, target, proto.update, updateReq, { maxResponseBytes: 8 << 20, timeoutMs: 10_000 }))).toBe('UNAUTHORIZED');

  // honest traffic went on, and the honest client was never penalised
  const [after] = await c.waitFor(['miner-1'], ([s]) => s.aggregations >= before.aggregations + 3, 60_000, 'honest aggregations to continue');
  expect(after.penalties['client-1']).toBeUndefined();
  const client = await c.status('client-1');
  expect(client!.uploaded).toBeGreaterThan(0);
});
