/**
 * The miner's half of split learning (issue 19; the cloud-edge-client paper's Algorithm 1,
 * lines 13-14 and 17, eq. 1), a service of the miner beside the update intake: it serves the
 * `split` protocol (net/split.ts), trains the body on its clients' signed batches of cut-layer
 * activations and answers each with d loss / d activations. Every `samplesPerUpdate` samples it
 * signs its body update Δ = w_body − w_body(global) (zeros over the head, so it is an update of
 * the whole model's vector) and hands it to its own update intake, as a client's upload: the
 * same pool, announcement, records, block rules, scoring, eq. 3's sample-weighted aggregation
 * and rewards, with the miners as the aggregation's contributors (core/params.ts
 * contributorRole). It trains on from there: each update carries everything trained since the
 * newest global model (Δ and sample count cumulative), so a later update supersedes an earlier
 * one (with one vote per contributor per aggregation, the one with the most samples is
 * recorded) and an update lost or refused (a rate limit) loses no training. A new global model
 * restarts the body from it.
 *
 * Batch checks, cheapest first: the sender (an admitted member, not banned, within its request
 * and byte budgets: issue 13, item 7) before the request is read, size and shape (decodeBatch),
 * addressee, the sender is the batch's client, admission, replay (createdAt strictly newer than
 * the client's last batch and inside the replay window), labels, finite activations, then the
 * ML-DSA signature in the verifier's pool.
 */
import { equalBytes, toHex } from '../core/bytes.ts';
import { aggregationTxOf } from '../core/chain.ts';
import { SigningContext } from '../core/contexts.ts';
import { claimOfRecord, encodeUpdateClaim } from '../core/encoding.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import { sha256 } from '../core/hash.ts';
import type { Membership } from '../core/params.ts';
import { MAX_SAMPLE_COUNT, type SignedUpdate, deltaToPayload, payloadToDelta } from '../core/update.ts';
import type { ChainStore } from '../chain/store.ts';
import { type NetworkConfig, sharesHead } from '../config/network.ts';
import type { Identity } from '../crypto/keyfile.ts';
import type { SignatureVerifier } from '../crypto/verifier.ts';
import { classCount } from '../learn/model.ts';
import { type SplitRuntime, applyMask, cutDropoutMask, splitParams } from '../learn/split.ts';
import { Rng } from '../core/random.ts';
import { SEAL_OVERHEAD, SealContext } from '../crypto/seal.ts';
import { type PeerBook, type RequestBudget, defaultPeerPolicy } from '../net/peer-book.ts';
import type { UpdateSealing } from '../net/sealed-updates.ts';
import {
  ANSWER_KEY_BYTES,
  type SplitBatch,
  bytesToFloats,
  decodeBatch,
  decodeHeadShare,
  encodeAnswer,
  encodeBatchClaim,
  encodeHeadClaim,
  floatsToBytes,
  maxBatchBytes,
  maxHeadShareBytes,
  sealAnswer,
  sealedSplitProtocols,
  splitHeadProtocol,
  splitProtocol,
  splitSealAd,
} from '../net/split.ts';
import type { Transport } from '../net/transport.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import type { Metrics } from '../util/metrics.ts';
import type { Verdicts } from './verdicts.ts';
import type { SplitError, SplitMinerStatus } from '../api/status.ts';

/** Global models a head share may start from (the newest and the ones before it). */
export const RECENT_BASES = 4;

export interface SplitMinerInit {
  config: NetworkConfig;
  identity: Identity;
}

export interface SplitMinerComponents {
  store: Pick<ChainStore, 'tip' | 'getBlock'>;
  membership: Membership;
  /** Where the miner's own body updates go (UpdateIntake.submitOwn). */
  submit: (u: SignedUpdate) => Promise<void>;
  transport: Pick<Transport, 'serve'>;
  /** Admission, budgets and penalties (members only); without it the miner serves anyone (tests). */
  peers?: Pick<PeerBook, 'admit' | 'charge' | 'member'>;
  verifier: SignatureVerifier;
  verdicts?: Pick<Verdicts, 'refused'>;
  runtime: SplitRuntime;
  /** With `p2p.sealUpdates`: batches, shares and answers travel only sealed (ML-KEM). */
  sealing?: Pick<UpdateSealing, 'open'>;
  clock: Clock;
  logger: Logger;
  metrics?: Metrics;
}

/** The counts a split miner keeps for /status (api/status.ts SplitMinerStatus). */
type SplitMinerCounts = Pick<SplitMinerStatus, 'batches' | 'refused' | 'samples' | 'bodyUpdates' | 'bodyUpdatesRefused' | 'headShares' | 'headSharesRefused' | 'lastLoss' | 'lastError'>;

/**
 * How long a client counts as served (/status `split.clients`) after its last batch trained on:
 * ten local rounds' worth of new samples (N / rate seconds each: 5 s at the defaults), at least
 * a minute. A client that sent nothing for that long is not training with this miner.
 */
export function clientWindowMs(config: NetworkConfig): number {
  const L = config.learning;
  return Math.max(60_000, Math.ceil((10 * 1000 * L.N) / L.rate));
}

/** An error as /status reports it: its code and one line of at most 200 characters. */
export function splitErrorOf(what: SplitError['what'], e: unknown, peer: string | undefined, at: number): SplitError {
  const err = e as { code?: unknown; name?: unknown; message?: unknown };
  const code = typeof err?.code === 'string' ? err.code : typeof err?.name === 'string' ? err.name : 'Error';
  const line = String(err?.message ?? e).split('\n')[0];
  return { what, code, message: line.length > 200 ? `${line.slice(0, 199)}…` : line, peer: peer ?? null, at };
}

export class SplitMiner {
  private readonly init: SplitMinerInit;
  private readonly c: SplitMinerComponents;
  private readonly width: number;
  private readonly classes: number;
  /** The client's last accepted createdAt (replay nonce), of batches and of head shares. */
  private readonly last = new Map<string, number>();
  private readonly lastShare = new Map<string, number>();
  /** Head shares in this base's body updates (eq. 4): Σ D_n·Δ_n^H and Σ D_n (cumulative, like the body). */
  private headSum = new Float64Array(0);
  private headWeight = 0;
  /** The shares that arrived since the last body update was submitted: in no update yet. */
  private readonly headUnsent: Float64Array;
  private headUnsentWeight = 0;
  private recentBases: string[] = [];
  /** The global model the body is trained from: its hash and body part. */
  private base?: { modelHash: Uint8Array; anchor: Uint8Array; body: Float32Array };
  private body = new Float32Array(0);
  private next = new Float32Array(0);
  private pending = 0;
  /** `pending` at the last body update submitted. */
  private submitted = 0;
  /** Steps run one at a time: each reads the body the previous one wrote. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly stats: SplitMinerCounts = { batches: 0, refused: 0, samples: 0, bodyUpdates: 0, bodyUpdatesRefused: 0, headShares: 0, headSharesRefused: 0, lastLoss: null, lastError: null };
  /** When each client's last batch was trained on (this miner's clock); at most one entry per admitted client. */
  private readonly seen = new Map<string, number>();
  /** Refusals already counted where they were thrown (handle, handleHead), so the protocol handler does not count them again. */
  private readonly counted = new WeakSet<object>();
  private readonly count?: ReturnType<Metrics['counter']>;

  constructor(init: SplitMinerInit, c: SplitMinerComponents) {
    this.init = init;
    this.c = c;
    this.width = c.runtime.width;
    this.classes = classCount(c.runtime.spec);
    this.headUnsent = new Float64Array(c.runtime.headParams);
    this.count = c.metrics?.counter('bfl_split_batches_total', 'split-learning batches offered to the miner, by result', ['result']);
  }

  async start(): Promise<void> {
    const { config } = this.init;
    const s = config.learning.split;
    const { peers } = this.c;
    const batchBudget = splitRequestBudget(config);
    // Members only, within their budgets, before anything is read (issue 13, item 7), as on the
    // other protocols: an outsider's batch is not buffered, opened (ML-KEM) or trained on. The
    // batch and the answer both count against the member's byte budget: the miner's work is in
    // proportion to them (a forward and backward pass of the body per sample).
    // A refusal before handle/handleHead (budget, sealing) is counted here, for /status.
    const serve = async (protocol: string, name: string, budget: RequestBudget | undefined, handler: (req: Uint8Array, sender?: string) => Promise<Uint8Array>, maxRequestBytes: number) =>
      this.c.transport.serve(
        protocol,
        async (req, peer) => {
          let who: { memberId: string } | undefined;
          try {
            who = await peers?.admit(peer, name, budget);
            peers?.charge(peer, req.length);
            const res = await handler(req, who?.memberId);
            peers?.charge(peer, res.length);
            return res;
          } catch (e) {
            if (!(typeof e === 'object' && e !== null && this.counted.has(e))) this.refused(name === 'split' ? 'batch' : 'head share', e, who?.memberId ?? peer);
            throw e;
          }
        },
        { maxRequestBytes, timeoutMs: config.p2p.requestTimeoutMs, gate: peers && ((peer) => peers.member(peer, name)), onError: (peer, e) => this.c.verdicts?.refused(peer, 'split', e) },
      );
    const batchBytes = maxBatchBytes(s.maxBatch, this.width);
    const headBytes = maxHeadShareBytes(this.c.runtime.headParams);
    const sealed = sealedSplitProtocols(config.networkId);
    await serve(splitProtocol(config.networkId), 'split', batchBudget, (req, from) => this.clear(() => this.handle(req, from)), batchBytes);
    if (this.c.sealing) await serve(sealed.batch, 'split', batchBudget, (req, from) => this.opened(req, batchBytes, (r) => this.handle(r, from)), batchBytes + ANSWER_KEY_BYTES + SEAL_OVERHEAD);
    if (s.headSharing) {
      // one share per local round: the default budget is ample
      await serve(splitHeadProtocol(config.networkId), 'split-head', undefined, (req, from) => this.clear(() => this.handleHead(req, from)), headBytes);
      if (this.c.sealing) await serve(sealed.head, 'split-head', undefined, (req, from) => this.opened(req, headBytes, (r) => this.handleHead(r, from)), headBytes + ANSWER_KEY_BYTES + SEAL_OVERHEAD);
    }
  }

  /** A request in clear: refused where batches travel sealed (`p2p.sealUpdates`). */
  private async clear(handle: () => Promise<Uint8Array>): Promise<Uint8Array> {
    if (this.c.sealing) throw new BflError(ErrorCode.SEAL_REQUIRED, 'this network seals split-learning traffic (p2p.sealUpdates): use the split-sealed protocols');
    return handle();
  }

  /** A sealed request: opened (replay-checked by its KEM ciphertext), handled, answered under its answer key. */
  async opened(req: Uint8Array, maxInner: number, handle: (inner: Uint8Array) => Promise<Uint8Array>): Promise<Uint8Array> {
    const { networkId } = this.init.config;
    const plain = this.c.sealing!.open(SealContext.split, req, splitSealAd(networkId, this.init.identity.id), this.c.clock.now(), maxInner + ANSWER_KEY_BYTES);
    if (plain.length < ANSWER_KEY_BYTES) throw new BflError(ErrorCode.MALFORMED, `sealed split request of ${plain.length} bytes has no answer key`);
    return sealAnswer(plain.subarray(0, ANSWER_KEY_BYTES), await handle(plain.subarray(ANSWER_KEY_BYTES)));
  }

  async stop(): Promise<void> {
    await this.queue.catch(() => undefined);
  }

  status(): SplitMinerStatus {
    const window = clientWindowMs(this.init.config);
    const since = this.c.clock.now() - window;
    const clients = [...this.seen].flatMap(([id, at]) => (at >= since ? [id] : [])).sort();
    return { ...this.stats, pending: this.pending, sinceUpdate: this.pending - this.submitted, samplesPerUpdate: this.init.config.learning.split.samplesPerUpdate, clients, clientWindowMs: window };
  }

  /** Count a refused batch or head share (or a body update our intake refused) and keep it as the last error. */
  private refused(what: SplitError['what'], e: unknown, peer?: string): void {
    if (typeof e === 'object' && e !== null) this.counted.add(e);
    if (what === 'batch') {
      this.stats.refused++;
      this.count?.inc({ result: 'refused' });
    } else if (what === 'head share') this.stats.headSharesRefused++;
    else this.stats.bodyUpdatesRefused++;
    this.stats.lastError = splitErrorOf(what, e, peer, this.c.clock.now());
  }

  /** One batch (from member `sender`, if known): checked, trained on, answered with the cut-layer gradients. */
  async handle(req: Uint8Array, sender?: string): Promise<Uint8Array> {
    try {
      const b = await this.check(req, sender);
      const answer = await this.serial(() => this.train(b));
      this.count?.inc({ result: 'trained' });
      return answer;
    } catch (e) {
      this.refused('batch', e, sender);
      throw e;
    }
  }

  /** Every check of a batch; returns it decoded, its nonce taken. */
  async check(req: Uint8Array, sender?: string): Promise<SplitBatch> {
    const { config } = this.init;
    const s = config.learning.split;
    const b = decodeBatch(req, { maxBatch: s.maxBatch, width: this.width });
    if (b.minerId !== this.init.identity.id) throw new BflError(ErrorCode.MALFORMED, `split batch is addressed to miner ${b.minerId}, this is ${this.init.identity.id}`);
    assertOwn(b.clientId, sender, 'split batch');
    const member = this.c.membership.ofRole(b.clientId, 'client');
    if (!member) throw new BflError(ErrorCode.UNKNOWN_CLIENT, `split batch from ${b.clientId}, not an admitted client`);
    this.checkFresh(b, this.last, 'split batch');
    for (let i = 0; i < b.count; i++) {
      if (b.labels[i] >= this.classes) throw new BflError(ErrorCode.OUT_OF_RANGE, `split batch label ${b.labels[i]} at sample ${i}; labels are 0 to ${this.classes - 1}`);
    }
    assertFiniteFloats(b.activations, 'split batch activation');
    const [ok] = await this.c.verifier.verify([{ publicKey: member.publicKey, message: encodeBatchClaim(config.networkId, b), signature: b.signature, context: SigningContext.splitBatch }]);
    if (!ok) throw new BflError(ErrorCode.BAD_SIGNATURE, `split batch signature of client ${b.clientId} does not verify`);
    // again after the await: two copies of one batch may have passed the first check together
    this.checkFresh(b, this.last, 'split batch');
    this.last.set(b.clientId, b.createdAt);
    return b;
  }

  /** A head share (eq. 4): checked like a batch, then added to the sum of this update's shares. */
  async handleHead(req: Uint8Array, sender?: string): Promise<Uint8Array> {
    try {
      return await this.takeHead(req, sender);
    } catch (e) {
      this.refused('head share', e, sender);
      throw e;
    }
  }

  private async takeHead(req: Uint8Array, sender?: string): Promise<Uint8Array> {
    const { config } = this.init;
    const h = decodeHeadShare(req, this.c.runtime.headParams);
    if (h.minerId !== this.init.identity.id) throw new BflError(ErrorCode.MALFORMED, `head share is addressed to miner ${h.minerId}, this is ${this.init.identity.id}`);
    assertOwn(h.clientId, sender, 'head share');
    const member = this.c.membership.ofRole(h.clientId, 'client');
    if (!member) throw new BflError(ErrorCode.UNKNOWN_CLIENT, `head share from ${h.clientId}, not an admitted client`);
    if (!sharesHead(config, h.clientId)) throw new BflError(ErrorCode.UNAUTHORIZED, `client ${h.clientId} does not share its head (learning.split.headSharing.clients)`);
    this.checkFresh(h, this.lastShare, 'head share');
    if (h.samples < 1 || h.samples > MAX_SAMPLE_COUNT) throw new BflError(ErrorCode.OUT_OF_RANGE, `head share of ${h.clientId} claims ${h.samples} samples; 1 to ${MAX_SAMPLE_COUNT}`);
    assertFiniteFloats(h.delta, 'head share parameter');
    const [ok] = await this.c.verifier.verify([{ publicKey: member.publicKey, message: encodeHeadClaim(config.networkId, h), signature: h.signature, context: SigningContext.splitHead }]);
    if (!ok) throw new BflError(ErrorCode.BAD_SIGNATURE, `head share signature of client ${h.clientId} does not verify`);
    this.checkFresh(h, this.lastShare, 'head share');
    this.lastShare.set(h.clientId, h.createdAt);
    await this.serial(async () => {
      await this.follow();
      // A local round outlasts an aggregation or two on a busy network: a share from one of the
      // last RECENT_BASES global models is used as it is (a stale update, as in asynchronous FL);
      // an older one would pull the head back: dropped (the client was not at fault).
      if (!this.recentBases.includes(toHex(h.baseModelHash))) throw new BflError(ErrorCode.UNKNOWN_BASE_MODEL, `head share of ${h.clientId} starts from model ${toHex(h.baseModelHash).slice(0, 16)}, not one of the last ${RECENT_BASES} global models: dropped`, { action: 'IGNORE' });
      const d = bytesToFloats(h.delta);
      for (let k = 0; k < d.length; k++) {
        this.headSum[k] += h.samples * d[k];
        this.headUnsent[k] += h.samples * d[k];
      }
      this.headWeight += h.samples;
      this.headUnsentWeight += h.samples;
      this.stats.headShares++;
    });
    return new Uint8Array(0);
  }

  private checkFresh(b: { clientId: string; createdAt: number }, lastOf: Map<string, number>, what: string): void {
    const now = this.c.clock.now();
    const { maxFutureMs } = this.init.config.chain;
    const { replayWindowMs } = this.init.config.learning.split;
    if (b.createdAt > now + maxFutureMs) {
      throw new BflError(ErrorCode.TIMESTAMP_FUTURE, `${what} of ${b.clientId} created ${b.createdAt - now} ms ahead of our clock (limit ${maxFutureMs}); check the client's clock`, { action: 'IGNORE' });
    }
    if (b.createdAt < now - replayWindowMs) {
      throw new BflError(ErrorCode.BATCH_REPLAYED, `${what} of ${b.clientId} created ${now - b.createdAt} ms ago, outside the replay window of ${replayWindowMs} ms (learning.split.replayWindowMs); check the client's clock`);
    }
    const last = lastOf.get(b.clientId);
    if (last !== undefined && b.createdAt <= last) {
      throw new BflError(ErrorCode.BATCH_REPLAYED, `${what} of ${b.clientId} created at ${b.createdAt}, not after its last one (${last}): a replay, or sent out of order`);
    }
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.queue.then(f);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The global model of the tip's anchor, if it is not the one the body was trained from. */
  private async follow(): Promise<void> {
    const anchor = this.c.store.tip.anchor;
    if (this.base && equalBytes(this.base.anchor, anchor)) return;
    const block = await this.c.store.getBlock(anchor);
    const agg = block && aggregationTxOf(block);
    if (!agg) throw new BflError(ErrorCode.NOT_FOUND, `the tip's anchor ${toHex(anchor)} holds no model`, { action: 'IGNORE' });
    if (this.base && equalBytes(this.base.modelHash, agg.modelHash)) {
      this.base.anchor = anchor;
      return;
    }
    // A new global body: what was trained from the old one goes out first if it is at least
    // half an update's worth (its base model is on chain, so it may still be recorded, with the
    // staleness weight); less is dropped, as a client drops nothing but trains less often.
    if (this.base && this.pending - this.submitted >= this.init.config.learning.split.samplesPerUpdate / 2) await this.emit();
    const { body } = splitParams(payloadToDelta(agg.model), this.c.runtime.spec, this.c.runtime.cut);
    this.base = { modelHash: agg.modelHash, anchor, body: Float32Array.from(body) };
    this.recentBases = [toHex(agg.modelHash), ...this.recentBases].slice(0, RECENT_BASES);
    this.restart();
  }

  private restart(): void {
    this.body = Float32Array.from(this.base!.body);
    this.next = new Float32Array(this.body.length);
    this.pending = 0;
    this.submitted = 0;
    // Shares in no update yet are carried into the new base's first update, as a stale update
    // (a share is a head delta, accepted from any of the last RECENT_BASES models). Dropping
    // them lost most shares: a client shares right after its round, whose last batch often
    // triggered the update the aggregation then took, so the share reached the old base after
    // its last update.
    this.headSum = Float64Array.from(this.headUnsent);
    this.headWeight = this.headUnsentWeight;
  }

  private async train(b: SplitBatch): Promise<Uint8Array> {
    await this.follow();
    const a = bytesToFloats(b.activations);
    const y = new Float32Array(b.count * this.classes);
    for (let i = 0; i < b.count; i++) y[i * this.classes + b.labels[i]] = 1;
    const ga = new Float32Array(b.count * this.width);
    // Dropout on the smashed data (learning.split.cutDropout): the body steps on a ⊙ mask and the
    // cut gradient goes back through the same mask, so the client's head trains on the thinned
    // network without knowing the mask (learn/split.ts, stepThroughCut). The mask is drawn from
    // the batch's signature: one per batch, reproducible from what the client signed.
    const p = this.init.config.learning.split.cutDropout;
    const mask = p > 0 ? cutDropoutMask(new Rng(batchMaskSeed(b.signature)), p, b.count, this.width, new Float32Array(b.count * this.width)) : null;
    if (mask) applyMask(a, mask);
    const loss = await this.c.runtime.bodySgdStep(this.body, a, y, b.count, this.init.config.learning.lr, this.next, ga);
    if (mask) applyMask(ga, mask);
    [this.body, this.next] = [this.next, this.body];
    this.pending += b.count;
    this.stats.batches++;
    this.stats.samples += b.count;
    this.stats.lastLoss = loss;
    this.seen.set(b.clientId, this.c.clock.now());
    if (this.pending - this.submitted >= this.init.config.learning.split.samplesPerUpdate) await this.emit();
    return encodeAnswer({ loss, gradients: floatsToBytes(ga) });
  }

  /** Sign Δ over the whole model (zeros over the head) and submit it to our own intake. */
  private async emit(): Promise<void> {
    const base = this.base!;
    const rt = this.c.runtime;
    const delta = new Float32Array(rt.headParams + rt.bodyParams);
    for (let k = 0; k < this.body.length; k++) delta[rt.headParams + k] = this.body[k] - base.body[k];
    // eq. 4 through eq. 3: the sample-weighted mean of the head shares of this update's clients
    // who opted in (zeros if none did; docs/decisions.md, "Split learning")
    if (this.headWeight > 0) for (let k = 0; k < rt.headParams; k++) delta[k] = this.headSum[k] / this.headWeight;
    const heads = this.headWeight;
    const payload = deltaToPayload(delta);
    const { identity, config } = this.init;
    const claim = { clientId: identity.id, minerId: identity.id, baseModelHash: base.modelHash, updateDigest: sha256(payload), sampleCount: this.pending, createdAt: this.c.clock.now(), payloadBytes: payload.length };
    const signature = identity.key.sign(encodeUpdateClaim(claimOfRecord(config.networkId, claim)), SigningContext.update);
    const samples = this.pending;
    this.submitted = this.pending;
    try {
      await this.c.submit({ ...claim, signature, payload });
      this.headUnsent.fill(0);
      this.headUnsentWeight = 0;
      this.stats.bodyUpdates++;
      this.c.logger.info({ samples, headSamples: heads, digest: toHex(claim.updateDigest).slice(0, 16), base: toHex(base.modelHash).slice(0, 16) }, 'body update submitted');
    } catch (e) {
      this.refused('body update', e);
      this.c.logger.warn({ err: (e as Error).message, code: (e as BflError).code }, 'body update refused by our own intake');
    }
  }
}

/**
 * The split protocol's per-member request budget (issue 13, item 7). A client sends one batch
 * per minibatch, back to back through a local round: E·⌈N/B⌉ batches (50 with the defaults),
 * one round per N new samples, so E·rate/B batches a second on average (10 with the defaults,
 * 25 in the testnet). The budget is four times that rate, with two rounds' batches of burst (a
 * round retried at once after a failure), never below the default budget of the other
 * protocols (p2p.requestsPerSecond, its burst).
 */
export function splitRequestBudget(config: NetworkConfig): RequestBudget {
  const L = config.learning;
  const B = Math.min(L.B, L.split.maxBatch);
  return { perSecond: Math.max(config.p2p.requestsPerSecond, (4 * L.E * L.rate) / B), burst: Math.max(defaultPeerPolicy.requestBurst, 2 * L.E * Math.ceil(L.N / B)) };
}

/** A client sends its own batches and shares: never relayed (net/split.ts), so another member's is refused. */
function assertOwn(clientId: string, sender: string | undefined, what: string): void {
  if (sender !== undefined && sender !== clientId) throw new BflError(ErrorCode.UNAUTHORIZED, `${what} of client ${clientId} sent by member ${sender}: a client sends its own batches to its miner`);
}

/** NaN or ±Infinity in smashed data or a head share would turn the model into NaN at once (REJECT: a head never produces them honestly). */
export function assertFiniteFloats(bytes: Uint8Array, what: string): void {
  const f = bytesToFloats(bytes);
  for (let k = 0; k < f.length; k++) {
    if (!Number.isFinite(f[k])) throw new BflError(ErrorCode.NON_FINITE, `${what} ${k} is ${Number.isNaN(f[k]) ? 'NaN' : 'an infinity'}; the values must be finite float32 (check the client's head for a diverged loss)`, { details: { index: k } });
  }
}

/** libp2p-style factory: `splitMiner(init)(components)`. */
export function splitMiner(init: SplitMinerInit): (c: SplitMinerComponents) => SplitMiner {
  return (c) => new SplitMiner(init, c);
}

/** The seed of a batch's dropout mask: the first four bytes of its signature (little-endian). */
export function batchMaskSeed(signature: Uint8Array): number {
  return (signature[0] | (signature[1] << 8) | (signature[2] << 16) | (signature[3] << 24)) >>> 0;
}
