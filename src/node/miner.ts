/**
 * The edge miner (the paper's Algorithm 3; docs/architecture.md, "The miner"): the mining
 * loop, with its services beside it:
 * - UpdateIntake (update-intake.ts): signed updates from clients, announcements from miners,
 *   the unrecorded set;
 * - BlockSync (block-sync.ts): block announcements, peers' blocks, catching up;
 * - ChainService (chain-service.ts): the chain served to clients and syncing miners.
 * It mines continuously while there are unrecorded updates, aggregating when the ϕ rule says so
 * (chain/aggregation.ts, on a worker thread in the daemon), and aborts the proof of work as soon
 * as the tip changes.
 */
import { equalBytes, toHex } from '../core/bytes.ts';
import { buildBlockTemplate, signBlock } from '../core/block-builder.ts';
import { aggregationTxOf } from '../core/chain.ts';
import { encodeBlock } from '../core/encoding.ts';
import { isBflError } from '../core/errors.ts';
import type { Block } from '../core/types.ts';
import { payloadToDelta, recordOf } from '../core/update.ts';
import { type ChainState, pendingOf, sortedPending } from '../core/validation.ts';
import { distinctClients } from '../core/votes.ts';
import type { ChainAggregation } from '../chain/aggregation.ts';
import type { ChainStore, Reorg } from '../chain/store.ts';
import { type UpdatePool, poolKey } from '../chain/update-pool.ts';
import type { NetworkConfig } from '../config/network.ts';
import type { Identity } from '../crypto/keyfile.ts';
import type { PowMiner } from '../mining/miner.ts';
import { encodeBlockAnnouncement } from '../net/messages.ts';
import type { PeerBook } from '../net/peer-book.ts';
import { topics } from '../net/protocols.ts';
import type { Transport } from '../net/transport.ts';
import type { MinerStatus } from '../api/status.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import type { Metrics } from '../util/metrics.ts';
import type { BlockSync } from './block-sync.ts';
import type { ChainService } from './chain-service.ts';
import { Notifier } from './notifier.ts';
import type { UpdateIntake } from './update-intake.ts';

export interface MinerOptions {
  /** Records per block at most (a block of 64 records is ~170 KB without the model). */
  maxRecordsPerBlock: number;
  /** How often to compare heads with a peer (catches blocks whose announcement we missed). */
  syncIntervalMs: number;
  /** Payloads of updates aggregated this many blocks deep are dropped (their record stays). */
  pruneDepth: number;
}

/**
 * The heights whose payloads a new tip at `height` makes prunable: every height the tip passed
 * since the last prune (`prunedTo`), not only the newest — after a sync or reorg of N blocks the
 * N − 1 skipped heights would keep their payloads forever. At most `maxPerCall` heights (the
 * deepest ones stay: their payloads were pruned when they passed, or by an earlier process) so a
 * first prune after a long sync does not stall the loop. A tip that moved back prunes nothing.
 */
export function pruneRange(prunedTo: number, height: number, depth: number, maxPerCall = 1024): { from: number; to: number; prunedTo: number } {
  const to = height - depth;
  const from = Math.max(prunedTo + 1, to - maxPerCall + 1, 1);
  return { from, to, prunedTo: Math.max(prunedTo, to) };
}

/**
 * What a block buried `pruneDepth` deep lets the pool drop: the payloads it aggregated and those
 * its records superseded, then their replay records but each client's vote (update-pool.ts: what
 * bounds the pool). A client's entries lose their payload only here, in a block that names it.
 */
export async function pruneBlock(block: Block, pool: UpdatePool, intake: Pick<UpdateIntake, 'supersededBy' | 'forgettable'>): Promise<void> {
  const agg = aggregationTxOf(block);
  if (agg) await pool.prunePayloads(agg.entries.map((e) => poolKey(e.clientId, e.updateDigest)));
  // Updates this block's records superseded are dropped as deep: else a flood within the rate
  // limit fills the disk.
  const records = block.txs.flatMap((tx) => (tx.type === 'record' ? [tx] : []));
  await pool.prunePayloads(await intake.supersededBy(records));
  const clients = new Set([...(agg?.entries ?? []), ...records].map((e) => e.clientId));
  await pool.forget(await intake.forgettable([...clients].flatMap((c) => pool.settledOf(c))));
}

export const defaultMinerOptions: MinerOptions = { maxRecordsPerBlock: 64, syncIntervalMs: 3000, pruneDepth: 32 };

export interface MinerComponents {
  config: NetworkConfig;
  identity: Identity;
  store: ChainStore;
  pool: UpdatePool;
  aggregation: ChainAggregation;
  intake: UpdateIntake;
  sync: BlockSync;
  chainService: ChainService;
  transport: Transport;
  peers: PeerBook;
  pow: PowMiner;
  /** Accuracy of a global model on the miner's test set (for /status and metrics). */
  evaluate?: (model: Float32Array) => Promise<number>;
  clock: Clock;
  logger: Logger;
  metrics?: Metrics;
}

function minerMetrics(m: Metrics) {
  return {
    mined: m.counter('bfl_miner_blocks_mined_total', 'blocks this miner mined'),
    hashRate: m.gauge('bfl_miner_hashes_per_second', 'proof-of-work hash rate of the last job'),
    accuracy: m.gauge('bfl_model_accuracy_ratio', 'test accuracy of the newest global model'),
    rounds: m.gauge('bfl_chain_aggregations', 'aggregation rounds on the canonical chain (genesis excluded)'),
  };
}

export class Miner {
  private readonly c: MinerComponents;
  private readonly o: MinerOptions;
  private readonly log: Logger;
  private readonly m?: ReturnType<typeof minerMetrics>;
  private readonly wake: Notifier;
  private readonly clock: Clock;
  private running = false;
  private mining?: AbortController;
  private loop?: Promise<void>;
  private lastAccuracy: number | null = null;
  private evaluating = Promise.resolve();
  private flagged: string[] = [];
  private readonly onTip: (s: ChainState, reorg?: Reorg) => void;

  constructor(c: MinerComponents, options: MinerOptions) {
    this.c = c;
    this.o = options;
    this.log = c.logger;
    this.m = c.metrics && minerMetrics(c.metrics);
    this.clock = c.clock;
    this.wake = new Notifier(this.clock);
    this.onTip = (s, reorg) => this.spawn(() => this.tipChanged(s, reorg), 'tip handling');
    c.intake.onNewUpdate(() => this.wake.notify());
  }

  private spawn(task: () => Promise<unknown>, what: string): void {
    this.clock.spawn(task, (e) => this.log.debug({ err: (e as Error).message }, `${what} failed`));
  }

  async start(): Promise<void> {
    this.running = true;
    await this.c.intake.start();
    await this.c.chainService.start();
    await this.c.sync.start();
    this.c.store.on('tip', this.onTip);
    this.loop = this.clock.run(() => this.mineLoop());
    this.m?.rounds.set(this.c.store.tip.rounds - 1);
    this.spawn(() => this.evaluateTip(), 'evaluation');
  }

  async stop(): Promise<void> {
    this.running = false;
    this.c.store.off('tip', this.onTip);
    this.mining?.abort();
    this.wake.notify();
    // joins of other activities: suspended, so a simulated clock can move while they finish
    await this.clock.suspend(Promise.all([this.loop, this.c.sync.stop(), this.c.chainService.stop(), this.c.intake.stop(), this.evaluating]));
  }

  private async tipChanged(state: ChainState, reorg?: Reorg): Promise<void> {
    this.mining?.abort(); // stale work: the tip moved
    // The store describes every new tip as a reorg; a plain extension (nothing disconnected, one
    // block connected) is handled by its records below. Recomputing then walked the whole pool on
    // LevelDB for every block (bench ingest: the pool only grows while ϕ is not reached).
    if (reorg && (reorg.disconnected.length > 0 || reorg.connected.length > 1)) await this.c.intake.recompute();
    else {
      const block = await this.c.store.getBlock(state.hash);
      this.c.intake.recorded((block?.txs ?? []).flatMap((tx) => (tx.type === 'record' ? [tx] : [])));
      const agg = block && aggregationTxOf(block);
      if (agg) await this.c.intake.readmit(agg.modelHash);
    }
    this.m?.rounds.set(state.rounds - 1);
    const anchorBlock = equalBytes(state.anchor, state.hash) ? await this.c.store.getBlock(state.hash) : undefined;
    const agg = anchorBlock && aggregationTxOf(anchorBlock);
    if (agg) {
      this.flagged = agg.entries.filter((e) => !e.high).map((e) => e.clientId);
      this.log.info({ round: agg.round, height: state.height, updates: agg.entries.length, low: this.flagged }, 'aggregation on chain');
      this.spawn(() => this.evaluateTip(), 'evaluation');
    }
    await this.prune(state);
    this.wake.notify();
  }

  /** The deepest height pruned so far in this process (a sync or reorg moves the tip by many blocks at once). */
  private prunedTo = 0;

  private async prune(state: ChainState): Promise<void> {
    const r = pruneRange(this.prunedTo, state.height, this.o.pruneDepth);
    for (let h = r.from; h <= r.to; h++) await this.pruneHeight(h);
    this.prunedTo = r.prunedTo;
  }

  private async pruneHeight(h: number): Promise<void> {
    const block = await this.c.store.blockAt(h);
    if (block) await pruneBlock(block, this.c.pool, this.c.intake);
  }

  private evaluateTip(): Promise<void> {
    const evaluate = this.c.evaluate;
    if (!evaluate) return Promise.resolve();
    this.evaluating = this.evaluating.then(async () => {
      const block = await this.c.store.getBlock(this.c.store.tip.anchor);
      const agg = block && aggregationTxOf(block);
      if (!agg) return;
      this.lastAccuracy = await evaluate(payloadToDelta(agg.model));
      this.m?.accuracy.set(this.lastAccuracy);
    });
    return this.evaluating.catch((e) => this.log.warn({ err: (e as Error).message }, 'evaluation failed'));
  }

  private async mineLoop(): Promise<void> {
    const { store, intake, aggregation, pow, identity, config } = this.c;
    while (this.running) {
      let block: Block | undefined;
      try {
        const tip = store.tip;
        const entries = await intake.candidates(this.o.maxRecordsPerBlock);
        if (entries.length === 0) {
          await this.wake.wait(1000);
          continue;
        }
        const records = entries.map(recordOf);
        const pending = [...tip.pending, ...records.map(pendingOf)];
        const agg = distinctClients(pending) >= store.params.phi ? await aggregation.compute(store, tip, sortedPending(pending)) : undefined;
        const template = buildBlockTemplate({ parent: tip, params: store.params, minerId: identity.id, timestamp: this.clock.now(), records, aggregation: agg });
        this.mining = new AbortController();
        const solved = await pow.mine(template.header, this.mining.signal);
        this.m?.hashRate.set(pow.hashRate);
        if (!solved || !this.running || !equalBytes(store.tip.hash, tip.hash)) continue; // aborted or stale
        block = signBlock({ ...template, header: solved.header }, config.networkId, identity.key);
        const bytes = encodeBlock(block);
        await store.addBlock(bytes);
        this.m?.mined.inc();
        this.log.info({ height: block.header.height, records: records.length, aggregation: agg?.round, hashes: solved.hashes }, 'mined a block');
        await this.c.transport.publish(topics(config.networkId).blocks, encodeBlockAnnouncement({ header: block.header, blockBytes: bytes.length })).catch(() => undefined);
      } catch (e) {
        this.log.warn({ err: (e as Error).message, code: isBflError(e) ? e.code : undefined }, 'mining round failed');
        await this.wake.wait(500);
      }
    }
  }

  status(): MinerStatus {
    const { store, transport, peers, pool, pow, identity } = this.c;
    const tip = store.tip;
    return {
      role: 'miner',
      id: identity.id,
      peerId: transport.self,
      height: tip.height,
      tip: toHex(tip.hash),
      work: tip.work.toString(),
      aggregations: tip.rounds - 1,
      pending: tip.pending.length,
      peers: transport.connections().length,
      miners: peers.connectedMiners().map((m) => m.memberId),
      pool: { unrecorded: this.c.intake.size, total: pool.size },
      lastAccuracy: this.lastAccuracy,
      flagged: this.flagged,
      hashRate: Math.round(pow.hashRate),
      penalties: peers.penaltyReport(),
      orphans: store.orphanCount,
    };
  }

  /** The latest global model (for tools and tests). */
  async globalModel(): Promise<Float32Array> {
    const b = await this.c.store.getBlock(this.c.store.tip.anchor);
    return payloadToDelta(aggregationTxOf(b!)!.model);
  }
}
