/**
 * The experiment harness (docs/architecture.md, "The simulator"): the real Miner and Client state machines, with only
 * the transport (SimNetwork), the clock (SimClock) and proof of work (SimPow) swapped, so a
 * result here is a result about the product. Identities, data, partitions, mobility and mining
 * times all come from one seed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChainStore, Reorg } from '../chain/store.ts';
import type { ChainState } from '../core/validation.ts';
import type { AggregationTx } from '../core/types.ts';
import { type AggregationConfig, type LearningConfig, type NetworkConfig, chainParamsOf, loadNetworkConfig, parseNetworkConfig } from '../config/network.ts';
import { fromHex, toHex } from '../core/bytes.ts';
import { Rng } from '../core/random.ts';
import { sha256 } from '../core/hash.ts';
import { aggregationTxOf } from '../core/chain.ts';
import type { Identity } from '../crypto/keyfile.ts';
import { NativeMlDsa } from '../crypto/mldsa.ts';
import { InThreadVerifier } from '../crypto/verifier.ts';
import { type TrainTest, loadDataset } from '../learn/data.ts';
import { partition } from '../learn/partition.ts';
import { ModelRuntime } from '../learn/runtime.ts';
import { evaluate } from '../learn/train.ts';
import { payloadToDelta } from '../core/update.ts';
import { InThreadAggregationEngine, aggregatorOf } from '../chain/aggregation-engine.ts';
import { type ClientNode, type MinerNode, createClient, createMiner } from '../node/assemble.ts';
import { type RoundBehaviour, honestRound } from '../node/behaviour.ts';
import type { ClientHooks } from '../node/client.ts';
import type { ClientStatus } from '../api/status.ts';
import { type RunningNode, initialModelOf, modelSpecOf, startNode } from '../node/daemon.ts';
import { initLocalNetwork, testnetDefaults } from '../node/testnet.ts';
import { type Logger, silentLogger } from '../util/logger.ts';
import { AssociationCoordinator, type SimAssociationOptions, type SimAssociationReport, UploadTally } from './association.ts';
import { associationSelector } from '../node/association-selector.ts';
import { SimClock } from './clock.ts';
import { Mobility, type MobilityOptions } from './mobility.ts';
import { SimNetwork, type SimNetworkOptions, defaultSimNetwork } from './network.ts';
import { SimPow } from './pow.ts';
import { WasmGramKernel } from '../kernels/gram.ts';

export interface SimOptions {
  seed: number;
  miners: number;
  clients: number;
  phi: number;
  learning: Partial<LearningConfig>;
  aggregation: Partial<AggregationConfig>;
  /** Mean virtual time between blocks of one miner, ms. */
  meanBlockMs: number;
  /** What each client (by index) does in a round besides honest training (the experiments'
   * attacks); may change during the run (onRound). `honest`: what the omniscient attacks of
   * the literature know, the honest updates' statistics. Default: honest training. */
  behaviourOf?: (client: number, round: number, honest: () => HonestStats | undefined) => RoundBehaviour;
  mobility?: MobilityOptions;
  /** Clients choose their miner through an association scheduler (issue 17): a coordinator
   * assigns (miner, channel) jointly in the radio twin over the mobility model's positions
   * (needs `mobility`). Default: each client uploads to its nearest miner by RTT. */
  association?: SimAssociationOptions;
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
  /** Experiments that need each aggregation's raw updates (exact Shapley values, issue 11): called
   * after onRound at the aggregation's virtual instant, with the model it started from. */
  inspect?: (r: RoundReport, ctx: { previous: Float32Array; deltas: Map<string, Float32Array>; samples: Map<string, number>; accuracyOf: (model: Float32Array) => Promise<number> }) => Promise<void>;
}

/** The honest updates' mean and standard deviation per coordinate (their latest per client). */
export interface HonestStats {
  mean: Float32Array;
  std: Float32Array;
  /** Scoring (issue 11): the latest honest update of each client that has one, by client number (mimic, copycat). */
  latest?: { client: number; delta: Float32Array }[];
  /** Scoring (issue 11): the last global update on the chain, model(t) − model(t − 1) (free-ride-global). */
  previousGlobal?: Float32Array;
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
  clients: ClientStatus[];
  minersConverged: boolean;
  /** With `association`: what the coordinator's assignments cost, and where uploads went. */
  association?: SimAssociationReport;
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
  const params = chainParamsOf(cfg, new Uint8Array(initialModelOf(cfg).buffer));
  const clock = new SimClock(1);
  const mobility = o.mobility && new Mobility(o.miners, o.clients, o.mobility);
  const net = new SimNetwork(clock, o.network ?? defaultSimNetwork, mobility);
  const data = o.data ?? loadDataset(cfg.learning.dataset);
  const runtime = await ModelRuntime.create(modelSpecOf(cfg), { threads: 1 });
  const verifier = new InThreadVerifier(mldsa);
  const dir = await mkdtemp(join(tmpdir(), 'bfl-sim-'));
  const stops: (() => Promise<unknown>)[] = [];
  const rec = new Recorder(o, runtime, data);
  rec.genesisModel = payloadToDelta(params.initialModel);
  // the product's own assembly: only the transport, the clock and proof of work are swapped
  const parts = (id: Identity, index: number) => ({ config: cfg, params, identity: id, transport: net.add(`peer-${id.id}`, id.role, index), verifier, clock, logger: log });

  try {
    // miners; the pairwise matrix of their BFL-MEC in WebAssembly SIMD (the reference's bits,
    // ~4x faster; one thread: the simulation itself is one)
    const gram = WasmGramKernel.create() ?? undefined;
    const minerNodes: MinerNode[] = [];
    for (let i = 0; i < o.miners; i++) {
      const id = miners[i];
      const node = await createMiner({
        ...parts(id, i),
        datadir: join(dir, id.id),
        pow: new SimPow(clock, o.meanBlockMs, o.seed * 7 + i),
        aggregationEngine: new InThreadAggregationEngine(aggregatorOf(cfg.aggregation, gram)),
      });
      minerNodes.push(node);
      stops.push(() => node.close());
    }
    const stores = minerNodes.map((m) => m.store);
    const perClient = o.association?.mode === 'per-client' ? o.association : undefined;
    const coordinator = o.association && !perClient ? await AssociationCoordinator.create(o.association, mobility, o.miners, o.clients, clock, o.seed * 31 + 17) : undefined;
    if (coordinator) stops.push(() => coordinator.close());
    const tally = perClient && new UploadTally(o.miners);
    const samples = partition(data.train.y, o.clients, cfg.learning.partition, o.seed);
    const phase = new Rng(o.seed * 13 + 5);
    const clientNodes: ClientNode[] = [];
    for (let c = 0; c < o.clients; c++) {
      const id = clients[c];
      const node = await createClient({
        ...parts(id, c),
        datadir: join(dir, id.id),
        runtime,
        data,
        samples: samples[c],
        index: c,
        miners: miners.map((m) => ({ id: m.id, peerId: `peer-${m.id}` })),
        extraInitialSamples: o.spread ? phase.int(cfg.learning.N) : 0,
        hooks: coordinator ? coordinatedHooks(rec.hooks(c, id.id), coordinator, c) : perClient ? await perClientHooks(rec.hooks(c, id.id), perClient, o.miners, c, tally!, stops) : rec.hooks(c, id.id),
      });
      clientNodes.push(node);
      stops.push(() => node.close());
    }

    rec.watch(stores[0], () => clock.now() / 1000, (t) => clock.run(t));

    for (const m of minerNodes) await m.start();
    for (const c of clientNodes) await c.start();
    coordinator?.start();
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
      ...(coordinator ? { association: coordinator.report() } : {}),
      ...(perClient ? { association: tally!.report(perClient.policy, 'per-client') } : {}),
    };
  } finally {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    await runtime.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** A client's hooks with the coordinator's selector, and its uploads counted by miner. */
function coordinatedHooks(h: ClientHooks, coordinator: AssociationCoordinator, c: number): ClientHooks {
  return {
    ...h,
    selector: coordinator.selectorFor(c),
    onUpload: (u) => {
      coordinator.uploaded(c, Number(u.miner.split('-')[1]) - 1);
      h.onUpload?.(u);
    },
  };
}

/** The daemon's selector (the product's own, on measured RTTs and announced loads), built
 * here so that its choice at each upload can be counted. */
async function perClientHooks(h: ClientHooks, o: SimAssociationOptions, miners: number, c: number, tally: UploadTally, stops: (() => Promise<unknown>)[]): Promise<ClientHooks> {
  const selector = await associationSelector({ policy: o.policy, policyFile: o.policyFile, miners, seed: c + 1 });
  stops.push(() => selector.close());
  const index = (id: string | null) => (id === null ? -1 : Number(id.split('-')[1]) - 1);
  return {
    ...h,
    selector,
    onUpload: (u) => {
      tally.add(index(u.miner), index(selector.chosen));
      h.onUpload?.(u);
    },
  };
}

/**
 * What every run records, over either transport: which update was made with which attack,
 * what the omniscient attackers (ALIE, IPM) know (the latest honest update of each client), and
 * one RoundReport per aggregation on the watched miner's canonical chain.
 */
export class Recorder {
  private readonly o: SimOptions;
  private readonly runtime: ModelRuntime;
  private readonly data: TrainTest;
  private readonly rounds: { r: RoundReport; hash: string }[] = [];
  /** Hex hashes of the aggregation blocks reported (or being evaluated). */
  private readonly reported = new Set<string>();
  private readonly evaluations: Promise<void>[] = [];
  private readonly attackOfDigest = new Map<string, string>();
  private readonly latestHonest = new Map<string, Float32Array>();
  private readonly deltaOfDigest = new Map<string, Float32Array>(); // only with o.inspect
  private readonly samplesOfDigest = new Map<string, number>(); // only with o.inspect
  private stats: HonestStats | undefined;
  // scoring (issue 11): what the mimic, copycat and free-ride-global attackers copy
  private lastModel: Float32Array | undefined;
  /** The genesis model: what the first aggregation started from (inspect only; the attackers' previousGlobal starts after it). */
  genesisModel: Float32Array | undefined;
  private previousGlobal: Float32Array | undefined;
  private round = 0;

  constructor(o: SimOptions, runtime: ModelRuntime, data: TrainTest) {
    this.o = o;
    this.runtime = runtime;
    this.data = data;
  }

  /** The experiment hooks of client `c` (by index). */
  hooks(c: number, id: string): ClientHooks {
    return {
      behaviour: { forRound: () => this.o.behaviourOf?.(c, this.round, () => this.honestStats()) ?? honestRound },
      onUpload: (u) => {
        this.attackOfDigest.set(u.digest, u.attack);
        if (this.o.inspect) {
          this.deltaOfDigest.set(u.digest, u.delta);
          this.samplesOfDigest.set(u.digest, u.samples);
        }
        if (u.attack === 'none') {
          this.latestHonest.set(id, u.delta);
          this.stats = undefined;
        }
      },
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
    const latest = [...this.latestHonest].map(([id, delta]) => ({ client: Number(id.split('-')[1]) - 1, delta })).sort((a, b) => a.client - b.client);
    this.stats = { mean, std, latest, previousGlobal: this.previousGlobal };
    return this.stats;
  }

  /** Report every aggregation that becomes canonical on `store` (seconds: the run's clock); returns the way to stop watching. */
  watch(store: ChainStore, seconds: () => number, track: (task: () => Promise<void>) => Promise<void> = (t) => t()): () => void {
    const onTip = (state: ChainState, reorg?: Reorg) => {
      // A branch that wins a race connects several blocks at once: an aggregation among them
      // below the new tip was never this store's tip, and the report lacked its round (the
      // libp2p e2e saw 2 rounds of 3). Those are reported too, as what became canonical at this
      // instant, but the experiment's callbacks and the attackers' copies follow the tips seen,
      // as before: the simulator's runs are unchanged.
      const below = (reorg?.connected ?? []).filter((h) => h !== toHex(state.hash) && !this.reported.has(h));
      if (below.length > 0) {
        const at = seconds();
        this.evaluations.push(
          track(async () => {
            for (const h of below) {
              const block = (await store.getBlock(fromHex(h)))!;
              const agg = aggregationTxOf(block);
              if (!agg || this.reported.has(h)) continue;
              this.reported.add(h);
              const ev = await evaluate(this.runtime, payloadToDelta(agg.model), this.data.test);
              this.rounds.push({ r: this.roundReport(agg, block.header.height, at, ev), hash: h });
            }
          }),
        );
      }
      if (toHex(state.anchor) !== toHex(state.hash)) return;
      this.reported.add(toHex(state.hash));
      const at = seconds();
      // Tracked as an activity of the virtual clock (issue 11): the report's callbacks (rotating
      // attackers) and the global update the attackers copy then take effect at this virtual
      // instant, not whenever the evaluation happens to finish in real time.
      this.evaluations.push(
        track(async () => {
          const block = (await store.getBlock(state.hash))!;
          const agg = aggregationTxOf(block)!;
          const model = payloadToDelta(agg.model);
          const before = this.lastModel;
          if (this.lastModel) this.previousGlobal = model.map((v, k) => v - this.lastModel![k]);
          this.lastModel = model;
          this.stats = undefined;
          const ev = await evaluate(this.runtime, model, this.data.test);
          const r = this.roundReport(agg, state.height, at, ev);
          this.rounds.push({ r, hash: toHex(state.hash) });
          this.o.onRound?.(r);
          const base = before ?? this.genesisModel;
          if (this.o.inspect && base) {
            await this.o.inspect(r, { previous: base, deltas: this.deltaOfDigest, samples: this.samplesOfDigest, accuracyOf: async (m) => (await evaluate(this.runtime, m, this.data.test)).accuracy });
          }
        }),
      );
      this.round = Math.max(this.round, state.rounds - 1);
    };
    store.on('tip', onTip);
    return () => store.off('tip', onTip);
  }

  /** The report of aggregation `agg` at `height`, canonical here since `at` s, evaluated as `ev`. */
  private roundReport(agg: AggregationTx, height: number, at: number, ev: { accuracy: number; loss: number }): RoundReport {
    return {
      round: agg.round,
      height,
      seconds: at,
      accuracy: ev.accuracy,
      loss: ev.loss,
      updates: agg.entries.map((e) => {
        const digest = toHex(e.updateDigest);
        return { clientId: e.clientId, digest, high: e.high, weight: e.weight, attack: this.attackOfDigest.get(digest) ?? 'none' };
      }),
      rewards: Object.fromEntries(agg.rewards.map((x) => [x.id, x.amount.toString()])),
    };
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
  let rec: Recorder | undefined;
  let unwatch: (() => void) | undefined;
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
    rec = new Recorder(o, runtime, data);
    for (const n of init.nodes) {
      const c = n.role === 'client' ? Number(n.id.split('-')[1]) - 1 : -1;
      const node = await startNode({ role: n.role, config: init.config, identity: n.identity, datadir: n.datadir, logger: log.child({ node: n.id }), experiment: n.role === 'client' ? rec.hooks(c, n.id) : undefined });
      nodes.push(node);
      // watch from the start, before any client can upload
      if (n.id === 'miner-1') unwatch = rec.watch(node.chain!, () => (performance.now() - wall0) / 1000);
    }
    const chain = nodes.find((n) => n.id === 'miner-1')!.chain!;
    const miners = nodes.filter((n) => n.role === 'miner');
    const agreed = () => new Set(miners.map((m) => toHex(m.chain!.tip.hash))).size === 1;
    const deadline = Date.now() + (o.maxWallMs ?? 15 * 60_000);
    // enough aggregations on a tip every miner holds: miner-1 alone may be on a branch that a
    // heavier one with fewer aggregations replaces (then the report had fewer rounds than asked)
    while (chain.tip.rounds - 1 < o.aggregations || !agreed()) {
      if (Date.now() > deadline) throw new Error(`libp2p run: ${chain.tip.rounds - 1} of ${o.aggregations} aggregations after ${((o.maxWallMs ?? 15 * 60_000) / 1000).toFixed(0)} s`);
      await sleep(200);
    }
    await rec.settled();
    // Quiesce as the testnet does: stop the clients, give the miners a moment to agree.
    const clients = nodes.filter((n) => n.role === 'client');
    const clientStatus = clients.map((n) => n.status() as ClientStatus);
    for (const n of clients) await n.stop();
    let minersConverged = false;
    for (const until = Date.now() + 20_000; !minersConverged && Date.now() < until; await sleep(200)) minersConverged = agreed();
    await rec.settled();
    const seconds = (performance.now() - wall0) / 1000;
    return { rounds: await rec.report(chain), virtualSeconds: seconds, wallSeconds: seconds, messages: null, clients: clientStatus, minersConverged };
  } finally {
    // a tip that arrives after the report (the miners still run) must not read a closed store:
    // stop watching, let the evaluations under way finish, then stop the nodes
    unwatch?.();
    await rec?.settled().catch(() => undefined);
    for (const n of nodes.reverse()) await n.stop().catch(() => undefined);
    await runtime?.close();
    await rm(dir, { recursive: true, force: true });
  }
}
