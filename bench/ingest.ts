/**
 * Update ingestion (`bfl-node bench ingest`): one miner daemon (the real one: libp2p, signature
 * check, update pool on LevelDB, gossip announcements, mining) and C flooding clients on
 * loopback libp2p. Each client sends signed updates of the network's model size one after
 * another (an update differs from the last in one parameter: every digest is new) for S seconds.
 * Reported: accepted updates per second, their MB/s, p50/p99 submit latency, and the ceiling
 * measured in the same run: raw libp2p stream throughput between two nodes of this process
 * (same transport, encryption and muxer, no protocol logic).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { loadNetworkConfig } from '../src/config/network.ts';
import { SigningContext } from '../src/core/contexts.ts';
import { claimOfRecord, encodeUpdateClaim } from '../src/core/encoding.ts';
import { sha256 } from '../src/core/hash.ts';
import { loadKeyFile, loadPeerKey } from '../src/crypto/keyfile.ts';
import { encodeSignedUpdate } from '../src/core/update.ts';
import { type P2PNode, createP2P } from '../src/net/p2p.ts';
import { protocols } from '../src/net/protocols.ts';
import { UpdateSealing, sealedProtocols } from '../src/net/sealed-updates.ts';
import { KemDirectory } from '../src/crypto/kem-keys.ts';
import { RemoteError, request } from '../src/net/reqres.ts';
import { initialModelOf, startNode } from '../src/node/daemon.ts';
import { initLocalNetwork } from '../src/node/testnet.ts';
import { silentLogger } from '../src/util/logger.ts';
import { median } from './stats.ts';

export interface IngestBench {
  clients: number;
  seconds: number;
  updateBytes: number;
  submitted: number;
  accepted: number;
  /** Refusals and failures by error code (none expected). */
  errors: Record<string, number>;
  acceptedPerSecond: number;
  mbPerSecond: number; // accepted payload MB (10^6 bytes) per second
  p50Ms: number;
  p99Ms: number;
  rawStreamMbPerSecond: number;
  ratioToRawStream: number;
  loadAverage1m: number;
}

export interface IngestOptions {
  clients?: number;
  seconds?: number;
  /** ϕ of the bench network: default the highest allowed, so that the miner takes updates in and
   * mines, but never aggregates during the measurement (that is `bench aggregate`). */
  phi?: number;
}

const RAW_PROTOCOL = '/bfl-bench/raw/1';

async function p2pNode(networkId: string): Promise<P2PNode> {
  return createP2P({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], networkId, gossip: false, mdns: false, ipColocationPenalty: false, maxMessageBytes: 64 * 1024 });
}

/** MB/s of one stream between two libp2p nodes of this process, written in `chunk`-byte pieces. */
export async function rawStreamMbPerSecond(seconds: number, chunk: number): Promise<number> {
  const [a, b] = await Promise.all([p2pNode('bench'), p2pNode('bench')]);
  try {
    let received = 0;
    await b.handle(RAW_PROTOCOL, async (stream) => {
      for await (const piece of stream) received += piece.byteLength;
    });
    const stream = await a.dialProtocol(b.getMultiaddrs()[0], RAW_PROTOCOL);
    const data = new Uint8Array(chunk).fill(7);
    const t0 = performance.now();
    const until = t0 + seconds * 1000;
    const before = received;
    while (performance.now() < until) {
      // send() is false when the stream's buffer is full: wait for it to drain
      if (!stream.send(data)) await new Promise((r) => stream.addEventListener('drain', r, { once: true }));
    }
    const ms = performance.now() - t0;
    const mb = (received - before) / 1e6;
    await stream.close().catch(() => undefined);
    return mb / (ms / 1000);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
}

export async function benchIngest(opts: IngestOptions = {}): Promise<IngestBench> {
  const loadAverage1m = loadavg()[0];
  const clients = opts.clients ?? 4;
  const seconds = opts.seconds ?? 10;
  const dir = await mkdtemp(join(tmpdir(), 'bfl-ingest-'));
  const closers: (() => unknown)[] = [];
  try {
    // the per-client upload limit off: the bench measures what the intake can take, flooding by design
    const init = await initLocalNetwork({ dir, miners: 1, clients, networkId: 'bench-ingest', chain: { phi: opts.phi ?? 100_000 }, p2p: { clientUpdatesPerMinute: 0 } });
    const cfg = await loadNetworkConfig(init.config);
    const minerNode = init.nodes.find((n) => n.role === 'miner')!;
    const miner = await startNode({ role: 'miner', config: init.config, identity: minerNode.identity, datadir: minerNode.datadir, logger: silentLogger, miningWorkers: 1 });
    closers.push(() => miner.stop());
    const addr = cfg.addresses.get(minerNode.id)!;
    const minerAddr = multiaddr(`${addr.listen}/p2p/${addr.peerId}`);
    const initial = initialModelOf(cfg);
    const baseModelHash = sha256(new Uint8Array(initial.buffer));
    const updateBytes = initial.length * 4;
    // As the product sends them: sealed to the miner's ML-KEM key where the network seals updates.
    const sealing = cfg.p2p.sealUpdates ? new UpdateSealing({ networkId: cfg.networkId, directory: new KemDirectory(cfg.members) }) : undefined;
    const submit = sealing ? sealedProtocols(cfg.networkId).submit : protocols(cfg.networkId).submit;

    const raw = await rawStreamMbPerSecond(Math.min(seconds, 5), updateBytes);

    const latencies: number[] = [];
    const errors: Record<string, number> = {};
    let accepted = 0;
    const until = performance.now() + seconds * 1000;
    const t0 = performance.now();
    await Promise.all(
      init.nodes
        .filter((n) => n.role === 'client')
        .map(async (n, c) => {
          const identity = await loadKeyFile(n.identity);
          const node = await createP2P({ privateKey: await loadPeerKey(n.identity), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], networkId: cfg.networkId, gossip: false, mdns: false, ipColocationPenalty: false, maxMessageBytes: 64 * 1024 });
          closers.push(() => node.stop());
          await node.dial(minerAddr);
          const payload = new Uint8Array(initial.buffer.slice(0));
          const view = new DataView(payload.buffer);
          for (let i = 0; performance.now() < until; i++) {
            view.setUint32(0, c * 1_000_000 + i); // a new update each time
            const digest = sha256(payload);
            const claim = { clientId: identity.id, minerId: minerNode.id, baseModelHash, updateDigest: digest, sampleCount: 100, createdAt: Date.now(), payloadBytes: payload.length };
            const signature = identity.key.sign(encodeUpdateClaim(claimOfRecord(cfg.networkId, claim)), SigningContext.update);
            const body = sealing ? sealing.encode({ ...claim, signature, payload }, 'upload', minerNode.id, Date.now()) : encodeSignedUpdate({ ...claim, signature, payload });
            const t = performance.now();
            try {
              await request(node, peerIdFromString(addr.peerId!), submit, body, { maxResponseBytes: 1024, timeoutMs: 30_000 });
              if (performance.now() <= until) {
                accepted++;
                latencies.push(performance.now() - t);
              }
            } catch (e) {
              const code = e instanceof RemoteError ? e.code : (e as Error).name;
              errors[code] = (errors[code] ?? 0) + 1;
            }
          }
        }),
    );
    const elapsed = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);
    const mbPerSecond = (accepted * updateBytes) / 1e6 / elapsed;
    const r = (x: number, d = 1) => Number(x.toFixed(d));
    return {
      clients,
      seconds: r(elapsed, 2),
      updateBytes,
      submitted: accepted + Object.values(errors).reduce((s, x) => s + x, 0),
      accepted,
      errors,
      acceptedPerSecond: r(accepted / elapsed),
      mbPerSecond: r(mbPerSecond),
      p50Ms: r(latencies.length ? median(latencies) : 0),
      p99Ms: r(latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] : 0),
      rawStreamMbPerSecond: r(raw),
      ratioToRawStream: r(mbPerSecond / raw, 3),
      loadAverage1m: r(loadAverage1m, 2),
    };
  } finally {
    for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}
