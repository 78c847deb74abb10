/**
 * The daemon: a miner or client on libp2p with worker threads (signatures, proof of work,
 * aggregation) and the HTTP API. The node itself is built by assemble.ts, the same way the
 * simulator builds it; what is daemon-only is here (config and key files, libp2p, the API).
 */
import { join } from 'node:path';
import type { ChainStore } from '../chain/store.ts';
import { WorkerAggregationEngine } from '../chain/aggregation-engine.ts';
import { type NetworkConfig, chainParamsOf, loadNetworkConfig } from '../config/network.ts';
import { toHex } from '../core/bytes.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import { type Identity, loadKeyFile, loadPeerKey } from '../crypto/keyfile.ts';
import { WorkerVerifierPool } from '../crypto/verifier.ts';
import { augments, isSquareImage, parseAugment, samplesAre } from '../learn/augment.ts';
import { loadDataset, loadTestSet } from '../learn/data.ts';
import { type ModelSpec, initParams } from '../learn/model.ts';
import { partition } from '../learn/partition.ts';
import { ModelRuntime } from '../learn/runtime.ts';
import { SplitRuntime } from '../learn/split.ts';
import { evaluate } from '../learn/train.ts';
import { WorkerMinerPool } from '../mining/miner.ts';
import { startApi, stopApi } from '../api/server.ts';
import type { NodeStatus } from '../api/status.ts';
import { type DashboardSource, createDashboard } from '../api/dashboard.ts';
import { AccuracyLog, UploadLog } from '../api/history.ts';
import { registerBuildInfo, registerMemoryAfterGcGauge, registerMemoryGauge, registerPeersGauge, registerWorkerMemoryGauge, timedEngine, timedVerifier } from '../api/node-metrics.ts';
import type { Logger } from '../util/logger.ts';
import { Metrics } from '../util/metrics.ts';
import type { PeerBook } from '../net/peer-book.ts';
import { type ClientNode, type MinerNode, createClient, createMiner } from './assemble.ts';
import type { ClientBehaviour } from './behaviour.ts';
import type { ClientHooks, ClientOptions } from './client.ts';
import type { MinerOptions } from './miner.ts';

export interface NodeOptions {
  role: 'miner' | 'client';
  config: string; // network config file
  identity: string; // key file
  datadir: string;
  /** host:port of the HTTP API; default from the config's member entry, else 127.0.0.1:0. */
  api?: string;
  /** libp2p listen multiaddr; default from the config's member entry. */
  listen?: string;
  miningWorkers?: number;
  logger: Logger;
  miner?: Partial<MinerOptions>;
  client?: Partial<ClientOptions>;
  /** Clients only: what the client does besides honest training (the CLI's --attack). */
  behaviour?: ClientBehaviour;
  /** Clients only, for the experiment harness: switchable behaviours and what was uploaded. */
  experiment?: ClientHooks;
}

export interface RunningNode {
  id: string;
  role: 'miner' | 'client';
  apiUrl: string;
  status(): NodeStatus;
  /** Miners: the chain store (the experiment harness watches its tip). */
  chain?: ChainStore;
  stop(): Promise<void>;
}

export function modelSpecOf(cfg: NetworkConfig): ModelSpec {
  return { kind: 'mlp', layers: cfg.learning.layers };
}

export function initialModelOf(cfg: NetworkConfig): Float32Array {
  return initParams(modelSpecOf(cfg), cfg.learning.modelSeed);
}

function splitHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

/** Start a miner or client; everything it opens is closed by the returned `stop`, in reverse order. */
export async function startNode(o: NodeOptions): Promise<RunningNode> {
  const log = o.logger;
  const cfg = await loadNetworkConfig(o.config);
  const identity: Identity = await loadKeyFile(o.identity);
  const member = cfg.members.find((m) => m.id === identity.id);
  if (!member || member.role !== o.role || toHex(member.publicKey) !== toHex(identity.publicKey)) {
    throw new BflError(ErrorCode.BAD_CONFIG, `${o.identity} (${identity.id}) is not an admitted ${o.role} of network ${cfg.networkId} with this key`);
  }
  if (cfg.p2p.sealUpdates && o.role === 'miner' && !identity.kemKeys?.some((k) => k.notBefore <= Date.now() && Date.now() < k.notAfter)) {
    throw new BflError(ErrorCode.BAD_CONFIG, `${o.identity} has no ML-KEM key valid now, and network ${cfg.networkId} seals updates (p2p.sealUpdates); add one with bfl-node keygen --rotate-kem --out ${o.identity}, or set p2p.sealUpdates to false`);
  }
  const address = cfg.addresses.get(identity.id);
  const listen = o.listen ?? address?.listen ?? '/ip4/127.0.0.1/tcp/0';
  const apiAddr = splitHostPort(o.api ?? address?.api ?? '127.0.0.1:0');
  const metrics = new Metrics({ defaultMetrics: true, labels: { node: identity.id } });
  registerBuildInfo(metrics);
  registerMemoryGauge(metrics);
  const closers: { name: string; close: () => Promise<unknown> | unknown }[] = [{ name: 'memory-after-gc gauge', close: registerMemoryAfterGcGauge(metrics) }];
  const stop = async () => {
    for (const c of closers.splice(0).reverse()) {
      const t0 = performance.now();
      try {
        await c.close();
        log.debug({ part: c.name, ms: Math.round(performance.now() - t0) }, 'stopped');
      } catch (e) {
        log.warn({ part: c.name, err: (e as Error).message }, 'error while stopping');
      }
    }
  };

  try {
    const params = chainParamsOf(cfg, new Uint8Array(initialModelOf(cfg).buffer));
    const workerPool = new WorkerVerifierPool({ workers: 1 });
    registerWorkerMemoryGauge(metrics, 'verifier', () => workerPool.heapStatistics());
    const verifier = timedVerifier(workerPool, metrics);
    closers.push({ name: 'verifier', close: () => verifier.close() });
    const miners = cfg.members.filter((m) => m.role === 'miner' && m.id !== identity.id);
    const bootstrapList = miners.map((m) => cfg.addresses.get(m.id)).filter((a) => (a?.dial ?? a?.listen) && a.peerId).map((a) => `${a!.dial ?? a!.listen}/p2p/${a!.peerId}`);
    let admission: PeerBook | undefined;
    // libp2p is loaded when a node starts, not with this module: the simulator and every CLI
    // command that runs no node import it and would pay ~0.5 s for libp2p's modules
    const [{ createP2P, maxFrameBytes }, { Libp2pTransport }] = await Promise.all([import('../net/p2p.ts'), import('../net/transport.ts')]);
    const p2p = await createP2P({
      privateKey: await loadPeerKey(o.identity),
      listen: [listen],
      bootstrap: bootstrapList,
      networkId: cfg.networkId,
      gossip: o.role === 'miner',
      mdns: cfg.p2p.mdns,
      ipColocationPenalty: cfg.p2p.ipColocationPenalty,
      maxMessageBytes: 64 * 1024,
      maxFrameBytes: maxFrameBytes({ maxUpdateBytes: cfg.p2p.maxUpdateBytes, maxBlockBytes: cfg.chain.maxBlockBytes }),
      limits: { maxConnections: cfg.p2p.maxConnections, maxUnidentifiedConnections: cfg.p2p.maxUnidentifiedConnections, maxConnectionsPerIp: cfg.p2p.maxConnectionsPerIp },
      // the peer book is built with the node, after libp2p: until then nobody is a member
      admission: () => admission,
    });
    closers.push({ name: 'libp2p', close: () => p2p.stop() });
    const transport = new Libp2pTransport(p2p);
    // sealed uploads are opened in the verifier's worker too (crypto/open-sealed.ts, issue 12)
    const parts = { config: cfg, params, identity, transport, verifier, opener: workerPool, logger: log, metrics, sealUpdates: cfg.p2p.sealUpdates };

    const runtime = await ModelRuntime.create(modelSpecOf(cfg), { threads: cfg.learning.threads });
    closers.push({ name: 'runtime', close: () => runtime.close() });
    // split learning: the head's graphs on a client, the body's on a miner (compiled on first use)
    const split = cfg.learning.mode === 'split' ? SplitRuntime.create(modelSpecOf(cfg), cfg.learning.split.cut, { threads: cfg.learning.threads }) : undefined;
    if (split) closers.push({ name: 'split runtime', close: () => split.close() });

    const accuracy = new AccuracyLog();
    const uploads = new UploadLog();
    let node: MinerNode | ClientNode;
    let rewards: (() => Promise<Record<string, string>>) | undefined;
    if (o.role === 'miner') {
      // the test half only: a miner evaluates global models and never trains (learn/data.ts)
      const test = split ? undefined : loadTestSet(cfg.learning.dataset);
      const engine = new WorkerAggregationEngine(cfg.aggregation);
      registerWorkerMemoryGauge(metrics, 'aggregation', () => engine.heapStatistics());
      const pow = new WorkerMinerPool({ workers: o.miningWorkers ?? 1 });
      registerWorkerMemoryGauge(metrics, 'pow', () => pow.heapStatistics());
      const m = await createMiner({
        ...parts,
        datadir: o.datadir,
        pow,
        aggregationEngine: timedEngine(engine, metrics),
        // A split network's global model has no trained head (heads stay on the clients): its
        // accuracy would measure nothing, so a split miner does not evaluate (clients do).
        evaluate: split ? undefined : async (model) => accuracy.note(model, (await evaluate(runtime, model, test!)).accuracy),
        options: o.miner,
        split,
      });
      node = m;
      rewards = m.rewards;
    } else {
      const data = loadDataset(cfg.learning.dataset);
      // the config check sees learning.layers[0] only: 16 × 36 images pass it as 24² values
      const augment = cfg.learning.split.augment;
      if (split && augments(parseAugment(augment)) && !isSquareImage(data.train)) {
        throw new BflError(ErrorCode.BAD_CONFIG, `learning.split.augment: "${augment}" needs square images, but ${cfg.learning.dataset}'s samples ${samplesAre(data.train)}: set it to "none"`);
      }
      const clients = cfg.members.filter((m) => m.role === 'client').map((m) => m.id).sort();
      const index = clients.indexOf(identity.id);
      for (const m of miners) if (!cfg.addresses.get(m.id)?.peerId) throw new BflError(ErrorCode.BAD_CONFIG, `members: miner ${m.id} has no peerId; a client needs it to reach the miner (bfl-node init writes it)`);
      node = await createClient({
        ...parts,
        datadir: join(o.datadir, 'client'),
        runtime,
        data,
        samples: partition(data.train.y, clients.length, cfg.learning.partition, cfg.learning.partitionSeed)[index],
        index,
        miners: miners.map((m) => ({ id: m.id, peerId: cfg.addresses.get(m.id)!.peerId! })),
        options: o.client,
        split,
        hooks: {
          behaviour: o.behaviour,
          ...o.experiment,
          onUpload: (u) => {
            const last = (node as ClientNode).status().lastUpload;
            uploads.note({ at: Date.now(), miner: last?.miner ?? null, digest: u.digest, samples: last?.samples ?? null, averaged: u.averaged });
            o.experiment?.onUpload?.(u);
          },
        },
      });
    }
    closers.push({ name: o.role, close: () => node.close() });
    admission = node.peers;
    await node.start();
    const status = () => node.status();
    const peers = node.peers;
    const connected = () => transport.connections().map((peer) => ({ peer, ...peers.info(peer), penalty: peers.penaltyOf(peer), banned: peers.isBanned(peer) }));
    registerPeersGauge(metrics, connected);
    const store = 'store' in node ? node.store : undefined;
    const client = 'client' in node ? node.client : undefined;
    const source: DashboardSource = {
      role: o.role,
      id: identity.id,
      networkId: cfg.networkId,
      members: cfg.members.map((m) => ({ id: m.id, role: m.role })),
      status,
      healthy: () => (store ? store.isOpen : client!.isOpen),
      peers: connected,
      chain: store,
      ...(store ? { accuracyOf: accuracy.of } : { uploads: () => uploads.list() }),
    };
    const dashboard = createDashboard(source);
    closers.push({ name: 'dashboard', close: () => dashboard.close() });
    const api = await startApi({ host: apiAddr.host, port: apiAddr.port, status, rewards, metrics, dashboard });
    closers.push({ name: 'api', close: () => stopApi(api) });
    const a = api.address() as { address: string; port: number };
    const apiUrl = `http://${a.address}:${a.port}`;
    log.info({ id: identity.id, role: o.role, peerId: p2p.peerId.toString(), listen: p2p.getMultiaddrs().map(String), api: apiUrl, dashboard: `${apiUrl}/` }, 'node started');
    return { id: identity.id, role: o.role, apiUrl, status, chain: 'store' in node ? node.store : undefined, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
