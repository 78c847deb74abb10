/**
 * The senders of `bench ingest`, in a thread of their own (bench/ingest.ts says why): either the
 * C flooding clients (each signs, hashes and seals its updates, as a client device does, and
 * submits them: pipelined on one stream, or one request after another) or the sender of the raw-stream reference. Results go back
 * to the main thread in one message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { loadNetworkConfig } from '../src/config/network.ts';
import { SigningContext } from '../src/core/contexts.ts';
import { claimOfRecord, encodeUpdateClaim } from '../src/core/encoding.ts';
import { sha256 } from '../src/core/hash.ts';
import { encodeSignedUpdate } from '../src/core/update.ts';
import { KemDirectory } from '../src/crypto/kem-keys.ts';
import { loadKeyFile, loadPeerKey } from '../src/crypto/keyfile.ts';
import { Membership } from '../src/core/params.ts';
import { InThreadVerifier } from '../src/crypto/verifier.ts';
import { type P2PNode, createP2P } from '../src/net/p2p.ts';
import { PeerBook } from '../src/net/peer-book.ts';
import { Libp2pTransport } from '../src/net/transport.ts';
import { silentLogger } from '../src/util/logger.ts';
import { protocols } from '../src/net/protocols.ts';
import { FrameChannel, defaultFrameServe } from '../src/net/frames.ts';
import { RemoteError, request } from '../src/net/reqres.ts';
import { UpdateSealing, sealedProtocols } from '../src/net/sealed-updates.ts';
import { initialModelOf } from '../src/node/daemon.ts';

export type IngestWorkerJob =
  | { kind: 'raw'; to: string; protocol: string; seconds: number; chunk: number }
  | { kind: 'clients'; config: string; clients: { id: string; identity: string }[]; miner: { id: string; addr: string; peerId: string }; seconds: number; upload: UploadMode; prepare: PrepareMode; maxPrepared: number };

/**
 * When the clients build their updates (sign, hash, seal): `before` the measured window, a
 * stock of them per client, as devices that trained and signed on their own CPU and only send
 * now (the raw stream's sender sends prepared bytes too); `live`, each one in the window, in the
 * senders' thread, which shares the bench machine's cores with the miner.
 */
export type PrepareMode = 'before' | 'live';

/** How the clients upload: pipelined frames on one stream each (net/frames.ts), or one request-response stream per update. */
export type UploadMode = 'stream' | 'request';

export type IngestWorkerResult =
  | { kind: 'raw'; sent: number }
  | { kind: 'clients'; accepted: number; latencies: number[]; errors: Record<string, number>; ms: number; cpuMs: number; prepared: number; ranOut: boolean };

/**
 * Memory for the updates prepared before the window (all clients): about 1,650 sealed updates
 * of the default model, 6-11 s of the intake at the rates measured here; the window ends early
 * when a client's stock runs out (reported).
 */
const PREPARED_BYTES = 1024 * 1024 * 1024;

const threadCpuMs = () => {
  const u = process.threadCpuUsage();
  return (u.user + u.system) / 1000;
};

const P2P = { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], gossip: false, mdns: false, ipColocationPenalty: false, maxMessageBytes: 64 * 1024 };

async function raw(job: Extract<IngestWorkerJob, { kind: 'raw' }>): Promise<IngestWorkerResult> {
  const node = await createP2P({ ...P2P, privateKey: await generateKeyPair('Ed25519'), networkId: 'bench' });
  try {
    const stream = await node.dialProtocol(multiaddr(job.to), job.protocol);
    const data = new Uint8Array(job.chunk).fill(7);
    let sent = 0;
    const until = performance.now() + job.seconds * 1000;
    while (performance.now() < until) {
      // send() is false when the stream's buffer is full: wait for it to drain
      if (!stream.send(data)) await new Promise((r) => stream.addEventListener('drain', r, { once: true }));
      sent += data.byteLength;
    }
    await stream.close().catch(() => undefined);
    return { kind: 'raw', sent };
  } finally {
    await node.stop();
  }
}

async function clients(job: Extract<IngestWorkerJob, { kind: 'clients' }>): Promise<IngestWorkerResult> {
  const cfg = await loadNetworkConfig(job.config);
  const initial = initialModelOf(cfg);
  const baseModelHash = sha256(new Uint8Array(initial.buffer));
  // As the product sends them: sealed to the miner's ML-KEM key where the network seals updates.
  const sealing = cfg.p2p.sealUpdates ? new UpdateSealing({ networkId: cfg.networkId, directory: new KemDirectory(cfg.members) }) : undefined;
  const stream = job.upload === 'stream';
  const submit = sealing ? sealedProtocols(cfg.networkId)[stream ? 'submitStream' : 'submit'] : protocols(cfg.networkId)[stream ? 'submitStream' : 'submit'];
  const minerPeer = peerIdFromString(job.miner.peerId);
  const membership = new Membership(cfg.members);
  const verifier = new InThreadVerifier();
  const nodes: P2PNode[] = [];
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  let accepted = 0;
  try {
    const identities = await Promise.all(job.clients.map((n) => loadKeyFile(n.identity)));
    const lanes = stream ? defaultFrameServe.maxInFlight : 1;
    // A new update each time: sender and count as two float32 parameters (an integer's bytes
    // written over one float became NaN for some counts, which the miner refuses).
    const payloads = identities.map(() => Array.from({ length: lanes }, () => new Uint8Array(initial.buffer.slice(0))));
    const build = (c: number, lane: number, i: number): Uint8Array => {
      const identity = identities[c];
      const payload = payloads[c][lane]; // the body built from it is a copy (sealed or encoded)
      const view = new DataView(payload.buffer);
      view.setFloat32(0, c * lanes + lane, true);
      view.setFloat32(4, i, true);
      const digest = sha256(payload);
      const claim = { clientId: identity.id, minerId: job.miner.id, baseModelHash, updateDigest: digest, sampleCount: 100, createdAt: Date.now(), payloadBytes: payload.length };
      const signature = identity.key.sign(encodeUpdateClaim(claimOfRecord(cfg.networkId, claim)), SigningContext.update);
      return sealing ? sealing.encode({ ...claim, signature, payload }, 'upload', job.miner.id, Date.now()) : encodeSignedUpdate({ ...claim, signature, payload });
    };
    // Prepared before the connections open (the thread is busy for seconds: libp2p's timers would
    // fire late on live connections). Each client's stock, shared by its lanes (lane 0's numbering: updates stay distinct).
    const stock: Uint8Array[][] = identities.map(() => []);
    if (job.prepare === 'before') {
      const perClient = Math.max(1, Math.ceil(Math.min(PREPARED_BYTES / (initial.length * 4), job.maxPrepared) / identities.length));
      for (let i = 0; i < perClient; i++) for (let c = 0; c < identities.length; c++) stock[c].push(build(c, 0, i));
    }
    const prepared = stock.reduce((n, s) => n + s.length, 0);
    // One after another, retried: libp2p refuses more than a few new inbound connections per
    // second from one address (its inboundConnectionThreshold), and every client is 127.0.0.1.
    const ready: { node: P2PNode; identity: Awaited<ReturnType<typeof loadKeyFile>> }[] = [];
    for (const [c, n] of job.clients.entries()) {
      const node = await createP2P({ ...P2P, privateKey: await loadPeerKey(n.identity), networkId: cfg.networkId });
      nodes.push(node);
      // as a client node does: a miner serves admitted members only, after their signed hello
      await new PeerBook({ transport: new Libp2pTransport(node), identity: identities[c], networkId: cfg.networkId, membership, verifier, timeoutMs: 10_000, logger: silentLogger }).start();
      for (let attempt = 1; ; attempt++) {
        try {
          await node.dial(multiaddr(job.miner.addr));
          break;
        } catch (e) {
          if (attempt >= 40) throw e;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      ready.push({ node, identity: identities[c] });
    }
    parentPort!.postMessage({ kind: 'started' });
    const cpu0 = threadCpuMs();
    const t0 = performance.now();
    let until = t0 + job.seconds * 1000;
    let ranOut = false;
    const responseOpts = { maxResponseBytes: 1024, timeoutMs: 30_000 };
    // Pipelined: as many uploads in flight per client as the miner reads ahead on one stream.
    await Promise.all(
      ready.flatMap(({ node }, c) => {
        const channel = stream ? new FrameChannel(node, minerPeer, submit, { ...responseOpts, maxInFlight: lanes }) : undefined;
        return Array.from({ length: lanes }, async (_, lane) => {
          for (let i = 0; performance.now() < until; i++) {
            let body: Uint8Array;
            if (job.prepare === 'live') body = build(c, lane, i);
            else {
              const next = stock[c].shift();
              if (!next) {
                // the window ends here for every client: the rates are over the same time
                if (!ranOut) until = Math.min(until, performance.now());
                ranOut = true;
                break;
              }
              body = next;
            }
            const t = performance.now();
            try {
              await (channel ? channel.send(body) : request(node, minerPeer, submit, body, responseOpts));
              if (performance.now() <= until) {
                accepted++;
                latencies.push(performance.now() - t);
              }
            } catch (e) {
              const code = e instanceof RemoteError ? e.code : (e as { code?: string }).code ?? (e as Error).name;
              errors[code] = (errors[code] ?? 0) + 1;
            }
          }
        });
      }),
    );
    // the window: up to the deadline, or to the moment a client's stock ran out
    return { kind: 'clients', accepted, latencies, errors, ms: Math.min(performance.now(), until) - t0, cpuMs: threadCpuMs() - cpu0, prepared, ranOut };
  } finally {
    await Promise.all(nodes.map(async (n) => n.stop()));
  }
}

const job = workerData as IngestWorkerJob;
parentPort!.postMessage(await (job.kind === 'raw' ? raw(job) : clients(job)));
