/**
 * Building a node (STYLE.md habit 3): one function creates every part, gives each its options
 * and a child logger, and returns a handle that closes them in reverse order.
 */
import { join } from 'node:path';
import { ChainStore } from '../chain/store.ts';
import { UpdatePool } from '../chain/update-pool.ts';
import { type NetworkConfig, chainParamsOf, loadNetworkConfig } from '../config/network.ts';
import { toHex } from '../core/bytes.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import { Membership, createGenesisBlock } from '../core/params.ts';
import { blockHash } from '../core/encoding.ts';
import { sha256 } from '../core/hash.ts';
import { type Identity, loadKeyFile, loadPeerKey } from '../crypto/keyfile.ts';
import { WorkerVerifierPool } from '../crypto/verifier.ts';
import { KemDirectory } from '../crypto/kem-keys.ts';
import { KemKeyRing } from '../crypto/seal.ts';
import { UpdateSealing } from '../net/sealed-updates.ts';
import { loadDataset, subset } from '../learn/data.ts';
import { type ModelSpec, initParams } from '../learn/model.ts';
import { partition } from '../learn/partition.ts';
import { ModelRuntime } from '../learn/runtime.ts';
import { DataStream } from '../learn/stream.ts';
import { evaluate } from '../learn/train.ts';
import { WorkerMinerPool } from '../mining/miner.ts';
import { createP2P } from '../net/p2p.ts';
import { PeerBook } from '../net/peer-book.ts';
import { Libp2pTransport } from '../net/transport.ts';
import { startApi, stopApi } from '../api/server.ts';
import type { Logger } from '../util/logger.ts';
import { Metrics } from '../util/metrics.ts';
import { ChainAggregation, type UpdateSource } from '../chain/aggregation.ts';
import { WorkerAggregationEngine } from '../chain/aggregation-engine.ts';
import { Client, type ClientDeps, type ClientOptions } from './client.ts';
import { Miner, type MinerOptions } from './miner.ts';
import type { Attack } from '../experiments/attacks.ts';

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
  /** Clients only: an attack to inject (experiments/attacks.ts). */
  attack?: Attack;
  /** Clients only, for the experiment harness: switchable attacks and what was uploaded. */
  experiment?: Pick<ClientDeps, 'attackOf' | 'onUpload' | 'honestStats'>;
}

export interface RunningNode {
  id: string;
  role: 'miner' | 'client';
  apiUrl: string;
  status(): unknown;
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
  const closers: { name: string; close: () => Promise<unknown> | unknown }[] = [];
  const stop = async () => {
    for (const c of closers.reverse()) {
      try {
        await c.close();
      } catch (e) {
        log.warn({ part: c.name, err: (e as Error).message }, 'error while stopping');
      }
    }
  };

  try {
    const initial = initialModelOf(cfg);
    const params = chainParamsOf(cfg, new Uint8Array(initial.buffer));
    const verifier = new WorkerVerifierPool({ workers: 1 });
    closers.push({ name: 'verifier', close: () => verifier.close() });
    const miners = cfg.members.filter((m) => m.role === 'miner' && m.id !== identity.id);
    const bootstrapList = miners.map((m) => cfg.addresses.get(m.id)).filter((a) => (a?.dial ?? a?.listen) && a.peerId).map((a) => `${a!.dial ?? a!.listen}/p2p/${a!.peerId}`);
    const p2p = await createP2P({
      privateKey: await loadPeerKey(o.identity),
      listen: [listen],
      bootstrap: bootstrapList,
      networkId: cfg.networkId,
      gossip: o.role === 'miner',
      mdns: cfg.p2p.mdns,
      ipColocationPenalty: cfg.p2p.ipColocationPenalty,
      maxMessageBytes: 64 * 1024,
    });
    closers.push({ name: 'libp2p', close: () => p2p.stop() });
    const transport = new Libp2pTransport(p2p);
    const kemDirectory = new KemDirectory(cfg.members);
    const peers = new PeerBook({ transport, identity, networkId: cfg.networkId, membership: new Membership(cfg.members), verifier, timeoutMs: cfg.p2p.requestTimeoutMs, logger: log.child({ sub: 'peers' }), metrics, kemDirectory });
    await peers.start();
    const sealing = cfg.p2p.sealUpdates
      ? new UpdateSealing({ networkId: cfg.networkId, directory: kemDirectory, keyRing: o.role === 'miner' ? new KemKeyRing(identity.kemKeys!) : undefined, refresh: (peer) => peers.reidentify(peer) })
      : undefined;
    closers.push({ name: 'peers', close: () => peers.stop() });

    const spec = modelSpecOf(cfg);
    const runtime = await ModelRuntime.create(spec, { threads: cfg.learning.threads });
    closers.push({ name: 'runtime', close: () => runtime.close() });
    const data = loadDataset(cfg.learning.dataset);

    let status: () => unknown;
    let chain: ChainStore | undefined;
    let rewards: (() => Promise<unknown>) | undefined;
    if (o.role === 'miner') {
      const pool = await UpdatePool.open(join(o.datadir, 'updates'));
      closers.push({ name: 'pool', close: () => pool.close() });
      let miner: Miner | undefined;
      const updates: UpdateSource = { get: async (c, d) => miner?.fetchUpdate(c, d) };
      const aggregation = new ChainAggregation({ engine: new WorkerAggregationEngine(cfg.aggregation), updates });
      closers.push({ name: 'aggregation', close: () => aggregation.close() });
      const store = await ChainStore.open({ datadir: join(o.datadir, 'chain'), params, signatures: verifier, aggregation, logger: log.child({ sub: 'chain' }), metrics });
      closers.push({ name: 'chain', close: () => store.close() });
      const pow = new WorkerMinerPool({ workers: o.miningWorkers ?? 1 });
      closers.push({ name: 'pow', close: () => pow.close() });
      miner = new Miner({
        config: cfg,
        identity,
        store,
        pool,
        transport,
        peers,
        verifier,
        pow,
        aggregation,
        evaluate: async (model) => (await evaluate(runtime, model, data.test)).accuracy,
        logger: log.child({ sub: 'miner' }),
        metrics,
        options: o.miner,
        sealing,
      });
      await miner.start();
      closers.push({ name: 'miner', close: () => miner!.stop() });
      status = () => miner!.status();
      chain = store;
      rewards = async () => Object.fromEntries([...(await store.balances())].map(([k, v]) => [k, v.toString()]));
    } else {
      const clients = cfg.members.filter((m) => m.role === 'client').map((m) => m.id).sort();
      const index = clients.indexOf(identity.id);
      const parts = partition(data.train.y, clients.length, cfg.learning.partition, cfg.learning.partitionSeed);
      const mine = parts[index];
      const held = Math.min(cfg.learning.heldOut, Math.floor(mine.length / 5));
      const genesis = createGenesisBlock(params);
      for (const m of miners) if (!cfg.addresses.get(m.id)?.peerId) throw new BflError(ErrorCode.BAD_CONFIG, `members: miner ${m.id} has no peerId; a client needs it to reach the miner (bfl-node init writes it)`);
      const client = new Client({
        config: cfg,
        identity,
        transport,
        runtime,
        train: data.train,
        heldOut: subset(data.train, mine.slice(mine.length - held)),
        stream: new DataStream(mine.slice(0, mine.length - held), Date.now(), { rate: cfg.learning.rate, seed: cfg.learning.partitionSeed * 1000 + index, initial: cfg.learning.initialSamples }),
        miners: miners.map((m) => ({ id: m.id, peerId: cfg.addresses.get(m.id)!.peerId! })),
        genesis: { anchor: blockHash(genesis.header), modelHash: sha256(params.initialModel), model: initial },
        datadir: join(o.datadir, 'client'),
        logger: log.child({ sub: 'client' }),
        metrics,
        options: o.client,
        sealing,
        attack: o.attack,
        ...o.experiment,
      });
      await client.start();
      closers.push({ name: 'client', close: () => client.stop() });
      status = () => client.status();
    }
    const api = await startApi({ host: apiAddr.host, port: apiAddr.port, status, rewards, metrics });
    closers.push({ name: 'api', close: () => stopApi(api) });
    const a = api.address() as { address: string; port: number };
    const apiUrl = `http://${a.address}:${a.port}`;
    log.info({ id: identity.id, role: o.role, peerId: p2p.peerId.toString(), listen: p2p.getMultiaddrs().map(String), api: apiUrl }, 'node started');
    return { id: identity.id, role: o.role, apiUrl, status, chain, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
