/**
 * Update intake, a service of the miner: signed updates from clients (`submit` protocol, or
 * pipelined on one long-lived stream per client: `submit-stream`, net/frames.ts),
 * announcements of updates other miners received (gossip, small; the payload is pulled by
 * digest through the UpdateFetcher), raw updates served to admitted miners (`update`
 * protocol), and the set of updates not yet recorded on the canonical chain, which the mining
 * loop draws from: one per client per aggregation, the client's update with the most samples,
 * then the newest (core/votes.ts), so a client's later updates wait for the next aggregation and
 * an older one that a newer recorded update supersedes is never recorded. Uploads are limited per client (token bucket,
 * `p2p.clientUpdatesPerMinute`, CLIENT_RATE_LIMITED).
 */
import { unlink } from 'node:fs/promises';
import { Reader, equalBytes, toHex } from '../core/bytes.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import { type SignedUpdate, type UpdateAnnouncement, decodeAnnouncement, decodeSignedUpdate, encodeAnnouncement, encodeSignedUpdate } from '../core/update.ts';
import { type DatedVote, newestFirst, preferredFirst } from '../core/votes.ts';
import type { ChainStore } from '../chain/store.ts';
import { type PoolEntry, type UpdatePool, poolKey } from '../chain/update-pool.ts';
import { type NetworkConfig, contributorRoleOf } from '../config/network.ts';
import { type SealedOpener, errorOf } from '../crypto/open-sealed.ts';
import { defaultFrameServe, recycleFrameBuffer, takeFrameBuffer } from '../net/frames.ts';
import type { PeerBook } from '../net/peer-book.ts';
import { protocols, topics } from '../net/protocols.ts';
import { type PreparedOpen, type UpdateSealing, sealedProtocols } from '../net/sealed-updates.ts';
import type { Transport, Verdict } from '../net/transport.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import type { Metrics } from '../util/metrics.ts';
import type { UpdateFetcher } from './update-fetcher.ts';
import type { Verdicts } from './verdicts.ts';

export interface UpdateIntakeInit {
  config: NetworkConfig;
  /** This miner's member id (clients address their uploads to it). */
  minerId: string;
}

export interface UpdateIntakeComponents {
  store: ChainStore;
  pool: UpdatePool;
  fetcher: UpdateFetcher;
  transport: Transport;
  peers: PeerBook;
  verdicts: Verdicts;
  clock: Clock;
  logger: Logger;
  metrics?: Metrics;
  /** With `p2p.sealUpdates`: raw updates travel only sealed (ML-KEM); the clear protocols refuse. */
  sealing?: UpdateSealing;
  /** Where sealed uploads are opened (the daemon: the verifier's worker thread, crypto/open-sealed.ts); without it, in this thread by `sealing`. */
  opener?: SealedOpener;
}

export class UpdateIntake {
  private readonly init: UpdateIntakeInit;
  private readonly c: UpdateIntakeComponents;
  private readonly unrecorded = new Unrecorded();
  /** Per client, its newest update recorded on the canonical chain (that the pool knows): older ones are superseded. */
  private readonly lastVote = new Map<string, DatedVote>();
  /** Per client, upload tokens and when they were counted (the rate limit). */
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly newUpdate = new Set<() => void>();
  private readonly gauge?: ReturnType<Metrics['gauge']>;
  /**
   * Answers of the chain checks for the current tip (they depend only on the tip: a block that
   * changes one moves the tip). Without them every upload and every mining round's candidate
   * walked the height index on LevelDB again (`bench ingest` profile: the largest cost of ours).
   */
  private memo = { tip: '', baseKnown: new Map<string, boolean>(), recorded: new Map<string, boolean>() };

  constructor(init: UpdateIntakeInit, c: UpdateIntakeComponents) {
    this.init = init;
    this.c = c;
    this.gauge = c.metrics?.gauge('bfl_miner_unrecorded_updates', 'updates in the pool not yet recorded on the canonical chain');
    c.fetcher.onStored((e) => this.stored(e));
  }

  private spawn(task: () => Promise<unknown>, what: string): void {
    this.c.clock.spawn(task, (e) => this.c.logger.debug({ err: (e as Error).message }, `${what} failed`));
  }

  /** Called when an unrecorded update arrives (the mining loop wakes up). */
  onNewUpdate(f: () => void): void {
    this.newUpdate.add(f);
  }

  async start(): Promise<void> {
    const { transport, pool } = this.c;
    const { config } = this.init;
    const proto = protocols(config.networkId);
    for (const e of pool.live()) this.unrecorded.set(e.key, e);
    await this.recompute();
    // the replay records the chain answers for (and, on a datadir of an older version, every update it ever accepted)
    await pool.forget(await this.forgettable(pool.settled()));
    const t = config.p2p.requestTimeoutMs;
    const gate = (peer: string) => this.c.peers.member(peer);
    const submitRefused = (peer: string, e: Error) => this.c.verdicts.refused(peer, 'submit', e);
    await transport.serve(proto.submit, (req, peer) => this.handleSubmit(req, peer), { maxRequestBytes: config.p2p.maxUpdateBytes + 8192, timeoutMs: t, gate, onError: submitRefused });
    // the same uploads, pipelined on one stream per client: same handler, limits, gate and penalties
    await transport.serveFrames?.(proto.submitStream, (req, peer) => this.handleSubmit(req, peer), { ...defaultFrameServe, maxRequestBytes: config.p2p.maxUpdateBytes + 8192, timeoutMs: t, gate, onError: submitRefused });
    await transport.serve(proto.update, (req, peer) => this.handleFetchUpdate(req, peer), { maxRequestBytes: 1024, timeoutMs: t, gate, onError: (peer, e) => this.c.verdicts.refused(peer, 'update', e) });
    if (this.c.sealing) {
      const sealed = sealedProtocols(config.networkId);
      await transport.serve(sealed.submit, (req, peer) => this.handleSubmit(req, peer, true), { maxRequestBytes: config.p2p.maxUpdateBytes + 16384, timeoutMs: t, gate, onError: submitRefused });
      await transport.serveFrames?.(sealed.submitStream, (req, peer) => this.handleSubmit(req, peer, true), { ...defaultFrameServe, maxRequestBytes: config.p2p.maxUpdateBytes + 16384, timeoutMs: t, gate, onError: submitRefused });
      await transport.serve(sealed.update, (req, peer) => this.handleFetchUpdate(req, peer, true), { maxRequestBytes: 1024, timeoutMs: t, gate, onError: (peer, e) => this.c.verdicts.refused(peer, 'update', e) });
    }
    transport.subscribe(topics(config.networkId).updates, (peer, data) => this.c.verdicts.gossip('updates', peer, () => this.checkAnnouncement(peer, data)));
  }

  async stop(): Promise<void> {}

  /**
   * Unrecorded updates that the next block may record: those of clients that already have an
   * update recorded since the last aggregation wait for the next one and are not counted (they
   * give the miner nothing to mine, so a quiet network reads 0).
   */
  get size(): number {
    // O(clients voted since the aggregation), not O(pool): read after every stored upload (the
    // gauge), a scan of the pool made a flood's intake quadratic (issue 12)
    let n = this.unrecorded.size;
    for (const c of new Set(this.c.store.tip.pending.map((p) => p.clientId))) n -= this.unrecorded.countOf(c);
    return n;
  }

  private updateGauge(): void {
    this.gauge?.set(this.size);
  }

  private async stored(e: PoolEntry): Promise<void> {
    if (!this.superseded(e) && (await this.recordable(e))) this.unrecorded.set(e.key, e);
    this.updateGauge();
    for (const f of this.newUpdate) f();
  }

  /** Created before the client's newest recorded update: never to be recorded (one vote per aggregation; later ones wait). */
  private superseded(e: DatedVote): boolean {
    const v = this.lastVote.get(e.clientId);
    return v !== undefined && newestFirst(e, v) > 0;
  }

  /** `v` is recorded on the canonical chain: the client's older unrecorded updates are superseded. */
  private noteVote(v: DatedVote): void {
    const last = this.lastVote.get(v.clientId);
    if (!last || newestFirst(v, last) < 0) this.lastVote.set(v.clientId, { clientId: v.clientId, updateDigest: v.updateDigest, createdAt: v.createdAt });
    for (const e of this.unrecorded.ofClient(v.clientId)) if (this.superseded(e)) this.unrecorded.delete(e.key);
  }

  /**
   * The per-client rate limit, a token bucket: `clientUpdateBurst` tokens, refilled at
   * `clientUpdatesPerMinute`. `take` false only looks (before the signature check, so a flood is
   * refused cheaply); a token is taken only once the signature verified, so uploads forged in a
   * client's name cannot spend its budget.
   */
  private rateLimit(clientId: string, take: boolean): void {
    const { clientUpdatesPerMinute: perMinute, clientUpdateBurst: burst } = this.init.config.p2p;
    if (!(perMinute > 0)) return;
    const now = this.c.clock.now();
    const b = this.buckets.get(clientId) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + (Math.max(0, now - b.at) * perMinute) / 60_000);
    b.at = now;
    this.buckets.set(clientId, b);
    if (b.tokens < 1) {
      const waitS = Math.ceil(((1 - b.tokens) * 60) / perMinute);
      throw new BflError(ErrorCode.CLIENT_RATE_LIMITED, `client ${clientId} uploads faster than ${perMinute} updates a minute (burst ${burst}, p2p.clientUpdatesPerMinute): retry in ${waitS} s`, { action: 'IGNORE' });
    }
    if (take) b.tokens -= 1;
  }

  private async handleSubmit(req: Uint8Array, peer: string, sealed = false): Promise<Uint8Array> {
    await this.c.peers.admit(peer, 'submit');
    const sealing = this.c.sealing;
    if (sealing && !sealed) throw new BflError(ErrorCode.SEAL_REQUIRED, 'this network seals updates (p2p.sealUpdates): upload with the submit-sealed protocol');
    if (sealed && this.c.opener) {
      await this.submitSealed(req, sealing!, this.c.opener);
      return new Uint8Array(0);
    }
    const u = sealed ? sealing!.decode(req, 'upload', this.c.clock.now(), this.init.config.p2p.maxUpdateBytes) : decodeSignedUpdate(req, this.init.config.p2p.maxUpdateBytes);
    if (u.minerId !== this.init.minerId) throw new BflError(ErrorCode.MALFORMED, `update is addressed to miner ${u.minerId}, this is ${this.init.minerId}`);
    await this.acceptFromClient({ ...u, payloadBytes: u.payload.length }, { payload: u.payload });
    return new Uint8Array(0);
  }

  /**
   * A sealed upload opened by `opener` (a worker thread: crypto/open-sealed.ts), with the codes
   * and order of the in-thread path: the envelope's checks that need our state here, then the
   * decryption and the payload's checks there (the signature verified beside them), then the
   * intake's checks here, the signature's verdict last. The request's buffer is transferred to
   * the worker when it is a frame's (frames.ts lends it), else a copy; the payload never comes
   * back: the worker writes it under the name the pool granted (its own, or a temporary one the
   * pool renames when it stores the update).
   */
  private async submitSealed(req: Uint8Array, sealing: UpdateSealing, opener: SealedOpener): Promise<void> {
    const { config } = this.init;
    const p = sealing.prepareOpen(req, 'upload', this.c.clock.now(), config.p2p.maxUpdateBytes);
    const a = p.announcement;
    const { pool } = this.c;
    // The payload goes to its own file name when no announcement of it exists and no other
    // upload of it is being written (the pool's claim): no rename (3 % of the event loop under
    // `bench ingest`). A second upload of one update in flight writes a temporary file; a known
    // one none (it is refused as a duplicate).
    const known = pool.get(a.clientId, a.updateDigest) !== undefined;
    const claim = known ? undefined : pool.claimPayloadFile(a.clientId, a.updateDigest);
    const file = claim ? { path: claim.path, exclusive: true } : known ? undefined : { path: pool.temporaryFile(a.clientId, a.updateDigest), exclusive: false };
    try {
      await this.openAndAccept(req, p, opener, sealing, file);
    } finally {
      claim?.release();
    }
  }

  private async openAndAccept(req: Uint8Array, p: PreparedOpen, opener: SealedOpener, sealing: UpdateSealing, file: { path: string; exclusive: boolean } | undefined): Promise<void> {
    const { config } = this.init;
    const a = p.announcement;
    const lent = takeFrameBuffer(req);
    const buffer = lent ?? (req.slice().buffer as ArrayBuffer);
    const offset = lent ? p.envelopeOffset : p.envelopeOffset - req.byteOffset;
    const r = await opener.openSealed({
      buffer,
      offset,
      length: p.envelopeLength,
      kemSeed: p.kemSeed,
      context: p.context,
      associatedData: p.associatedData,
      maxPlaintextBytes: config.p2p.maxUpdateBytes,
      payloadBytes: a.payloadBytes,
      updateDigest: a.updateDigest,
      signature: this.c.fetcher.signatureOf(a),
      file,
    });
    recycleFrameBuffer(r.buffer);
    if (r.refusal) throw errorOf(r.refusal);
    if (r.failure) throw new Error(`sealed upload not opened: ${r.failure}`);
    try {
      sealing.opened(p, r.openCpuMs);
      if (a.minerId !== this.init.minerId) throw new BflError(ErrorCode.MALFORMED, `update is addressed to miner ${a.minerId}, this is ${this.init.minerId}`);
      await this.acceptFromClient(a, { file: r.written ? file!.path : undefined, signatureValid: r.signatureValid });
    } catch (e) {
      // refused: its payload file goes. A temporary one always (renamed, it is gone already); a
      // claimed name is still ours (other stores of the update wait for the release) unless we
      // stored it and a later step failed
      if (r.written && (!file!.exclusive || !this.c.pool.get(a.clientId, a.updateDigest)?.hasPayload)) await unlink(file!.path).catch(() => undefined);
      throw e;
    }
  }

  /**
   * This miner's own body update (split learning, node/split-miner.ts): the same checks, pool and
   * announcement as a client's upload, so every block rule applies to it unchanged.
   */
  submitOwn(u: SignedUpdate): Promise<void> {
    return this.acceptFromClient({ ...u, payloadBytes: u.payload.length }, { payload: u.payload });
  }

  /**
   * Cheapest first: seen, shape, admission, base model, signature; then store and announce. The
   * payload is in memory, or (sealed uploads opened in a worker) in a temporary file with the
   * signature's verdict beside it.
   */
  private async acceptFromClient(a: UpdateAnnouncement, body: { payload: Uint8Array } | { file?: string; signatureValid?: boolean }): Promise<void> {
    const { fetcher } = this.c;
    try {
      fetcher.checkShape(a);
      await this.refuseReplay(a);
      this.rateLimit(a.clientId, false);
      // Clients learn at once if they trained on a model we do not know. Updates from miners are
      // not held to our tip: one fetched to validate a block of a better chain is built on that
      // chain's models; the block rules check every record's base model against its own chain.
      if (!(await this.baseModelKnown(a.baseModelHash))) {
        throw new BflError(ErrorCode.UNKNOWN_BASE_MODEL, `update built on model ${toHex(a.baseModelHash)}, not a global model of our chain`, { action: 'IGNORE' });
      }
      if ('payload' in body) await fetcher.checkSignature(a);
      else fetcher.checkSignatureVerdict(a, body.signatureValid);
      this.rateLimit(a.clientId, true);
      if ('payload' in body) await fetcher.store({ ...a, payload: body.payload }, 'client');
      else await fetcher.storeFile(a, body.file!, 'client');
      this.c.logger.debug({ client: a.clientId, digest: toHex(a.updateDigest).slice(0, 16) }, 'update accepted');
      await this.c.transport.publish(topics(this.init.config.networkId).updates, encodeAnnouncement(a)).catch((e) => this.c.logger.debug({ err: (e as Error).message }, 'announcement not published'));
    } catch (e) {
      fetcher.countRefused('client', e);
      throw e;
    }
  }

  private memoFor(tip: Uint8Array): typeof this.memo {
    const t = toHex(tip);
    if (this.memo.tip !== t) this.memo = { tip: t, baseKnown: new Map(), recorded: new Map() };
    return this.memo;
  }

  async baseModelKnown(modelHash: Uint8Array): Promise<boolean> {
    const { store } = this.c;
    const tip = store.tip.hash;
    const key = toHex(modelHash);
    const memo = this.memoFor(tip);
    const known = memo.baseKnown.get(key);
    if (known !== undefined) return known;
    let found = false;
    for (const b of await store.blocksWithModel(modelHash)) if (await store.isAncestor(b, tip)) found = true;
    // the tip may have moved while we read: the answer is kept only with the tip it is about
    memo.baseKnown.set(key, found);
    return found;
  }

  async isRecorded(e: { clientId: string; updateDigest: Uint8Array }): Promise<boolean> {
    const { store } = this.c;
    const tip = store.tip.hash;
    const key = poolKey(e.clientId, e.updateDigest);
    const memo = this.memoFor(tip);
    const known = memo.recorded.get(key);
    if (known !== undefined) return known;
    let found = false;
    for (const b of await store.blocksWithRecord(e.clientId, e.updateDigest)) if (await store.isAncestor(b, tip)) found = true;
    memo.recorded.set(key, found);
    return found;
  }

  /**
   * A replay of an update the pool forgot (`forgettable`), refused as a replay of one it holds
   * is (DUPLICATE_RECORD, in UpdateFetcher.checkShape): superseded by its client's vote, or
   * recorded on the canonical chain. An update created before its client's recorded vote that
   * this miner never saw is refused too: it could never be recorded.
   */
  private async refuseReplay(a: UpdateAnnouncement): Promise<void> {
    const key = poolKey(a.clientId, a.updateDigest);
    const vote = this.lastVote.get(a.clientId);
    if (vote && newestFirst(a, vote) > 0) {
      throw new BflError(ErrorCode.DUPLICATE_RECORD, `update ${key} was created before ${a.clientId}'s update ${toHex(vote.updateDigest).slice(0, 16)} recorded on the chain: superseded (one vote per client per aggregation), it can never be recorded`);
    }
    if (await this.isRecorded(a)) throw new BflError(ErrorCode.DUPLICATE_RECORD, `update ${key} is already recorded on the chain`);
  }

  /**
   * Of these entries whose payload is gone, those a replay of which is refused without them
   * (`refuseReplay`): recorded on the canonical chain or superseded by their client's vote, but
   * not the vote itself (after a restart, `recompute` finds the client's vote in the pool).
   */
  async forgettable(settled: PoolEntry[]): Promise<string[]> {
    const out: string[] = [];
    for (const e of settled) {
      if (e.hasPayload) continue;
      const vote = this.lastVote.get(e.clientId);
      if (vote && equalBytes(vote.updateDigest, e.updateDigest)) continue;
      if (this.superseded(e) || (await this.isRecorded(e))) out.push(e.key);
    }
    return out;
  }

  /**
   * Not recorded on the canonical chain yet, and built on one of its global models (a block may
   * only record such an update). An update built on a model of a branch that lost a reorg can
   * never go into a block on this chain: counted as unrecorded, it kept the miner mining for it
   * and never let the testnet see an empty pool. It stays in the pool, and comes back if a
   * reorg (recompute) or a new aggregation on its model (readmit) makes it recordable.
   */
  private async recordable(e: PoolEntry): Promise<boolean> {
    return !(await this.isRecorded(e)) && (await this.baseModelKnown(e.baseModelHash));
  }

  /**
   * After a reorg (and at start): which pool updates the new canonical chain has not recorded
   * and could. The clients' votes come from the pool's updates the chain records, with or
   * without their payload (the pool keeps each client's vote: `forgettable`).
   */
  async recompute(): Promise<void> {
    this.lastVote.clear();
    for (const e of this.c.pool.settled()) if (await this.isRecorded(e)) this.noteVote(e);
    const open: PoolEntry[] = [];
    for (const e of this.c.pool.live()) {
      if (await this.isRecorded(e)) {
        this.unrecorded.delete(e.key);
        this.noteVote(e);
      } else open.push(e);
    }
    for (const e of open) {
      if (!this.superseded(e) && (await this.baseModelKnown(e.baseModelHash))) this.unrecorded.set(e.key, e);
      else this.unrecorded.delete(e.key);
    }
    this.updateGauge();
  }

  /** A block on the tip brought global model `modelHash`: pool updates built on it become recordable. */
  async readmit(modelHash: Uint8Array): Promise<void> {
    for (const e of this.c.pool.liveOnModel(modelHash)) {
      if (this.unrecorded.has(e.key) || this.superseded(e)) continue;
      if (!(await this.isRecorded(e))) this.unrecorded.set(e.key, e);
    }
    this.updateGauge();
  }

  /** A block extended the canonical chain: its records are recorded now, and supersede their clients' older updates. */
  recorded(records: DatedVote[]): void {
    for (const r of records) {
      this.unrecorded.delete(poolKey(r.clientId, r.updateDigest));
      this.noteVote(r);
    }
    this.updateGauge();
  }

  /**
   * Pool updates (with their payload) that `records` supersede: of the same client, created
   * before the record, and never recorded on the canonical chain (one vote per client per
   * aggregation: they never will be). Their payloads can go (the miner drops them as deep as
   * aggregated ones).
   */
  async supersededBy(records: DatedVote[]): Promise<string[]> {
    const out: string[] = [];
    // a block records one update per client (core/votes.ts): each client's live updates once
    for (const r of records) {
      for (const e of this.c.pool.liveOfClient(r.clientId)) if (newestFirst(e, r) > 0 && !(await this.isRecorded(e))) out.push(e.key);
    }
    return out;
  }

  /**
   * Updates for a block on the tip, at most `max`: one per client that has no update recorded
   * since the last aggregation, the one with the most samples, then the newest (core/votes.ts);
   * the clients waiting longest first.
   */
  async candidates(max: number): Promise<PoolEntry[]> {
    const voted = new Set(this.c.store.tip.pending.map((p) => p.clientId));
    const out: PoolEntry[] = [];
    // per client, not a scan of the pool: the mining loop asks after every stored upload, and
    // under a flood every client has voted (issue 12: quadratic before)
    for (const client of this.unrecorded.clients()) {
      if (voted.has(client)) continue;
      for (const e of this.unrecorded.ofClient(client).sort(preferredFirst)) {
        if (!this.unrecorded.has(e.key)) continue; // superseded by a vote noted meanwhile
        // The tip handler runs asynchronously: re-check against the chain itself, or a block
        // connected a moment ago could have recorded this update already (then it is the
        // client's vote, and its older updates are superseded).
        if (await this.isRecorded(e)) {
          this.unrecorded.delete(e.key);
          this.noteVote(e);
          break;
        }
        if (await this.baseModelKnown(e.baseModelHash)) {
          out.push(e);
          break;
        }
        this.unrecorded.delete(e.key); // its model left the chain (see recordable()): the client's next one
      }
    }
    this.updateGauge();
    return out.sort((a, b) => a.receivedAt - b.receivedAt || (a.key < b.key ? -1 : 1)).slice(0, max);
  }

  /** Only admitted miners may fetch raw updates. */
  private async handleFetchUpdate(req: Uint8Array, peer: string, sealed = false): Promise<Uint8Array> {
    const { peers, pool, sealing } = this.c;
    if (sealing && !sealed) throw new BflError(ErrorCode.SEAL_REQUIRED, 'this network seals updates (p2p.sealUpdates): fetch with the update-sealed protocol');
    const who = await peers.admit(peer, 'update');
    if (who.role !== 'miner') throw new BflError(ErrorCode.UNAUTHORIZED, `raw updates are for admitted miners only (${who.memberId} asked)`);
    const r = new Reader(req, 'update request');
    const clientId = r.str('clientId');
    const digest = r.fixed(32, 'digest');
    r.end();
    const entry = pool.get(clientId, digest);
    const payload = entry && (await pool.payload(clientId, digest));
    if (!entry || !payload) throw new BflError(ErrorCode.NOT_FOUND, `no update ${clientId}:${toHex(digest)}`, { action: 'IGNORE' });
    return sealed ? sealing!.encode({ ...entry, payload }, 'serve', who.memberId, this.c.clock.now()) : encodeSignedUpdate({ ...entry, payload });
  }

  private async checkAnnouncement(peer: string, data: Uint8Array): Promise<Verdict> {
    const { pool, peers, store, fetcher } = this.c;
    const a = decodeAnnouncement(data);
    if (pool.has(a.clientId, a.updateDigest)) return 'ignore';
    const who = await peers.identify(peer);
    if (who?.role !== 'miner') return 'ignore';
    // an update the pool forgot (a miner re-announcing an old one) or that can never be recorded: nothing to fetch
    if (await this.refuseReplay(a).then(() => false, () => true)) return 'ignore';
    if (!store.membership.ofRole(a.clientId, contributorRoleOf(this.init.config))) throw new BflError(ErrorCode.UNKNOWN_CLIENT, `announcement of an update from unknown ${contributorRoleOf(this.init.config)} ${a.clientId}`);
    if (!store.membership.ofRole(a.minerId, 'miner')) throw new BflError(ErrorCode.UNKNOWN_MINER, `announcement names unknown miner ${a.minerId}`);
    fetcher.checkShape(a);
    await fetcher.checkSignature(a);
    const announcer = peers.peerOf(a.minerId);
    this.spawn(() => fetcher.fetch(a.clientId, a.updateDigest, [peer, ...(announcer ? [announcer] : [])]), 'update fetch');
    return 'accept';
  }
}

/**
 * The unrecorded updates by key and by client: counts and one client's updates without a scan
 * of the whole set (a flood makes it thousands of updates of few clients).
 */
class Unrecorded {
  private readonly byKey = new Map<string, PoolEntry>();
  private readonly byClient = new Map<string, Map<string, PoolEntry>>();

  get size(): number {
    return this.byKey.size;
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  set(key: string, e: PoolEntry): void {
    this.delete(key);
    this.byKey.set(key, e);
    const m = this.byClient.get(e.clientId);
    if (m) m.set(key, e);
    else this.byClient.set(e.clientId, new Map([[key, e]]));
  }

  delete(key: string): void {
    const e = this.byKey.get(key);
    if (!e) return;
    this.byKey.delete(key);
    const m = this.byClient.get(e.clientId)!;
    m.delete(key);
    if (m.size === 0) this.byClient.delete(e.clientId);
  }

  countOf(clientId: string): number {
    return this.byClient.get(clientId)?.size ?? 0;
  }

  /** A snapshot (callers delete while they iterate). */
  ofClient(clientId: string): PoolEntry[] {
    return [...(this.byClient.get(clientId)?.values() ?? [])];
  }

  clients(): string[] {
    return [...this.byClient.keys()];
  }
}

/** libp2p-style factory: `updateIntake(init)(components)`. */
export function updateIntake(init: UpdateIntakeInit): (c: UpdateIntakeComponents) => UpdateIntake {
  return (c) => new UpdateIntake(init, c);
}
