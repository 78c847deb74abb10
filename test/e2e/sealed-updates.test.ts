/**
 * Sealed updates over real libp2p (issue 16). First: the bytes a client's upload puts into the
 * libp2p stream to its miner do not contain the update's float32 payload when sealed, and do
 * when sealing is off (Noise encrypts the TCP bytes either way, so the check is made on the
 * stream, above Noise: what a party that breaks X25519 would read). Then: a running miner with a
 * rotated KEM key refuses each kind of bad sealed input with its code and penalises the sender,
 * while honest sealed traffic goes on.
 */
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { afterEach, expect, it } from 'vitest';
import { loadNetworkConfig } from '../../src/config/network.ts';
import { SigningContext } from '../../src/core/contexts.ts';
import { claimOfRecord, encodeUpdateClaim } from '../../src/core/encoding.ts';
import { sha256 } from '../../src/core/hash.ts';
import { Membership } from '../../src/core/params.ts';
import { KemDirectory, NO_END, encodeKemAnnouncement, signKemAnnouncement } from '../../src/crypto/kem-keys.ts';
import { type Identity, generateIdentity, loadKeyFile, loadPeerKey, rotateKemInKeyFile } from '../../src/crypto/keyfile.ts';
import { NativeMlKem } from '../../src/crypto/mlkem.ts';
import { KemKeyRing } from '../../src/crypto/seal.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { type SignedUpdate, decodeSignedUpdate, deltaToPayload, encodeSignedUpdate } from '../../src/core/update.ts';
import { decodeHead, encodeChainRequest, encodePeerRecord, peerRecordMessage } from '../../src/net/messages.ts';
import { createP2P } from '../../src/net/p2p.ts';
import { PeerBook } from '../../src/net/peer-book.ts';
import { protocols } from '../../src/net/protocols.ts';
import { FrameChannel } from '../../src/net/frames.ts';
import { RemoteError, request } from '../../src/net/reqres.ts';
import { UpdateSealing, sealedProtocols } from '../../src/net/sealed-updates.ts';
import { Libp2pTransport } from '../../src/net/transport.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { Cluster } from '../helpers/cluster.ts';

let cluster: Cluster | undefined;
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
  await cluster?.stopAll();
  cluster = undefined;
});

function signedUpdate(networkId: string, client: Identity, minerId: string, base: Uint8Array, delta: Float32Array): SignedUpdate {
  const payload = deltaToPayload(delta);
  const a = { clientId: client.id, minerId, baseModelHash: base, updateDigest: sha256(payload), sampleCount: 50, createdAt: Date.now(), payloadBytes: payload.length };
  const signature = client.key.sign(encodeUpdateClaim(claimOfRecord(networkId, a)), SigningContext.update);
  return { ...a, signature, payload };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    return e instanceof RemoteError ? e.code : `local:${(e as Error).message}`;
  }
}

it("a client's sealed upload carries none of the float32 payload on the libp2p stream; in clear it does", { timeout: 60_000 }, async () => {
  const networkId = 'seal-test';
  const miner = generateIdentity('miner-1', 'miner').identity;
  const client = generateIdentity('client-1', 'client').identity;
  const membership = new Membership([miner, client].map((m) => ({ id: m.id, role: m.role, publicKey: m.publicKey })));
  const verifier = new InThreadVerifier();
  const start = async (id: Identity, bootstrap: string[], kemDirectory: KemDirectory) => {
    const node = await createP2P({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, networkId, gossip: false, mdns: false, ipColocationPenalty: false, maxMessageBytes: 65536 });
    cleanup.push(() => node.stop());
    const transport = new Libp2pTransport(node);
    const peers = new PeerBook({ transport, identity: id, networkId, membership, verifier, timeoutMs: 5000, logger: silentLogger, kemDirectory });
    await peers.start();
    return { node, transport, peers };
  };
  const m = await start(miner, [], new KemDirectory());
  // The client's directory starts empty: the miner's KEM key must come from its signed peer record.
  const directory = new KemDirectory();
  const c = await start(client, [`${m.node.getMultiaddrs()[0]}`], directory);
  const minerPeer = m.node.peerId.toString();
  const minerSealing = new UpdateSealing({ networkId, directory: new KemDirectory(), keyRing: new KemKeyRing(miner.kemKeys!) });
  const clientSealing = new UpdateSealing({ networkId, directory, refresh: (p) => c.peers.reidentify(p) });

  // the miner side records exactly what each stream delivered, and opens it
  const received: { proto: string; bytes: Uint8Array; update: SignedUpdate }[] = [];
  const sealed = sealedProtocols(networkId);
  const clear = protocols(networkId);
  await m.transport.serve(sealed.submit, async (req) => (received.push({ proto: 'sealed', bytes: Uint8Array.from(req), update: minerSealing.decode(req, 'upload', Date.now(), 4 << 20) }), new Uint8Array(0)), { maxRequestBytes: 8 << 20, timeoutMs: 10_000 });
  await m.transport.serve(clear.submit, async (req) => (received.push({ proto: 'clear', bytes: Uint8Array.from(req), update: decodeSignedUpdate(req, 4 << 20) }), new Uint8Array(0)), { maxRequestBytes: 8 << 20, timeoutMs: 10_000 });

  for (let t = Date.now() + 10_000; !directory.keyFor('miner-1', Date.now()) && Date.now() < t; ) {
    await c.peers.identify(minerPeer);
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(Buffer.from(directory.keyFor('miner-1', Date.now())!)).toEqual(Buffer.from(miner.kemKeys![0].publicKey));

  const delta = Float32Array.from({ length: 159_010 }, (_, i) => Math.sin(i) * 0.01);
  const u = signedUpdate(networkId, client, 'miner-1', new Uint8Array(32), delta);
  const opts = { maxResponseBytes: 1024, timeoutMs: 10_000 };
  // what Client.submit sends, sealed and in clear
  await c.transport.request(minerPeer, sealed.submit, clientSealing.encode(u, 'upload', 'miner-1', Date.now()), opts);
  await c.transport.request(minerPeer, clear.submit, encodeSignedUpdate(u), opts);
  expect(received.map((r) => r.proto)).toEqual(['sealed', 'clear']);

  const payload = Buffer.from(u.payload);
  const contains = (hay: Uint8Array, needle: Buffer) => Buffer.from(hay.buffer, hay.byteOffset, hay.length).indexOf(needle) >= 0;
  // any 16 bytes (4 parameters) of the payload, at the start, the middle and the end
  const probes = [0, payload.length / 2, payload.length - 16].map((o) => payload.subarray(o, o + 16));
  for (const p of probes) {
    expect(contains(received[0].bytes, p)).toBe(false);
    expect(contains(received[1].bytes, p)).toBe(true);
  }
  // both arrive as the same signed update
  for (const r of received) expect(Buffer.compare(r.update.payload, payload)).toBe(0);
  expect(received[0].bytes.length - received[1].bytes.length).toBeLessThan(1200);
  // what sealing cost is counted (CPU of the sealing thread), for /status and bench kem --testnet
  expect(clientSealing.stats()).toMatchObject({ sealed: 1, opened: 0 });
  expect(minerSealing.stats()).toMatchObject({ sealed: 0, opened: 1 });
  // The thread's CPU clock may tick coarsely (one open of ~0.2 ms read 0 in a CI run): the times
  // are counted, never negative, and no more than the whole process used.
  expect(clientSealing.stats().sealMs).toBeGreaterThanOrEqual(0);
  expect(minerSealing.stats().openMs).toBeGreaterThanOrEqual(0);
  expect(minerSealing.stats().processCpuMs).toBeGreaterThanOrEqual(minerSealing.stats().openMs);
});

it('a running miner refuses bad sealed updates with their codes, penalises the sender, and honest sealed traffic goes on', { timeout: 180_000 }, async () => {
  const c = (cluster = await Cluster.create({ miners: 2, clients: 2, phi: 1 }));
  // miner-1 rotated its KEM key with no overlap: the key in the config (genesis) is expired,
  // the new one is announced in its peer record
  await rotateKemInKeyFile(c.node('miner-1').identity, Date.now(), { overlapMs: 0 });
  c.start('miner-1');
  c.start('client-1');
  const [before] = await c.waitFor(['miner-1'], () => true, 60_000, 'miner-1 to start');

  const cfg = await loadNetworkConfig(c.init.config);
  expect(cfg.p2p.sealUpdates).toBe(true);
  const rotated = await loadKeyFile(c.node('miner-1').identity);
  const evilClient = await loadKeyFile(c.node('client-2').identity);
  const node = await createP2P({ privateKey: await loadPeerKey(c.node('client-2').identity), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], networkId: cfg.networkId, gossip: false, mdns: false, ipColocationPenalty: false, maxMessageBytes: 65536 });
  cleanup.push(() => node.stop());
  const directory = new KemDirectory(cfg.members);
  const peers = new PeerBook({ transport: new Libp2pTransport(node), identity: evilClient, networkId: cfg.networkId, membership: new Membership(cfg.members), verifier: new InThreadVerifier(), timeoutMs: 5000, logger: silentLogger, kemDirectory: directory });
  await peers.start();
  const m1 = c.node('miner-1');
  const target = multiaddr(`${m1.listen}/p2p/${m1.peerId}`);
  await node.dial(target);
  await peers.identify(m1.peerId);
  // the announcement superseded the committed (expired) key
  expect(Buffer.from(directory.keyFor('miner-1', Date.now())!)).toEqual(Buffer.from(rotated.kemKeys![1].publicKey));

  const sealing = new UpdateSealing({ networkId: cfg.networkId, directory });
  const sealedProto = sealedProtocols(cfg.networkId).submit;
  const send = (bytes: Uint8Array, proto = sealedProto) => request(node, target, proto, bytes, { maxResponseBytes: 4096, timeoutMs: 10_000 });
  const head = decodeHead(await request(node, target, protocols(cfg.networkId).chain, encodeChainRequest({ kind: 'head' }), { maxResponseBytes: 4096, timeoutMs: 10_000 }));
  const dim = (cfg.learning.layers.reduce((s, n, i, a) => (i ? s + a[i - 1] * n + n : s), 0));
  const fresh = () => signedUpdate(cfg.networkId, evilClient, 'miner-1', head.modelHash, Float32Array.from({ length: dim }, () => (Math.random() - 0.5) * 1e-3));
  const sealTo = (u: SignedUpdate, key: Uint8Array) => new UpdateSealing({ networkId: cfg.networkId, directory: new KemDirectory([{ id: 'miner-1', kemPublicKey: key }]) }).encode(u, 'upload', 'miner-1', Date.now());
  const penalty = async () => ((await c.status('miner-1'))!.penalties['client-2'] as number) ?? 0;

  // 1. in clear on a sealing network
  expect(await codeOf(send(encodeSignedUpdate(fresh()), protocols(cfg.networkId).submit))).toBe('SEAL_REQUIRED');
  // 2. sealed to a key miner-1 never held
  expect(await codeOf(send(sealTo(fresh(), new NativeMlKem().keygen().publicKey)))).toBe('KEM_WRONG_KEY');
  // 3. sealed to miner-1's rotated-away key (the one in the genesis)
  expect(await codeOf(send(sealTo(fresh(), rotated.kemKeys![0].publicKey)))).toBe('KEM_KEY_EXPIRED');
  // 4. tag altered; 5. truncated
  const tampered = sealing.encode(fresh(), 'upload', 'miner-1', Date.now());
  tampered[tampered.length - 3] ^= 1;
  expect(await codeOf(send(tampered))).toBe('SEAL_TAMPERED');
  const whole = sealing.encode(fresh(), 'upload', 'miner-1', Date.now());
  expect(await codeOf(send(whole.subarray(0, whole.length - 100)))).toBe('SEAL_TRUNCATED');
  // 6. a valid one is accepted (nothing valid lost after the bad ones), its replay refused
  expect(await codeOf(send(whole))).toBe('OK');
  expect(await codeOf(send(whole))).toBe('SEAL_REPLAYED');
  // the honest sealed path, as the client would retry it, still works
  expect(await codeOf(send(sealing.encode(fresh(), 'upload', 'miner-1', Date.now())))).toBe('OK');
  // 10 points per refusal, 2 for the expired key (an honest sender with a stale key sends that)
  expect(await penalty()).toBe(10 + 10 + 2 + 10 + 10 + 10);
  // the pipelined upload stream (net/frames.ts): the same codes and penalties per frame, and a
  // refused frame does not end the stream (the frames behind it are answered on it)
  const channel = new FrameChannel(node, peerIdFromString(m1.peerId), sealedProtocols(cfg.networkId).submitStream, { maxResponseBytes: 4096, timeoutMs: 10_000, maxInFlight: 4 });
  const bad = sealing.encode(fresh(), 'upload', 'miner-1', Date.now());
  bad[bad.length - 3] ^= 1;
  const good = sealing.encode(fresh(), 'upload', 'miner-1', Date.now());
  expect(await Promise.all([codeOf(channel.send(bad)), codeOf(channel.send(good))])).toEqual(['SEAL_TAMPERED', 'OK']);
  expect(await codeOf(channel.send(good))).toBe('SEAL_REPLAYED');
  expect(await codeOf(channel.send(sealing.encode(fresh(), 'upload', 'miner-1', Date.now())))).toBe('OK');
  expect(await penalty()).toBe(10 + 10 + 2 + 10 + 10 + 10 + 10 + 10);
  await channel.close();
  const log = await c.log('miner-1');
  for (const code of ['SEAL_REQUIRED', 'KEM_WRONG_KEY', 'KEM_KEY_EXPIRED', 'SEAL_TAMPERED', 'SEAL_TRUNCATED', 'SEAL_REPLAYED']) expect(log).toMatch(new RegExp(`"code":"${code}"`));

  // honest client-1 (sealing to the rotated key it learnt from the peer record) goes on, never penalised
  const [after] = await c.waitFor(['miner-1'], ([s]) => s.aggregations >= before.aggregations + 3, 90_000, 'honest aggregations (ϕ = 1: one per update)');
  expect(after.penalties['client-1']).toBeUndefined();
  expect((await c.status('client-1'))!.uploaded).toBeGreaterThan(0);
});

it('a peer record whose KEM key announcement does not verify is refused, and the key is not learnt', { timeout: 60_000 }, async () => {
  const networkId = 'seal-test';
  const miner = generateIdentity('miner-1', 'miner').identity;
  const client = generateIdentity('client-1', 'client').identity;
  const membership = new Membership([miner, client].map((m) => ({ id: m.id, role: m.role, publicKey: m.publicKey })));
  const mk = async () => {
    const node = await createP2P({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], networkId, gossip: false, mdns: false, ipColocationPenalty: false, maxMessageBytes: 65536 });
    cleanup.push(() => node.stop());
    return node;
  };
  // the "miner" answers hello with a valid record whose KEM announcement names a key signed by someone else
  const fake = await mk();
  const fakeId = fake.peerId.toString();
  const attackerKey = generateIdentity('miner-1', 'miner').identity;
  const forged = signKemAnnouncement(networkId, 'miner-1', attackerKey.key, { publicKey: attackerKey.kemKeys![0].publicKey, notBefore: 0, notAfter: NO_END });
  const record = encodePeerRecord({ memberId: 'miner-1', peerId: fakeId, signature: miner.key.sign(peerRecordMessage(networkId, 'miner-1', fakeId), SigningContext.peer), kem: encodeKemAnnouncement(forged) });
  await new Libp2pTransport(fake).serve(protocols(networkId).hello, async () => record, { maxRequestBytes: 8192, timeoutMs: 5000 });

  const node = await mk();
  const directory = new KemDirectory();
  const peers = new PeerBook({ transport: new Libp2pTransport(node), identity: client, networkId, membership, verifier: new InThreadVerifier(), timeoutMs: 5000, logger: silentLogger, kemDirectory: directory });
  await peers.start();
  await node.dial(fake.getMultiaddrs()[0]);
  expect(await peers.identify(fakeId)).toBeUndefined();
  expect(directory.keyFor('miner-1', Date.now())).toBeUndefined();
});
