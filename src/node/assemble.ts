/**
 * The one assembly of a node (STYLE.md habit 3), used by the daemon (daemon.ts), the simulator
 * (sim/harness.ts) and the tests: each part built once, in dependency order, with its options
 * and a child logger, and closed in reverse order. What differs between the daemon and the
 * simulator comes in as parts: the transport (libp2p or the simulated network), the clock, the
 * proof of work and the aggregation engine (worker threads or in-thread).
 */
import { join } from 'node:path';
import { associationSelector } from './association-selector.ts';
import { ChainAggregation } from '../chain/aggregation.ts';
import type { AggregationEngine } from '../chain/aggregation-engine.ts';
import { ChainStore } from '../chain/store.ts';
import { UpdatePool } from '../chain/update-pool.ts';
import type { NetworkConfig } from '../config/network.ts';
import { blockHash } from '../core/encoding.ts';
import { sha256 } from '../core/hash.ts';
import { type ChainParams, Membership, createGenesisBlock } from '../core/params.ts';
import { payloadToDelta } from '../core/update.ts';
import type { Identity } from '../crypto/keyfile.ts';
import type { SealedOpener } from '../crypto/open-sealed.ts';
import type { SignatureVerifier } from '../crypto/verifier.ts';
import { type TrainTest, subset } from '../learn/data.ts';
import type { ModelRuntime } from '../learn/runtime.ts';
import { DataStream } from '../learn/stream.ts';
import type { PowMiner } from '../mining/miner.ts';
import type { MinerLoad } from '../net/messages.ts';
import { PeerBook } from '../net/peer-book.ts';
import { UpdateSealing } from '../net/sealed-updates.ts';
import { KemDirectory } from '../crypto/kem-keys.ts';
import { KemKeyRing } from '../crypto/seal.ts';
import type { Transport } from '../net/transport.ts';
import type { ClientStatus, MinerStatus } from '../api/status.ts';
import { type Clock, systemClock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import type { Metrics } from '../util/metrics.ts';
import { PeerStateSource, blockSync } from './block-sync.ts';
import { chainService } from './chain-service.ts';
import { Client, type ClientHooks, type ClientOptions, defaultClientOptions } from './client.ts';
import type { MinerContact } from './miner-selector.ts';
import { Miner, type MinerOptions, defaultMinerOptions } from './miner.ts';
import { UpdateFetcher } from './update-fetcher.ts';
import { updateIntake } from './update-intake.ts';
import { Verdicts } from './verdicts.ts';
import { splitMiner } from './split-miner.ts';
import { SplitLearner } from './split-client.ts';
import type { SplitRuntime } from '../learn/split.ts';
import { BflError, ErrorCode } from '../core/errors.ts';

/** What every node is built from. */
export interface NodeParts {
  config: NetworkConfig;
  params: ChainParams;
  identity: Identity;
  transport: Transport;
  /** Shared with other parts of the process (the caller closes it). */
  verifier: SignatureVerifier;
  clock?: Clock;
  logger: Logger;
  metrics?: Metrics;
  /** Seal raw updates with ML-KEM (the daemon: `p2p.sealUpdates`); off by default, as in the
   * simulator, whose in-process network has no wire to protect. */
  sealUpdates?: boolean;
  /** Where a miner opens sealed uploads (the daemon: the verifier's worker); default this thread. */
  opener?: SealedOpener;
}

export interface CreateMinerOptions extends NodeParts {
  /** The miner's datadir: chain/ and updates/ below it. */
  datadir: string;
  /** Owned by the miner from here on (closed with it). */
  pow: PowMiner;
  /** Owned by the miner from here on (closed with it). */
  aggregationEngine: AggregationEngine;
  /** Accuracy of a global model on the miner's test set (for /status and metrics). */
  evaluate?: (model: Float32Array) => Promise<number>;
  options?: Partial<MinerOptions>;
  /** Split learning (learning.mode "split"): the body's sessions; required in that mode (the caller closes it). */
  split?: SplitRuntime;
}

export interface MinerNode {
  readonly id: string;
  readonly miner: Miner;
  readonly store: ChainStore;
  readonly peers: PeerBook;
  status(): MinerStatus;
  /** The reward ledger of the canonical chain (units, decimal strings). */
  rewards(): Promise<Record<string, string>>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Closers run in reverse order of creation; an error in one does not stop the others. */
class Closers {
  private readonly list: { name: string; close: () => Promise<unknown> | unknown }[] = [];
  private readonly log: Logger;

  constructor(log: Logger) {
    this.log = log;
  }

  add(name: string, close: () => Promise<unknown> | unknown): void {
    this.list.push({ name, close });
  }

  async closeAll(): Promise<void> {
    for (const c of this.list.splice(0).reverse()) {
      try {
        await c.close();
      } catch (e) {
        this.log.warn({ part: c.name, err: (e as Error).message }, 'error while stopping');
      }
    }
  }
}

/** The peer book (it learns miners' KEM keys from their peer records) and, if the node seals
 * updates, the sealing that uses those keys and, on a miner, its own. */
async function peerBook(o: NodeParts, closers: Closers): Promise<{ peers: PeerBook; sealing?: UpdateSealing }> {
  const kemDirectory = new KemDirectory(o.config.members);
  const peers = new PeerBook({
    kemDirectory,
    transport: o.transport,
    identity: o.identity,
    networkId: o.config.networkId,
    membership: new Membership(o.config.members),
    verifier: o.verifier,
    timeoutMs: o.config.p2p.requestTimeoutMs,
    logger: o.logger.child({ sub: 'peers' }),
    metrics: o.metrics,
    clock: o.clock,
    // a burst of 5 s of requests: a client's start (hello, head, model, balance at once) fits
    policy: { helloTimeoutMs: o.config.p2p.helloTimeoutMs, requestsPerSecond: o.config.p2p.requestsPerSecond, requestBurst: 5 * o.config.p2p.requestsPerSecond, downloadBytesPerSecond: o.config.p2p.downloadBytesPerSecond },
    configuredPeers: new Map([...o.config.addresses.values()].filter((a) => a.peerId).map((a) => [a.peerId!, a.id])),
  });
  await peers.start();
  closers.add('peers', () => peers.stop());
  const own = o.identity.role === 'miner' ? o.identity.kemKeys ?? [] : [];
  const sealing = o.sealUpdates
    ? new UpdateSealing({ networkId: o.config.networkId, directory: kemDirectory, keyRing: own.length ? new KemKeyRing(own) : undefined, refresh: (peer) => peers.reidentify(peer) })
    : undefined;
  return { peers, sealing };
}

/** In split mode, the node's split part (its runtime must be given); undefined in federated mode. */
function splitPart<T>(o: NodeParts & { split?: SplitRuntime }, build: () => T): T | undefined {
  if (o.config.learning.mode !== 'split') return undefined;
  if (!o.split) throw new BflError(ErrorCode.BAD_CONFIG, 'learning.mode is "split" but the node was built without the split graphs (pass `split`, a SplitRuntime)');
  if (o.split.cut !== o.config.learning.split.cut) throw new BflError(ErrorCode.BAD_CONFIG, `the split graphs cut after layer ${o.split.cut}, learning.split.cut is ${o.config.learning.split.cut}`);
  return build();
}

/** Build a miner (not started: `start()` serves its protocols and starts mining). */
export async function createMiner(o: CreateMinerOptions): Promise<MinerNode> {
  const clock = o.clock ?? systemClock;
  const closers = new Closers(o.logger);
  closers.add('pow', () => o.pow.close());
  try {
    const { peers, sealing } = await peerBook(o, closers);
    const pool = await UpdatePool.open(join(o.datadir, 'updates'), { receivedLogMs: 2 * LOAD_WINDOW_MS, now: clock.now() });
    closers.add('pool', () => pool.close());
    const verdicts = new Verdicts({ peers, logger: o.logger.child({ sub: 'miner' }), metrics: o.metrics });
    const fetcher = new UpdateFetcher(
      { config: o.config, membership: new Membership(o.config.members), pool, transport: o.transport, peers, verifier: o.verifier, verdicts, clock, logger: o.logger.child({ sub: 'miner' }), metrics: o.metrics, sealing },
      o.params.initialModel.length,
    );
    const options = { ...defaultMinerOptions, ...o.options };
    const log = o.logger.child({ sub: 'miner' });
    const states = new PeerStateSource({ config: o.config }, { transport: o.transport, peers, logger: log });
    const aggregation = new ChainAggregation({ engine: o.aggregationEngine, updates: fetcher, states });
    closers.add('aggregation', () => aggregation.close());
    // what a miner accepts on work is what its peers may have pruned: the same depth
    const store = await ChainStore.open({ datadir: join(o.datadir, 'chain'), params: o.params, signatures: o.verifier, aggregation, assumeValidDepth: options.pruneDepth, now: () => clock.now(), clock, logger: o.logger.child({ sub: 'chain' }), metrics: o.metrics });
    closers.add('chain', () => store.close());
    // our protocols in libp2p's service shape: init, then the narrow components
    const intake = updateIntake({ config: o.config, minerId: o.identity.id })({ store, pool, fetcher, transport: o.transport, peers, verdicts, clock, logger: log, metrics: o.metrics, sealing, opener: o.opener });
    const sync = blockSync({ config: o.config, syncIntervalMs: options.syncIntervalMs })({ store, transport: o.transport, peers, verdicts, clock, logger: log });
    const service = chainService({ networkId: o.config.networkId, timeoutMs: o.config.p2p.requestTimeoutMs })({ store, transport: o.transport, peers, verdicts, load: minerLoad(o.identity.id, pool, intake, () => clock.now()) });
    const split = splitPart(o, () =>
      splitMiner({ config: o.config, identity: o.identity })({ store, membership: store.membership, submit: (u) => intake.submitOwn(u), transport: o.transport, peers, verifier: o.verifier, verdicts, runtime: o.split!, sealing, clock, logger: o.logger.child({ sub: 'split' }), metrics: o.metrics }),
    );
    const miner = new Miner({ config: o.config, identity: o.identity, store, pool, aggregation, intake, sync, chainService: service, transport: o.transport, peers, pow: o.pow, evaluate: o.evaluate, clock, logger: log, metrics: o.metrics }, options);
    let started = false;
    return {
      id: o.identity.id,
      miner,
      store,
      peers,
      status: () => ({ ...miner.status(), sealing: sealing?.stats() ?? null, ...(split ? { split: split.status() } : {}) }),
      rewards: async () => Object.fromEntries([...(await store.balances())].map(([k, v]) => [k, v.toString()])),
      start: async () => {
        await miner.start();
        started = true;
        closers.add('miner', () => miner.stop());
        if (split) {
          await split.start();
          closers.add('split', () => split.stop());
        }
      },
      close: async () => {
        if (!started) o.logger.debug('closing a miner that never started');
        await closers.closeAll();
      },
    };
  } catch (e) {
    await closers.closeAll();
    throw e;
  }
}

/**
 * Clients that uploaded to this miner within this window count as its clients in the load it
 * announces: 30 s spans several uploads of a client at the default data rate (one update every
 * ~5 s) and forgets a client that moved to another miner within a few of them.
 */
export const LOAD_WINDOW_MS = 30_000;

/** What a miner announces of its load (the `load` chain request). The client count reads the
 * pool's arrival log (its last 2 × LOAD_WINDOW_MS), at most once a second however many clients ask. */
export function minerLoad(id: string, pool: UpdatePool, intake: { size: number }, now: () => number): () => MinerLoad {
  let at = -Infinity;
  let clients = 0;
  return () => {
    const t = now();
    if (t - at >= 1000) {
      const seen = new Set<string>();
      for (const e of pool.receivedSince(t - LOAD_WINDOW_MS)) if (e.minerId === id) seen.add(e.clientId);
      clients = seen.size;
      at = t;
    }
    return { pendingUpdates: intake.size, clients };
  };
}

export interface CreateClientOptions extends NodeParts {
  datadir: string;
  /** Shared by the process's clients (the caller closes it). */
  runtime: ModelRuntime;
  data: TrainTest;
  /** This client's training samples (indices into data.train), from the network's partition. */
  samples: number[];
  /** Index of the client among the network's clients (seeds its data stream). */
  index: number;
  /** The miners it may upload to, with their PeerIds. */
  miners: MinerContact[];
  /** Samples waiting at the start beyond the config's (the simulator spreads clients in time). */
  extraInitialSamples?: number;
  options?: Partial<ClientOptions>;
  hooks?: ClientHooks;
  /** Split learning (learning.mode "split"): the head's sessions; required in that mode (the caller closes it). */
  split?: SplitRuntime;
}

export interface ClientNode {
  readonly id: string;
  readonly client: Client;
  readonly peers: PeerBook;
  status(): ClientStatus;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Build a client (not started): its held-out data, data stream, genesis model and peer book. */
export async function createClient(o: CreateClientOptions): Promise<ClientNode> {
  const clock = o.clock ?? systemClock;
  const closers = new Closers(o.logger);
  try {
    const { peers, sealing } = await peerBook(o, closers);
    const L = o.config.learning;
    const held = Math.min(L.heldOut, Math.floor(o.samples.length / 5));
    const genesis = createGenesisBlock(o.params);
    // experiments may bring their own (the simulator's coordinator); else network.json's policy
    let selector = o.hooks?.selector;
    if (!selector) {
      const a = await associationSelector({ policy: o.config.association.policy, policyFile: o.config.association.policyFile ?? undefined, miners: o.miners.length, seed: o.index + 1 });
      closers.add('association', () => a.close());
      selector = a;
    }
    const client = new Client({
      config: o.config,
      identity: o.identity,
      transport: o.transport,
      runtime: o.runtime,
      train: o.data.train,
      heldOut: subset(o.data.train, o.samples.slice(o.samples.length - held)),
      stream: new DataStream(o.samples.slice(0, o.samples.length - held), clock.now(), { rate: L.rate, seed: L.partitionSeed * 1000 + o.index, initial: L.initialSamples + (o.extraInitialSamples ?? 0) }),
      miners: o.miners,
      genesis: { anchor: blockHash(genesis.header), modelHash: sha256(o.params.initialModel), model: payloadToDelta(o.params.initialModel) },
      datadir: o.datadir,
      logger: o.logger.child({ sub: 'client' }),
      metrics: o.metrics,
      clock,
      options: { ...defaultClientOptions, ...o.options },
      sealing,
      split: splitPart(o, () => new SplitLearner({ config: o.config, identity: o.identity, transport: o.transport, runtime: o.split!, clock, sealing })),
      ...o.hooks,
      selector,
    });
    return {
      id: o.identity.id,
      client,
      peers,
      status: () => client.status(),
      start: async () => {
        await client.start();
        closers.add('client', () => client.stop());
      },
      close: () => closers.closeAll(),
    };
  } catch (e) {
    await closers.closeAll();
    throw e;
  }
}
