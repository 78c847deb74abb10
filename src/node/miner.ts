/**
 * The edge miner (the paper's Algorithm 3; DESIGN.md §1, §3, §6):
 * - accepts signed updates from clients (submit protocol), checks them cheapest first
 *   (seen, shape, admission, base model, then the signature in the worker pool), stores them and
 *   announces them to the other miners (gossip, small), who pull the payload by digest;
 * - mines continuously while there are unrecorded updates, aggregating when the ϕ rule says so,
 *   on worker threads, aborted as soon as the tip changes;
 * - validates every received block, re-computing its aggregation from the raw updates
 *   (fetching missing ones from peers first), and syncs from peers with more work;
 * - serves the chain to clients (head, blocks, the newest global model, balances).
 */
import { toHex } from '../core/bytes.ts';
import { buildBlockTemplate, signBlock } from '../core/block-builder.ts';
import { SigningContext } from '../core/contexts.ts';
import { blockHash, claimOfRecord, encodeBlock, encodeUpdateClaim } from '../core/encoding.ts';
import { BflError, ErrorCode, isBflError } from '../core/errors.ts';
import { meetsTarget } from '../core/pow.ts';
import { Reader, Writer, equalBytes } from '../core/bytes.ts';
import { aggregationTxOf, isBetterTip } from '../core/chain.ts';
import type { Block } from '../core/types.ts';
import { type ChainState, sortedPending } from '../core/validation.ts';
import type { ChainStore, Reorg } from '../chain/store.ts';
import type { PoolEntry, UpdatePool } from '../chain/update-pool.ts';
import { poolKey } from '../chain/update-pool.ts';
import type { NetworkConfig } from '../config/network.ts';
import type { Identity } from '../crypto/keyfile.ts';
import type { SignatureVerifier } from '../crypto/verifier.ts';
import type { PowMiner } from '../mining/miner.ts';
import { type SignedUpdate, decodeAnnouncement, decodeSignedUpdate, encodeAnnouncement, encodeSignedUpdate, payloadToDelta, recordOf } from '../core/update.ts';
import { decodeBlockAnnouncement, decodeChainRequest, decodeHashes, decodeHead, encodeBlockAnnouncement, encodeChainRequest, encodeHashes, encodeHead, encodeModelAfter } from '../net/messages.ts';
import type { PeerBook } from '../net/peer-book.ts';
import { protocols, topics } from '../net/protocols.ts';
import { type UpdateSealing, sealedProtocols } from '../net/sealed-updates.ts';
import type { Transport, Verdict } from '../net/transport.ts';
import { type Clock, systemClock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import type { Metrics } from '../util/metrics.ts';
import type { ChainAggregation } from '../chain/aggregation.ts';
import { Notifier } from './notifier.ts';

export interface MinerOptions {
  /** Records per block at most (a block of 64 records is ~170 KB without the model). */
  maxRecordsPerBlock: number;
  /** How often to compare heads with a peer (catches blocks whose announcement we missed). */
  syncIntervalMs: number;
  /** Payloads of updates aggregated this many blocks deep are dropped (their record stays). */
  pruneDepth: number;
}

export const defaultMinerOptions: MinerOptions = { maxRecordsPerBlock: 64, syncIntervalMs: 3000, pruneDepth: 32 };

export interface MinerDeps {
  config: NetworkConfig;
  identity: Identity;
  store: ChainStore;
  pool: UpdatePool;
  transport: Transport;
  peers: PeerBook;
  verifier: SignatureVerifier;
  pow: PowMiner;
  aggregation: ChainAggregation;
  /** Accuracy of a global model on the miner's test set (for /status and metrics). */
  evaluate?: (model: Float32Array) => Promise<number>;
  logger: Logger;
  metrics?: Metrics;
  options?: Partial<MinerOptions>;
  clock?: Clock;
  /** With `p2p.sealUpdates`: raw updates travel only sealed (ML-KEM); the clear protocols refuse. */
  sealing?: UpdateSealing;
}

function minerMetrics(m: Metrics) {
  return {
    updates: m.counter('bfl_miner_updates_total', 'updates offered to the miner, by source and result', ['source', 'result']),
    gossip: m.counter('bfl_gossip_messages_total', 'gossip messages validated, by topic and result', ['topic', 'result']),
    mined: m.counter('bfl_miner_blocks_mined_total', 'blocks this miner mined'),
    hashRate: m.gauge('bfl_miner_hashes_per_second', 'proof-of-work hash rate of the last job'),
    pool: m.gauge('bfl_miner_unrecorded_updates', 'updates in the pool not yet recorded on the canonical chain'),
    accuracy: m.gauge('bfl_model_accuracy', 'test accuracy of the newest global model'),
    rounds: m.gauge('bfl_chain_aggregations', 'aggregation rounds on the canonical chain (genesis excluded)'),
  };
}

export class Miner {
  private readonly d: MinerDeps;
  private readonly o: MinerOptions;
  private readonly log: Logger;
  private readonly m?: ReturnType<typeof minerMetrics>;
  private readonly proto: ReturnType<typeof protocols>;
  private readonly topic: ReturnType<typeof topics>;
  private readonly unrecorded = new Map<string, PoolEntry>();
  private readonly wake: Notifier;
  private readonly clock: Clock;
  private readonly modelParams: number;
  private running = false;
  private mining?: AbortController;
  private loop?: Promise<void>;
  private syncLoop?: Promise<void>;
  private readonly stopSync = new AbortController();
  private syncing = false;
  private lastAccuracy: number | null = null;
  private evaluating = Promise.resolve();
  private flagged: string[] = [];
  private readonly onTip: (s: ChainState, reorg?: Reorg) => void;

  constructor(d: MinerDeps) {
    this.d = d;
    this.o = { ...defaultMinerOptions, ...d.options };
    this.log = d.logger;
    this.m = d.metrics && minerMetrics(d.metrics);
    this.proto = protocols(d.config.networkId);
    this.topic = topics(d.config.networkId);
    this.modelParams = d.store.params.initialModel.length / 4;
    this.clock = d.clock ?? systemClock;
    this.wake = new Notifier(this.clock);
    this.onTip = (s, reorg) => this.spawn(() => this.tipChanged(s, reorg), 'tip handling');
  }

  private now(): number {
    return this.clock.now();
  }

  private spawn(task: () => Promise<unknown>, what: string): void {
    this.clock.spawn(task, (e) => this.log.debug({ err: (e as Error).message }, `${what} failed`));
  }

  async start(): Promise<void> {
    const { transport, config } = this.d;
    this.running = true;
    for (const e of this.d.pool.all()) if (e.hasPayload) this.unrecorded.set(e.key, e);
    await this.recomputeUnrecorded();
    const t = config.p2p.requestTimeoutMs;
    await transport.serve(this.proto.submit, (req) => this.handleSubmit(req), { maxRequestBytes: config.p2p.maxUpdateBytes + 8192, timeoutMs: t, onError: (peer, e) => this.punish(peer, e, 'submit') });
    await transport.serve(this.proto.update, (req, peer) => this.handleFetchUpdate(req, peer), { maxRequestBytes: 1024, timeoutMs: t, onError: (peer, e) => this.punish(peer, e, 'update') });
    await transport.serve(this.proto.chain, (req) => this.handleChain(req), { maxRequestBytes: 1024, timeoutMs: t });
    if (this.d.sealing) {
      const sealed = sealedProtocols(config.networkId);
      await transport.serve(sealed.submit, (req) => this.handleSubmit(req, true), { maxRequestBytes: config.p2p.maxUpdateBytes + 16384, timeoutMs: t, onError: (peer, e) => this.punish(peer, e, 'submit-sealed') });
      await transport.serve(sealed.update, (req, peer) => this.handleFetchUpdate(req, peer, true), { maxRequestBytes: 1024, timeoutMs: t, onError: (peer, e) => this.punish(peer, e, 'update-sealed') });
    }
    transport.subscribe(this.topic.updates, (peer, data) => this.validateUpdateGossip(peer, data));
    transport.subscribe(this.topic.blocks, (peer, data) => this.validateBlockGossip(peer, data));
    this.d.store.on('tip', this.onTip);
    this.syncLoop = this.clock.run(() => this.syncEvery());
    this.loop = this.clock.run(() => this.mineLoop());
    this.m?.rounds.set(this.d.store.tip.rounds - 1);
    this.spawn(() => this.evaluateTip(), 'evaluation');
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopSync.abort();
    this.d.store.off('tip', this.onTip);
    this.mining?.abort();
    this.wake.notify();
    // joins of other activities: suspended, so a simulated clock can move while they finish
    await this.clock.suspend(Promise.all([this.loop, this.syncLoop, this.evaluating]));
  }

  // ---- updates ----

  private punish(peer: string, e: Error, where: string): void {
    const code = isBflError(e) ? e.code : 'INTERNAL';
    // A duplicate, or an envelope to a KEM key we rotated away from, is what an honest sender
    // with a lost response or a stale view of our key would send too: a small penalty.
    if (isBflError(e) && e.action === 'REJECT') this.d.peers.penalise(peer, `${where}:${code}`, code === ErrorCode.DUPLICATE_RECORD || code === ErrorCode.KEM_KEY_EXPIRED ? 2 : 10);
    this.log.info({ peer: this.d.peers.info(peer)?.memberId ?? peer, where, code, err: e.message }, 'request refused');
  }

  private async handleSubmit(req: Uint8Array, sealed = false): Promise<Uint8Array> {
    if (this.d.sealing && !sealed) throw new BflError(ErrorCode.SEAL_REQUIRED, 'this network seals updates (p2p.sealUpdates): upload with the submit-sealed protocol');
    const u = sealed ? this.d.sealing!.decode(req, 'upload', this.now(), this.d.config.p2p.maxUpdateBytes) : decodeSignedUpdate(req, this.d.config.p2p.maxUpdateBytes);
    if (u.minerId !== this.d.identity.id) throw new BflError(ErrorCode.MALFORMED, `update is addressed to miner ${u.minerId}, this is ${this.d.identity.id}`);
    await this.acceptUpdate(u, 'client', false);
    return new Uint8Array(0);
  }

  /**
   * Cheapest first: seen, shape, admission, base model, signature. `verified`: the announcement
   * was already signature-checked (gossip validator).
   */
  private async acceptUpdate(u: SignedUpdate, source: 'client' | 'miner', verified: boolean): Promise<void> {
    const { store, pool, config } = this.d;
    try {
      if (pool.get(u.clientId, u.updateDigest)) throw new BflError(ErrorCode.DUPLICATE_RECORD, `update ${u.clientId}:${toHex(u.updateDigest)} was already received`);
      if (u.payload.length !== this.modelParams * 4) throw new BflError(ErrorCode.MALFORMED, `update has ${u.payload.length / 4} parameters, the model ${this.modelParams}`);
      const member = store.membership.ofRole(u.clientId, 'client');
      if (!member) throw new BflError(ErrorCode.UNKNOWN_CLIENT, `update from unknown client ${u.clientId}`);
      if (!store.membership.ofRole(u.minerId, 'miner')) throw new BflError(ErrorCode.UNKNOWN_MINER, `update names unknown miner ${u.minerId}`);
      // Clients learn at once if they trained on a model we do not know. Updates from miners are
      // not held to our tip: one fetched to validate a block of a better chain is built on that
      // chain's models; the block rules check every record's base model against its own chain.
      if (source === 'client' && !(await this.baseModelKnown(u.baseModelHash))) {
        throw new BflError(ErrorCode.UNKNOWN_BASE_MODEL, `update built on model ${toHex(u.baseModelHash)}, not a global model of our chain`, { action: 'IGNORE' });
      }
      if (!verified) {
        const [ok] = await this.d.verifier.verify([{ publicKey: member.publicKey, message: encodeUpdateClaim(claimOfRecord(config.networkId, u)), signature: u.signature, context: SigningContext.update }]);
        if (!ok) throw new BflError(ErrorCode.BAD_SIGNATURE, `update signature of client ${u.clientId} does not verify`);
      }
      if (!(await pool.add(u, this.now()))) return;
      const entry = pool.get(u.clientId, u.updateDigest)!;
      if (!(await this.isRecorded(entry))) this.unrecorded.set(entry.key, entry);
      this.m?.updates.inc({ source, result: 'accepted' });
      this.m?.pool.set(this.unrecorded.size);
      this.log.debug({ client: u.clientId, digest: toHex(u.updateDigest).slice(0, 16), source }, 'update accepted');
      if (source === 'client') {
        await this.d.transport.publish(this.topic.updates, encodeAnnouncement({ ...u, payloadBytes: u.payload.length })).catch((e) => this.log.debug({ err: (e as Error).message }, 'announcement not published'));
      }
      this.wake.notify();
    } catch (e) {
      this.m?.updates.inc({ source, result: isBflError(e) ? e.code : 'INTERNAL' });
      throw e;
    }
  }

  private async baseModelKnown(modelHash: Uint8Array): Promise<boolean> {
    const tip = this.d.store.tip.hash;
    for (const b of await this.d.store.blocksWithModel(modelHash)) if (await this.d.store.isAncestor(b, tip)) return true;
    return false;
  }

  private async isRecorded(e: { clientId: string; updateDigest: Uint8Array }): Promise<boolean> {
    const tip = this.d.store.tip.hash;
    for (const b of await this.d.store.blocksWithRecord(e.clientId, e.updateDigest)) if (await this.d.store.isAncestor(b, tip)) return true;
    return false;
  }

  private async recomputeUnrecorded(): Promise<void> {
    for (const e of this.d.pool.all()) {
      if (!e.hasPayload) continue;
      if (await this.isRecorded(e)) this.unrecorded.delete(e.key);
      else this.unrecorded.set(e.key, e);
    }
    this.m?.pool.set(this.unrecorded.size);
  }

  /** Only admitted miners may fetch raw updates. */
  private async handleFetchUpdate(req: Uint8Array, peer: string, sealed = false): Promise<Uint8Array> {
    if (this.d.sealing && !sealed) throw new BflError(ErrorCode.SEAL_REQUIRED, 'this network seals updates (p2p.sealUpdates): fetch with the update-sealed protocol');
    const who = await this.d.peers.identify(peer);
    if (who?.role !== 'miner') throw new BflError(ErrorCode.UNAUTHORIZED, `raw updates are for admitted miners only (${who?.memberId ?? 'unknown peer'} asked)`);
    const r = new Reader(req, 'update request');
    const clientId = r.str('clientId');
    const digest = r.fixed(32, 'digest');
    r.end();
    const entry = this.d.pool.get(clientId, digest);
    const payload = entry && (await this.d.pool.payload(clientId, digest));
    if (!entry || !payload) throw new BflError(ErrorCode.NOT_FOUND, `no update ${clientId}:${toHex(digest)}`, { action: 'IGNORE' });
    return sealed ? this.d.sealing!.encode({ ...entry, payload }, 'serve', who.memberId, this.now()) : encodeSignedUpdate({ ...entry, payload });
  }

  /** An update's payload from the pool, or fetched from the given peers, then any miner. */
  async fetchUpdate(clientId: string, digest: Uint8Array, prefer: string[] = []): Promise<SignedUpdate | undefined> {
    const local = this.d.pool.get(clientId, digest);
    const payload = local && (await this.d.pool.payload(clientId, digest));
    if (local && payload) return { ...local, payload };
    const candidates = [...prefer, ...this.d.peers.connectedMiners().map((m) => m.peer)];
    const tried = new Set<string>();
    for (const peer of candidates) {
      if (tried.has(peer)) continue;
      tried.add(peer);
      try {
        const sealing = this.d.sealing;
        const res = await this.d.transport.request(peer, sealing ? sealedProtocols(this.d.config.networkId).update : this.proto.update, new Writer(64).str(clientId).fixed(digest, 32).finish(), {
          maxResponseBytes: this.d.config.p2p.maxUpdateBytes + 16384,
          timeoutMs: this.d.config.p2p.requestTimeoutMs,
        });
        const u = sealing ? sealing.decode(res, 'serve', this.now(), this.d.config.p2p.maxUpdateBytes) : decodeSignedUpdate(res, this.d.config.p2p.maxUpdateBytes);
        if (u.clientId !== clientId || !equalBytes(u.updateDigest, digest)) throw new BflError(ErrorCode.MALFORMED, 'peer sent another update than asked');
        try {
          await this.acceptUpdate(u, 'miner', false);
        } catch (e) {
          if (!isBflError(e, ErrorCode.DUPLICATE_RECORD)) throw e;
        }
        return u;
      } catch (e) {
        if (isBflError(e) && e.action === 'REJECT') this.d.peers.penalise(peer, `fetched-update:${e.code}`, e.code === ErrorCode.KEM_KEY_EXPIRED ? 2 : 10);
        this.log.debug({ peer, err: (e as Error).message }, 'update fetch failed');
      }
    }
    return undefined;
  }

  private async validateUpdateGossip(peer: string, data: Uint8Array): Promise<Verdict> {
    const result = await this.checkUpdateGossip(peer, data).catch((e) => {
      this.log.info({ peer: this.d.peers.info(peer)?.memberId ?? peer, code: isBflError(e) ? e.code : 'INTERNAL', err: (e as Error).message }, 'update announcement refused');
      // our bugs must never punish honest peers: anything unexpected is IGNORE
      return isBflError(e) && e.action === 'REJECT' ? ('reject' as const) : ('ignore' as const);
    });
    this.m?.gossip.inc({ topic: 'updates', result });
    return result;
  }

  private async checkUpdateGossip(peer: string, data: Uint8Array): Promise<Verdict> {
    const a = decodeAnnouncement(data);
    if (this.d.pool.has(a.clientId, a.updateDigest)) return 'ignore';
    const who = await this.d.peers.identify(peer);
    if (who?.role !== 'miner') return 'ignore';
    const member = this.d.store.membership.ofRole(a.clientId, 'client');
    if (!member) throw new BflError(ErrorCode.UNKNOWN_CLIENT, `announcement of an update from unknown client ${a.clientId}`);
    if (!this.d.store.membership.ofRole(a.minerId, 'miner')) throw new BflError(ErrorCode.UNKNOWN_MINER, `announcement names unknown miner ${a.minerId}`);
    if (a.payloadBytes !== this.modelParams * 4) throw new BflError(ErrorCode.MALFORMED, `announced update of ${a.payloadBytes} bytes`);
    const [ok] = await this.d.verifier.verify([{ publicKey: member.publicKey, message: encodeUpdateClaim(claimOfRecord(this.d.config.networkId, a)), signature: a.signature, context: SigningContext.update }]);
    if (!ok) throw new BflError(ErrorCode.BAD_SIGNATURE, `announced update of ${a.clientId} has a bad signature`);
    const announcer = this.d.peers.peerOf(a.minerId);
    this.spawn(() => this.fetchUpdate(a.clientId, a.updateDigest, [peer, ...(announcer ? [announcer] : [])]), 'update fetch');
    return 'accept';
  }

  // ---- blocks ----

  private async validateBlockGossip(peer: string, data: Uint8Array): Promise<Verdict> {
    let result: Verdict;
    try {
      const a = decodeBlockAnnouncement(data);
      const hash = blockHash(a.header);
      const who = await this.d.peers.identify(peer);
      if (who?.role !== 'miner') result = 'ignore';
      else if (await this.d.store.getState(hash)) result = 'ignore';
      else {
        const p = this.d.store.params;
        if (a.header.difficulty !== p.difficulty || !meetsTarget(hash, p.difficulty)) throw new BflError(ErrorCode.BAD_POW, 'announced block header fails proof of work');
        if (!this.d.store.membership.ofRole(a.header.minerId, 'miner')) throw new BflError(ErrorCode.UNKNOWN_MINER, `block from unknown miner ${a.header.minerId}`);
        if (a.blockBytes > p.maxBlockBytes) throw new BflError(ErrorCode.OVERSIZED, `announced block of ${a.blockBytes} bytes`);
        this.spawn(() => this.fetchBlock(hash, peer), 'block fetch');
        result = 'accept';
      }
    } catch (e) {
      this.log.info({ peer: this.d.peers.info(peer)?.memberId ?? peer, err: (e as Error).message }, 'block announcement refused');
      result = isBflError(e) && e.action === 'REJECT' ? 'reject' : 'ignore';
    }
    this.m?.gossip.inc({ topic: 'blocks', result });
    return result;
  }

  private async chainRequest(peer: string, body: Uint8Array): Promise<Uint8Array> {
    return this.d.transport.request(peer, this.proto.chain, body, { maxResponseBytes: this.d.store.params.maxBlockBytes + 1024, timeoutMs: this.d.config.p2p.requestTimeoutMs });
  }

  private async fetchBlock(hash: Uint8Array, peer: string): Promise<void> {
    try {
      const bytes = await this.chainRequest(peer, encodeChainRequest({ kind: 'block', hash }));
      await this.addPeerBlock(bytes, peer);
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, 'block fetch failed');
    }
  }

  /** Validate and store a block from a peer; penalise provable misbehaviour. */
  async addPeerBlock(bytes: Uint8Array, peer: string): Promise<void> {
    try {
      const res = await this.d.store.addBlock(bytes);
      if (res.status === 'orphan') this.spawn(() => this.syncWith(peer), 'sync');
    } catch (e) {
      if (isBflError(e) && e.action === 'REJECT') this.d.peers.penalise(peer, `block:${e.code}`, 50);
      this.log.warn({ peer: this.d.peers.info(peer)?.memberId ?? peer, code: isBflError(e) ? e.code : 'INTERNAL', err: (e as Error).message }, 'block refused');
      throw e;
    }
  }

  private async syncEvery(): Promise<void> {
    while (this.running) {
      await this.clock.sleep(this.o.syncIntervalMs, this.stopSync.signal);
      if (this.running) await this.syncRound();
    }
  }

  private async syncRound(): Promise<void> {
    const miners = this.d.peers.connectedMiners();
    if (miners.length === 0) return;
    await this.syncWith(miners[Math.floor(Math.random() * miners.length)].peer);
  }

  /** Catch up with a peer that has more work: find the fork point by hashes, then fetch blocks in order. */
  async syncWith(peer: string): Promise<void> {
    if (this.syncing) return;
    this.syncing = true;
    try {
      const head = decodeHead(await this.chainRequest(peer, encodeChainRequest({ kind: 'head' })));
      const tip = this.d.store.tip;
      const theirsBetter = isBetterTip(head, tip);
      if (!theirsBetter || (await this.d.store.getState(head.hash))) return;
      let from = Math.max(0, Math.min(this.d.store.tip.height, head.height) - 16);
      let missing: Uint8Array[] = [];
      for (;;) {
        const hashes = decodeHashes(await this.chainRequest(peer, encodeChainRequest({ kind: 'hashes', from, count: 512 })));
        let first = -1;
        for (let i = 0; i < hashes.length; i++) {
          if (!(await this.d.store.getState(hashes[i]))) {
            first = i;
            break;
          }
        }
        if (first === 0 && from > 0) {
          from = Math.max(0, from - 512); // the fork is further back
          continue;
        }
        if (first >= 0) missing = hashes.slice(first);
        if (first === -1 && hashes.length === 512) {
          from += 512;
          continue;
        }
        break;
      }
      this.log.info({ peer: this.d.peers.info(peer)?.memberId, blocks: missing.length, theirHeight: head.height }, 'syncing');
      for (const h of missing) {
        if (await this.d.store.getState(h)) continue;
        await this.addPeerBlock(await this.chainRequest(peer, encodeChainRequest({ kind: 'block', hash: h })), peer);
      }
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, 'sync failed');
    } finally {
      this.syncing = false;
    }
  }

  private async handleChain(req: Uint8Array): Promise<Uint8Array> {
    const q = decodeChainRequest(req);
    const { store } = this.d;
    const tip = store.tip;
    switch (q.kind) {
      case 'head':
        return encodeHead({ height: tip.height, hash: tip.hash, work: tip.work, rounds: tip.rounds, anchor: tip.anchor, modelHash: tip.modelHash });
      case 'block': {
        const b = await store.getBlockBytes(q.hash);
        if (!b) throw new BflError(ErrorCode.NOT_FOUND, `no block ${toHex(q.hash)}`, { action: 'IGNORE' });
        return b;
      }
      case 'hashes': {
        const out: Uint8Array[] = [];
        for (let h = q.from; h < q.from + Math.min(q.count, 1024) && h <= tip.height; h++) out.push(Buffer.from((await store.hashAt(h))!, 'hex'));
        return encodeHashes(out);
      }
      case 'model-after': {
        // The chain state tracks the newest aggregation block (the anchor), so the client's
        // anchor jump reads one block, whatever the distance from its saved anchor.
        const newer = !equalBytes(q.anchor, tip.anchor);
        const block = (await store.getBlock(tip.anchor))!;
        const agg = aggregationTxOf(block);
        if (!agg) throw new BflError(ErrorCode.STORE_CORRUPT, 'anchor block has no aggregation');
        return encodeModelAfter({ newer, blockHash: tip.anchor, height: block.header.height, round: agg.round, modelHash: agg.modelHash, model: newer ? agg.model : new Uint8Array(0) });
      }
      case 'balance':
        return new Writer(8).u64(await store.balance(q.id)).finish();
    }
  }

  // ---- mining ----

  private async tipChanged(state: ChainState, reorg?: Reorg): Promise<void> {
    this.mining?.abort(); // stale work: the tip moved
    if (reorg) await this.recomputeUnrecorded();
    else {
      const block = await this.d.store.getBlock(state.hash);
      for (const tx of block?.txs ?? []) if (tx.type === 'record') this.unrecorded.delete(poolKey(tx.clientId, tx.updateDigest));
    }
    this.m?.pool.set(this.unrecorded.size);
    this.m?.rounds.set(state.rounds - 1);
    const anchorBlock = equalBytes(state.anchor, state.hash) ? await this.d.store.getBlock(state.hash) : undefined;
    const agg = anchorBlock && aggregationTxOf(anchorBlock);
    if (agg) {
      this.flagged = agg.entries.filter((e) => !e.high).map((e) => e.clientId);
      this.log.info({ round: agg.round, height: state.height, updates: agg.entries.length, low: this.flagged }, 'aggregation on chain');
      this.spawn(() => this.evaluateTip(), 'evaluation');
    }
    await this.prune(state);
    this.wake.notify();
  }

  private async prune(state: ChainState): Promise<void> {
    const h = state.height - this.o.pruneDepth;
    if (h <= 0) return;
    const block = await this.d.store.blockAt(h);
    const agg = block && aggregationTxOf(block);
    if (agg) await this.d.pool.prunePayloads(agg.entries.map((e) => poolKey(e.clientId, e.updateDigest)));
  }

  private evaluateTip(): Promise<void> {
    if (!this.d.evaluate) return Promise.resolve();
    this.evaluating = this.evaluating.then(async () => {
      const block = await this.d.store.getBlock(this.d.store.tip.anchor);
      const agg = block && aggregationTxOf(block);
      if (!agg) return;
      this.lastAccuracy = await this.d.evaluate!(payloadToDelta(agg.model));
      this.m?.accuracy.set(this.lastAccuracy);
    });
    return this.evaluating.catch((e) => this.log.warn({ err: (e as Error).message }, 'evaluation failed'));
  }

  /** Unrecorded updates that may go into a block on `tip`, oldest first. */
  private async candidates(): Promise<PoolEntry[]> {
    const out: PoolEntry[] = [];
    const sorted = [...this.unrecorded.values()].sort((a, b) => a.receivedAt - b.receivedAt || (a.key < b.key ? -1 : 1));
    for (const e of sorted) {
      if (out.length >= this.o.maxRecordsPerBlock) break;
      // The tip handler runs asynchronously: re-check against the chain itself, or a block
      // connected a moment ago could have recorded this update already.
      if (await this.isRecorded(e)) {
        this.unrecorded.delete(e.key);
        continue;
      }
      if (await this.baseModelKnown(e.baseModelHash)) out.push(e);
    }
    return out;
  }

  private async mineLoop(): Promise<void> {
    while (this.running) {
      let block: Block | undefined;
      try {
        const tip = this.d.store.tip;
        const entries = await this.candidates();
        if (entries.length === 0) {
          await this.wake.wait(1000);
          continue;
        }
        const records = entries.map(recordOf);
        const pending = [...tip.pending, ...records.map((r) => ({ clientId: r.clientId, updateDigest: r.updateDigest }))];
        const aggregation = pending.length >= this.d.store.params.phi ? await this.d.aggregation.compute(this.d.store, tip, sortedPending(pending)) : undefined;
        const template = buildBlockTemplate({ parent: tip, params: this.d.store.params, minerId: this.d.identity.id, timestamp: this.now(), records, aggregation });
        this.mining = new AbortController();
        const solved = await this.d.pow.mine(template.header, this.mining.signal);
        this.m?.hashRate.set(this.d.pow.hashRate);
        if (!solved || !this.running || !equalBytes(this.d.store.tip.hash, tip.hash)) continue; // aborted or stale
        block = signBlock({ ...template, header: solved.header }, this.d.config.networkId, this.d.identity.key);
        const bytes = encodeBlock(block);
        await this.d.store.addBlock(bytes);
        this.m?.mined.inc();
        this.log.info({ height: block.header.height, records: records.length, aggregation: aggregation?.round, hashes: solved.hashes }, 'mined a block');
        await this.d.transport.publish(this.topic.blocks, encodeBlockAnnouncement({ header: block.header, blockBytes: bytes.length })).catch(() => undefined);
      } catch (e) {
        this.log.warn({ err: (e as Error).message, code: isBflError(e) ? e.code : undefined }, 'mining round failed');
        await this.wake.wait(500);
      }
    }
  }

  status() {
    const tip = this.d.store.tip;
    return {
      role: 'miner' as const,
      id: this.d.identity.id,
      peerId: this.d.transport.self,
      height: tip.height,
      tip: toHex(tip.hash),
      work: tip.work.toString(),
      aggregations: tip.rounds - 1,
      pending: tip.pending.length,
      peers: this.d.transport.connections().length,
      miners: this.d.peers.connectedMiners().map((m) => m.memberId),
      pool: { unrecorded: this.unrecorded.size, total: this.d.pool.size },
      lastAccuracy: this.lastAccuracy,
      flagged: this.flagged,
      hashRate: Math.round(this.d.pow.hashRate),
      penalties: this.d.peers.penaltyReport(),
      orphans: this.d.store.orphanCount,
      sealing: this.d.sealing?.stats() ?? null,
    };
  }

  /** The latest global model (for tools and tests). */
  async globalModel(): Promise<Float32Array> {
    const b = await this.d.store.getBlock(this.d.store.tip.anchor);
    return payloadToDelta(aggregationTxOf(b!)!.model);
  }
}
