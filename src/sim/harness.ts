/**
 * The experiment harness (DESIGN.md §9): the real Miner and Client state machines, with only
 * the transport (SimNetwork), the clock (SimClock) and proof of work (SimPow) swapped, so a
 * result here is a result about the product. Identities, data, partitions, mobility and mining
 * times all come from one seed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChainStore } from '../chain/store.ts';
import { UpdatePool } from '../chain/update-pool.ts';
import { type AggregationConfig, type LearningConfig, type NetworkConfig, chainParamsOf, loadNetworkConfig, parseNetworkConfig } from '../config/network.ts';
import { toHex } from '../core/bytes.ts';
import { Rng } from '../core/random.ts';
import { blockHash } from '../core/encoding.ts';
import { sha256 } from '../core/hash.ts';
import { Membership, createGenesisBlock } from '../core/params.ts';
import { aggregationTxOf } from '../core/chain.ts';
import type { Identity } from '../crypto/keyfile.ts';
import { NativeMlDsa } from '../crypto/mldsa.ts';
import { InThreadVerifier } from '../crypto/verifier.ts';
import type { Attack, HonestStats } from '../experiments/attacks.ts';
import { type TrainTest, loadDataset, subset } from '../learn/data.ts';
import { partition } from '../learn/partition.ts';
import { ModelRuntime } from '../learn/runtime.ts';
import { DataStream } from '../learn/stream.ts';
import { evaluate } from '../learn/train.ts';
import { PeerBook } from '../net/peer-book.ts';
import { payloadToDelta } from '../core/update.ts';
import { ChainAggregation, type UpdateSource } from '../chain/aggregation.ts';
import { InThreadAggregationEngine, aggregatorOf } from '../chain/aggregation-engine.ts';
import { Client, type ClientDeps } from '../node/client.ts';
import { type RunningNode, initialModelOf, modelSpecOf, startNode } from '../node/daemon.ts';
import { initLocalNetwork, testnetDefaults } from '../node/testnet.ts';
import { Miner } from '../node/miner.ts';
import { type Logger, silentLogger } from '../util/logger.ts';
import { SimClock } from './clock.ts';
import { Mobility, type MobilityOptions } from './mobility.ts';
import { SimNetwork, type SimNetworkOptions, defaultSimNetwork } from './network.ts';
import { SimPow } from './pow.ts';

export interface SimOptions {
  seed: number;
  miners: number;
  clients: number;
  phi: number;
  learning: Partial<LearningConfig>;
  aggregation: Partial<AggregationConfig>;
  /** Mean virtual time between blocks of one miner, ms. */
  meanBlockMs: number;
  /** The attack of each client (by index), if any; may change during the run (onRound). */
  attackOf?: (client: number, round: number) => Attack;
  mobility?: MobilityOptions;
  /** Clients start with a seeded random 0 … N−1 samples, so their uploads spread out in time
   * instead of arriving together (training takes no virtual time, so without it every client
   * of the same rate uploads at the same instant). */
  spread?: boolean;
  network?: SimNetworkOptions;
  /** Stop after this many aggregations on miner-1's chain, or this much virtual time. */
  aggregations: number;
  maxVirtualMs?: number;
  /** 'sim' (default): the in-process network on virtual time; 'libp2p': real daemons, small scale. */
  transport?: 'sim' | 'libp2p';
  /** libp2p runs: give up after this much wall time (default 15 minutes). */
  maxWallMs?: number;
  data?: TrainTest;
  logger?: Logger;
  onRound?: (r: RoundReport) => void;
}

export interface RoundReport {
  round: number;
  height: number;
  seconds: number; // virtual time of the block
  accuracy: number;
  loss: number;
  updates: { clientId: string; digest: string; high: boolean; weight: number; attack: string }[];
  rewards: Record<string, string>;
}

export interface SimResult {
  rounds: RoundReport[];
  virtualSeconds: number; // over libp2p: wall seconds
  wallSeconds: number;
  messages: { requests: number; gossip: number; unreachable: number } | null; // null over libp2p
  clients: ReturnType<Client['status']>[];
  minersConverged: boolean;
}

function identity(seed: number, id: string, role: 'miner' | 'client', mldsa: NativeMlDsa): Identity {
  const key = mldsa.signingKey(sha256(new TextEncoder().encode(`bfl-sim/${seed}/${id}`)));
  return { id, role, publicKey: key.publicKey, key };
}

export async function runSimulation(o: SimOptions): Promise<SimResult> {
  if (o.transport === 'libp2p') return runOverLibp2p(o);
  const wall0 = performance.now();
  const log = o.logger ?? silentLogger;
  const mldsa = new NativeMlDsa();
  const miners = Array.from({ length: o.miners }, (_, i) => identity(o.seed, `miner-${i + 1}`, 'miner', mldsa));
  const clients = Array.from({ length: o.clients }, (_, i) => identity(o.seed, `client-${i + 1}`, 'client', mldsa));
  const cfg: NetworkConfig = parseNetworkConfig({
    networkId: 'bfl-sim',
    genesisTime: 0,
    chain: { difficulty: 1, phi: o.phi },
    aggregation: o.aggregation as never,
    learning: { ...o.learning, partitionSeed: o.seed } as never,
    members: [...miners, ...clients].map((m) => ({ id: m.id, role: m.role, publicKey: toHex(m.publicKey) })),
  });
  const initial = initialModelOf(cfg);
  const params = chainParamsOf(cfg, new Uint8Array(initial.buffer));
  const genesis = createGenesisBlock(params);
  const clock = new SimClock(1);
  const mobility = o.mobility && new Mobility(o.miners, o.clients, o.mobility);
  const net = new SimNetwork(clock, o.network ?? defaultSimNetwork, mobility);
  const data = o.data ?? loadDataset(cfg.learning.dataset);
  const runtime = await ModelRuntime.create(modelSpecOf(cfg), { threads: 1 });
  const verifier = new InThreadVerifier(mldsa);
  const membership = new Membership(cfg.members);
  const dir = await mkdtemp(join(tmpdir(), 'bfl-sim-'));
  const stops: (() => Promise<unknown>)[] = [];
  const rec = new Recorder(o, runtime, data);
  const peerOf = async (id: Identity, index: number) => {
    const transport = net.add(`peer-${id.id}`, id.role, index);
    const peers = new PeerBook({ transport, identity: id, networkId: cfg.networkId, membership, verifier, timeoutMs: cfg.p2p.requestTimeoutMs, logger: log, clock });
    await peers.start();
    return { transport, peers };
  };

  try {
    // miners
    const stores: ChainStore[] = [];
    const minerNodes: Miner[] = [];
    for (let i = 0; i < o.miners; i++) {
      const id = miners[i];
      const { transport, peers } = await peerOf(id, i);
      const pool = await UpdatePool.open(join(dir, id.id, 'updates'));
      let miner: Miner | undefined;
      const updates: UpdateSource = { get: async (c, d) => miner?.fetchUpdate(c, d) };
      const aggregation = new ChainAggregation({ engine: new InThreadAggregationEngine(aggregatorOf(cfg.aggregation)), updates });
      const store = await ChainStore.open({ datadir: join(dir, id.id, 'chain'), params, signatures: verifier, aggregation, now: () => clock.now(), clock });
      const pow = new SimPow(clock, o.meanBlockMs, o.seed * 7 + i);
      miner = new Miner({ config: cfg, identity: id, store, pool, transport, peers, verifier, pow, aggregation, logger: log, clock });
      stores.push(store);
      minerNodes.push(miner);
      stops.push(async () => {
        await miner!.stop();
        await store.close();
        await pool.close();
      });
    }
    // clients
    const parts = partition(data.train.y, o.clients, cfg.learning.partition, o.seed);
    const phase = new Rng(o.seed * 13 + 5);
    const clientNodes: Client[] = [];
    for (let c = 0; c < o.clients; c++) {
      const id = clients[c];
      const { transport } = await peerOf(id, c);
      const mine = parts[c];
      const held = Math.min(cfg.learning.heldOut, Math.floor(mine.length / 5));
      const client = new Client({
        config: cfg,
        identity: id,
        transport,
        runtime,
        train: data.train,
        heldOut: subset(data.train, mine.slice(mine.length - held)),
        stream: new DataStream(mine.slice(0, mine.length - held), clock.now(), { rate: cfg.learning.rate, seed: o.seed * 1000 + c, initial: cfg.learning.initialSamples + (o.spread ? phase.int(cfg.learning.N) : 0) }),
        miners: miners.map((m) => ({ id: m.id, peerId: `peer-${m.id}` })),
        genesis: { anchor: blockHash(genesis.header), modelHash: sha256(params.initialModel), model: initial },
        datadir: join(dir, id.id),
        logger: log,
        clock,
        ...rec.hooks(c, id.id),
      });
      clientNodes.push(client);
      stops.push(() => client.stop());
    }

    rec.watch(stores[0], () => clock.now() / 1000);

    for (const m of minerNodes) await m.start();
    for (const c of clientNodes) await c.start();
    net.refreshLinks();
    clock.spawn(async () => {
      for (;;) {
        await clock.sleep(5000);
        net.refreshLinks();
      }
    });
    const maxMs = o.maxVirtualMs ?? 24 * 3600_000;
    await clock.advance(maxMs, () => stores[0].tip.rounds - 1 >= o.aggregations);
    await rec.settled();
    // Mining never pauses here, so tips can differ by a block in flight: the miners agree if
    // they hold the same block one below the lowest tip.
    const agreeAt = Math.max(0, Math.min(...stores.map((s) => s.tip.height)) - 1);
    const minersConverged = new Set(await Promise.all(stores.map((s) => s.hashAt(agreeAt)))).size === 1;
    const clientStatus = clientNodes.map((c) => c.status());
    const rounds = await rec.report(stores[0]);
    // stop inside the simulation: in-flight work may still wait for virtual time
    let stopped = false;
    clock.spawn(async () => {
      for (const s of stops.splice(0).reverse()) await s();
      stopped = true;
    });
    await clock.advance(Number.MAX_SAFE_INTEGER, () => stopped);
    return {
      rounds,
      virtualSeconds: clock.now() / 1000,
      wallSeconds: (performance.now() - wall0) / 1000,
      messages: { ...net.counters },
      clients: clientStatus,
      minersConverged,
    };
  } finally {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    await runtime.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * What every run records, over either transport: which update was made with which attack,
 * what the omniscient attackers (ALIE, IPM) know (the latest honest update of each client), and
 * one RoundReport per aggregation on the watched miner's canonical chain.
 */
class Recorder {
  private readonly o: SimOptions;
  private readonly runtime: ModelRuntime;
  private readonly data: TrainTest;
  private readonly rounds: { r: RoundReport; hash: string }[] = [];
  private readonly evaluations: Promise<void>[] = [];
  private readonly attackOfDigest = new Map<string, string>();
  private readonly latestHonest = new Map<string, Float32Array>();
  private stats: HonestStats | undefined;
  private round = 0;

  constructor(o: SimOptions, runtime: ModelRuntime, data: TrainTest) {
    this.o = o;
    this.runtime = runtime;
    this.data = data;
  }

  /** The experiment hooks of client `c` (by index). */
  hooks(c: number, id: string): Pick<ClientDeps, 'attackOf' | 'onUpload' | 'honestStats'> {
    return {
      attackOf: () => this.o.attackOf?.(c, this.round) ?? { kind: 'none' as const },
      onUpload: (u) => {
        this.attackOfDigest.set(u.digest, u.attack);
        if (u.attack === 'none') {
          this.latestHonest.set(id, u.delta);
          this.stats = undefined;
        }
      },
      honestStats: () => this.honestStats(),
    };
  }

  private honestStats(): HonestStats | undefined {
    if (this.stats || this.latestHonest.size === 0) return this.stats;
    const vs = [...this.latestHonest.values()];
    const mean = new Float32Array(vs[0].length);
    const std = new Float32Array(vs[0].length);
    for (let k = 0; k < mean.length; k++) {
      let s1 = 0;
      let s2 = 0;
      for (const v of vs) {
        s1 += v[k];
        s2 += v[k] * v[k];
      }
      const m = s1 / vs.length;
      mean[k] = m;
      std[k] = Math.sqrt(Math.max(0, s2 / vs.length - m * m));
    }
    this.stats = { mean, std };
    return this.stats;
  }

  /** Report every aggregation that becomes canonical on `store` (seconds: the run's clock). */
  watch(store: ChainStore, seconds: () => number): void {
    store.on('tip', (state) => {
      if (toHex(state.anchor) !== toHex(state.hash)) return;
      const at = seconds();
      this.evaluations.push(
        (async () => {
          const block = (await store.getBlock(state.hash))!;
          const agg = aggregationTxOf(block)!;
          const ev = await evaluate(this.runtime, payloadToDelta(agg.model), this.data.test);
          const r: RoundReport = {
            round: agg.round,
            height: state.height,
            seconds: at,
            accuracy: ev.accuracy,
            loss: ev.loss,
            updates: agg.entries.map((e) => {
              const digest = toHex(e.updateDigest);
              return { clientId: e.clientId, digest, high: e.high, weight: e.weight, attack: this.attackOfDigest.get(digest) ?? 'none' };
            }),
            rewards: Object.fromEntries(agg.rewards.map((x) => [x.id, x.amount.toString()])),
          };
          this.rounds.push({ r, hash: toHex(state.hash) });
          this.o.onRound?.(r);
        })(),
      );
      this.round = Math.max(this.round, state.rounds - 1);
    });
  }

  async settled(): Promise<void> {
    await Promise.all(this.evaluations);
  }

  /** The rounds of `store`'s final canonical chain, in order, up to the requested number (a
   * round reported on a branch that lost a reorg is left out). */
  async report(store: ChainStore): Promise<RoundReport[]> {
    const kept: RoundReport[] = [];
    for (const { r, hash } of this.rounds) if ((await store.hashAt(r.height)) === hash) kept.push(r);
    kept.sort((a, b) => a.round - b.round);
    return kept.filter((r) => r.round <= this.o.aggregations || kept.length <= this.o.aggregations);
  }
}

/**
 * The same run over real libp2p, at small scale: `bfl-node init` writes a loopback network and
 * every node is a whole daemon (`startNode`: TCP, Noise, Yamux, gossipsub, worker-thread
 * signature checks and proof of work at the testnet difficulty) in this process, on the wall
 * clock. Data arrive at the testnet's 50 samples/s (the simulator's rate is virtual).
 * No mobility: coverage is a property of the simulated radio.
 */
async function runOverLibp2p(o: SimOptions): Promise<SimResult> {
  if (o.mobility) throw new RangeError('mobility needs the simulated network (coverage is a property of the simulated radio)');
  const wall0 = performance.now();
  const log = o.logger ?? silentLogger;
  const dir = await mkdtemp(join(tmpdir(), 'bfl-exp-libp2p-'));
  const nodes: RunningNode[] = [];
  let runtime: ModelRuntime | undefined;
  try {
    const init = await initLocalNetwork({
      dir,
      miners: o.miners,
      clients: o.clients,
      networkId: 'bfl-exp',
      chain: { difficulty: testnetDefaults.difficulty, phi: o.phi },
      learning: { ...o.learning, rate: testnetDefaults.rate, partitionSeed: o.seed },
      aggregation: o.aggregation,
    });
    const cfg = await loadNetworkConfig(init.config);
    const data = o.data ?? loadDataset(cfg.learning.dataset);
    runtime = await ModelRuntime.create(modelSpecOf(cfg), { threads: 1 });
    const rec = new Recorder(o, runtime, data);
    for (const n of init.nodes) {
      const c = n.role === 'client' ? Number(n.id.split('-')[1]) - 1 : -1;
      const node = await startNode({ role: n.role, config: init.config, identity: n.identity, datadir: n.datadir, logger: log.child({ node: n.id }), experiment: n.role === 'client' ? rec.hooks(c, n.id) : undefined });
      nodes.push(node);
      // watch from the start, before any client can upload
      if (n.id === 'miner-1') rec.watch(node.chain!, () => (performance.now() - wall0) / 1000);
    }
    const chain = nodes.find((n) => n.id === 'miner-1')!.chain!;
    const deadline = Date.now() + (o.maxWallMs ?? 15 * 60_000);
    while (chain.tip.rounds - 1 < o.aggregations) {
      if (Date.now() > deadline) throw new Error(`libp2p run: ${chain.tip.rounds - 1} of ${o.aggregations} aggregations after ${((o.maxWallMs ?? 15 * 60_000) / 1000).toFixed(0)} s`);
      await sleep(200);
    }
    await rec.settled();
    // Quiesce as the testnet does: stop the clients, give the miners a moment to agree.
    const clients = nodes.filter((n) => n.role === 'client');
    const clientStatus = clients.map((n) => n.status() as ReturnType<Client['status']>);
    for (const n of clients) await n.stop();
    const miners = nodes.filter((n) => n.role === 'miner');
    let minersConverged = false;
    for (const until = Date.now() + 20_000; !minersConverged && Date.now() < until; await sleep(200)) {
      minersConverged = new Set(miners.map((m) => toHex(m.chain!.tip.hash))).size === 1;
    }
    await rec.settled();
    const seconds = (performance.now() - wall0) / 1000;
    return { rounds: await rec.report(chain), virtualSeconds: seconds, wallSeconds: seconds, messages: null, clients: clientStatus, minersConverged };
  } finally {
    for (const n of nodes.reverse()) await n.stop().catch(() => undefined);
    await runtime?.close();
    await rm(dir, { recursive: true, force: true });
  }
}
