/**
 * The mobile client (the paper's Algorithm 2; docs/architecture.md, "The path of an update"):
 * data arrives as a stream; when more than N new samples are there it jumps to the newest
 * global model (anchor jump), trains E epochs of SGD on the N newest samples, signs
 * Δ = w_local − w_global and uploads it to the nearest reachable miner (by measured round-trip
 * time), trying the others if that fails. With no miner reachable it keeps training and
 * buffers its updates; when a miner is reachable again it uploads their average, signed.
 * The anchor, the model and the buffer are persisted, so a killed client loses nothing.
 */
import { mkdir } from 'node:fs/promises';
import { Level } from 'level';
import { Reader, Writer, equalBytes, toHex } from '../core/bytes.ts';
import { SigningContext } from '../core/contexts.ts';
import { claimOfRecord, encodeUpdateClaim } from '../core/encoding.ts';
import { ErrorCode } from '../core/errors.ts';
import { sha256 } from '../core/hash.ts';
import type { NetworkConfig } from '../config/network.ts';
import type { Identity } from '../crypto/keyfile.ts';
import type { Dataset } from '../learn/data.ts';
import { subset } from '../learn/data.ts';
import type { ModelRuntime } from '../learn/runtime.ts';
import type { DataStream } from '../learn/stream.ts';
import { evaluate, trainLocal } from '../learn/train.ts';
import { type SignedUpdate, deltaToPayload, encodeSignedUpdate, payloadToDelta } from '../core/update.ts';
import { decodeMinerLoad, decodeModelAfter, encodeChainRequest } from '../net/messages.ts';
import { protocols } from '../net/protocols.ts';
import { type UpdateSealing, isStaleKeyCode, sealedProtocols } from '../net/sealed-updates.ts';
import { RemoteError } from '../net/remote-error.ts';
import type { Transport } from '../net/transport.ts';
import { type Clock, systemClock } from '../util/clock.ts';
import type { ClientStatus } from '../api/status.ts';
import type { Logger } from '../util/logger.ts';
import type { Metrics } from '../util/metrics.ts';
import { Notifier } from './notifier.ts';
import { Uploader } from './uploader.ts';
import { type ClientBehaviour, honestTraining } from './behaviour.ts';
import { type AnnouncedLoad, type MinerContact, type MinerObservation, type MinerSelector, nearestByRtt } from './miner-selector.ts';
import { Rng } from '../core/random.ts';
import type { SplitLearner } from './split-client.ts';

export interface ClientOptions {
  /** How often the loop looks at the stream and the miners. */
  tickMs: number;
  /** How often round-trip times to the miners are measured. */
  pingIntervalMs: number;
  /** How often the reward balance is read. */
  balanceIntervalMs: number;
}

export const defaultClientOptions: ClientOptions = { tickMs: 200, pingIntervalMs: 2000, balanceIntervalMs: 5000 };


export interface ClientDeps {
  config: NetworkConfig;
  identity: Identity;
  transport: Transport;
  runtime: ModelRuntime;
  train: Dataset; // the whole training set; the stream yields indices into it
  heldOut: Dataset; // this client's own evaluation data (never trained on)
  stream: DataStream;
  miners: MinerContact[];
  genesis: { anchor: Uint8Array; modelHash: Uint8Array; model: Float32Array };
  datadir: string;
  logger: Logger;
  metrics?: Metrics;
  options?: Partial<ClientOptions>;
  clock?: Clock;
  /** Which miner to upload to; default: the nearest reachable one by round-trip time. */
  selector?: MinerSelector;
  /** What the client does besides honest training (experiments supply attacks); default honest. */
  behaviour?: ClientBehaviour;
  /** Told of every accepted upload (experiments: which update was made with which behaviour). */
  onUpload?: (u: { digest: string; attack: string; averaged: number; delta: Float32Array; samples: number; miner: string }) => void;
  /** With `p2p.sealUpdates`: each upload sealed to its miner's ML-KEM key. */
  sealing?: UpdateSealing;
  /** Split learning (learning.mode "split"): the client keeps a head and trains it with a miner
   * (node/split-client.ts) instead of uploading updates. */
  split?: SplitLearner;
}

/** What experiments hook into a client. */
export type ClientHooks = Pick<ClientDeps, 'selector' | 'behaviour' | 'onUpload'>;

interface Buffered {
  base: Uint8Array;
  samples: number;
  delta: Float32Array;
  /** The attack this update was made with ('none' for honest ones): experiments only, not persisted. */
  attack?: string;
}

export class Client {
  private readonly d: ClientDeps;
  private readonly o: ClientOptions;
  private readonly log: Logger;
  private db!: Level<string, Uint8Array>;
  private anchor: Uint8Array;
  private modelHash: Uint8Array;
  private model: Float32Array;
  private round = 0;
  private buffer: Buffered[] = [];
  private rtts = new Map<string, number | null>();
  private loads = new Map<string, AnnouncedLoad | null>();
  private lastPing = 0;
  private lastBalance = 0;
  private balance: bigint | null = null;
  private lastAccuracy: number | null = null;
  private evaluatedHash?: string;
  /** Split learning: this client's own head (persisted; never sent). */
  private head?: Float32Array;
  private sent = 0;
  private lastUpload?: { miner: string; digest: string; samples: number; averaged: number };
  /** The last upload of an average of buffered updates (kept apart: regular uploads follow fast). */
  private lastAveraged?: { miner: string; digest: string; samples: number; averaged: number };
  private trained = 0;
  private seq = 0;
  private running = false;
  private loop?: Promise<void>;
  private readonly wake: Notifier;
  /** Uploads on one long-lived stream per miner where the transport has them (node/uploader.ts). */
  private readonly uploader: Uploader;
  private readonly clock: Clock;
  private readonly selector: MinerSelector;
  private readonly behaviour: ClientBehaviour;
  private readonly m?: { updates: ReturnType<Metrics['counter']>; buffered: ReturnType<Metrics['gauge']>; accuracy: ReturnType<Metrics['gauge']> };

  constructor(d: ClientDeps) {
    this.d = d;
    this.o = { ...defaultClientOptions, ...d.options };
    this.log = d.logger;
    this.clock = d.clock ?? systemClock;
    this.selector = d.selector ?? nearestByRtt;
    this.behaviour = d.behaviour ?? honestTraining;
    this.wake = new Notifier(this.clock);
    this.uploader = new Uploader(d.transport, d.logger);
    this.anchor = d.genesis.anchor;
    this.modelHash = d.genesis.modelHash;
    this.model = d.genesis.model;
    this.m = d.metrics && {
      updates: d.metrics.counter('bfl_client_updates_total', 'local updates, by outcome', ['result']),
      buffered: d.metrics.gauge('bfl_client_buffered_updates', 'updates waiting for a reachable miner'),
      accuracy: d.metrics.gauge('bfl_model_accuracy_ratio', 'accuracy of the newest global model on this client\'s held-out data'),
    };
  }

  private now(): number {
    return this.clock.now();
  }

  async start(): Promise<void> {
    await mkdir(this.d.datadir, { recursive: true });
    this.db = new Level<string, Uint8Array>(this.d.datadir, { keyEncoding: 'utf8', valueEncoding: 'view' });
    await this.db.open();
    await this.loadState();
    this.running = true;
    this.loop = this.clock.run(() => this.run());
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake.notify();
    await this.clock.suspend(this.loop ?? Promise.resolve());
    await this.uploader.close();
    await this.db.close();
  }

  // ---- persisted state ----

  private async loadState(): Promise<void> {
    const anchor = await this.db.get('anchor');
    const model = await this.db.get('model');
    if (anchor && model) {
      const r = new Reader(anchor, 'client anchor');
      this.anchor = r.fixed(32);
      this.modelHash = r.fixed(32);
      this.round = r.u32();
      this.model = payloadToDelta(model);
    }
    if (this.d.split) {
      const head = await this.db.get('head');
      // W_0^H: every client starts from the genesis model's head (Algorithm 1, line 6)
      this.head = head ? payloadToDelta(head) : this.d.split.headOf(this.d.genesis.model);
      const shares = await this.db.get('headShares');
      if (shares) this.d.split.restoreShares(new Reader(shares, 'head shares').u32());
    }
    for await (const [k, v] of this.db.iterator({ gte: 'buf/', lt: 'buf0' })) {
      const r = new Reader(v, 'buffered update');
      this.buffer.push({ base: r.fixed(32), samples: r.u32(), delta: payloadToDelta(r.bytes()) });
      this.seq = Math.max(this.seq, Number(k.slice(4)) + 1);
    }
    this.m?.buffered.set(this.buffer.length);
    if (this.buffer.length) this.log.info({ buffered: this.buffer.length }, 'restored buffered updates');
  }

  private async saveModel(): Promise<void> {
    await this.db.batch([
      { type: 'put', key: 'anchor', value: new Writer(80).fixed(this.anchor, 32).fixed(this.modelHash, 32).u32(this.round).finish() },
      { type: 'put', key: 'model', value: deltaToPayload(this.model) },
    ]);
  }

  private async pushBuffer(b: Buffered): Promise<void> {
    const key = `buf/${String(this.seq++).padStart(12, '0')}`;
    await this.db.put(key, new Writer(b.delta.length * 4 + 64).fixed(b.base, 32).u32(b.samples).bytes(deltaToPayload(b.delta)).finish());
    this.buffer.push(b);
    this.m?.buffered.set(this.buffer.length);
  }

  private async clearBuffer(): Promise<void> {
    const keys: string[] = [];
    for await (const k of this.db.keys({ gte: 'buf/', lt: 'buf0' })) keys.push(k);
    await this.db.batch(keys.map((key) => ({ type: 'del' as const, key })));
    this.buffer = [];
    this.m?.buffered.set(0);
  }

  // ---- the loop ----

  private async run(): Promise<void> {
    while (this.running) {
      try {
        await this.tick();
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'client round failed');
      }
      await this.wake.wait(this.o.tickMs);
    }
  }

  private observations(): MinerObservation[] {
    return this.d.miners.map((m) => ({ miner: m, rttMs: this.rtts.get(m.id) ?? null, load: this.loads.get(m.id) ?? null }));
  }

  /** The miners to try, best first (the selector's ranking of the measured ones). */
  private reachable(): MinerContact[] {
    return this.selector.rank(this.observations(), { clientId: this.d.identity.id, now: this.now() });
  }

  private async measure(): Promise<void> {
    // fork-join through the clock: each ping is an activity of its own, the loop waits for them
    await this.clock.suspend(
      Promise.all(
        this.d.miners.map((m) =>
          this.clock.run(async () => {
            try {
              this.rtts.set(m.id, await this.d.transport.ping(m.peerId, 1500));
            } catch {
              this.rtts.set(m.id, null);
              this.loads.set(m.id, null);
              return;
            }
            if (this.selector.wantsLoad) this.loads.set(m.id, await this.readLoad(m));
          }),
        ),
      ),
    );
    this.lastPing = this.now();
    if (this.selector.refresh) {
      try {
        await this.selector.refresh(this.observations(), { clientId: this.d.identity.id, now: this.now() });
      } catch (e) {
        this.log.warn({ err: (e as Error).message, selector: this.selector.name }, 'miner selection failed; ranking by round-trip time');
      }
    }
  }

  /** A miner's announced load; null if it does not answer (an older miner: unknown load).
   * The ping's time limit: the answer is as small as a ping's, and it delays the measurement. */
  private async readLoad(m: MinerContact): Promise<AnnouncedLoad | null> {
    try {
      return decodeMinerLoad(await this.d.transport.request(m.peerId, protocols(this.d.config.networkId).chain, encodeChainRequest({ kind: 'load' }), { maxResponseBytes: 64, timeoutMs: Math.min(1500, this.d.config.p2p.requestTimeoutMs) }));
    } catch {
      return null;
    }
  }

  private async tick(): Promise<void> {
    const now = this.now();
    if (now - this.lastPing >= this.o.pingIntervalMs || this.reachable().length === 0) await this.measure();
    const online = this.reachable().length > 0;
    if (online && this.buffer.length > 0) await this.flushBuffer();
    if (this.d.stream.fresh(now) > this.d.config.learning.N) await this.localRound(online);
    if (online && now - this.lastBalance >= this.o.balanceIntervalMs) await this.readBalance();
  }

  private async chain(body: Uint8Array, maxBytes: number): Promise<Uint8Array> {
    let last: unknown;
    for (const m of this.reachable()) {
      try {
        return await this.d.transport.request(m.peerId, protocols(this.d.config.networkId).chain, body, { maxResponseBytes: maxBytes, timeoutMs: this.d.config.p2p.requestTimeoutMs });
      } catch (e) {
        last = e;
        this.rtts.set(m.id, null);
      }
    }
    throw last ?? new Error('no miner reachable');
  }

  /** Anchor jump: the newest global model after our saved anchor (one block, read by hash). */
  private async anchorJump(): Promise<void> {
    const res = decodeModelAfter(await this.chain(encodeChainRequest({ kind: 'model-after', anchor: this.anchor }), this.d.config.p2p.maxUpdateBytes + 1024), this.d.config.p2p.maxUpdateBytes);
    if (!res.newer || equalBytes(res.modelHash, this.modelHash)) return;
    if (res.model.length !== this.model.length * 4) throw new Error(`miner sent a model of ${res.model.length / 4} parameters`);
    this.anchor = res.blockHash;
    this.modelHash = res.modelHash;
    this.model = payloadToDelta(res.model);
    this.round = res.round;
    await this.saveModel();
    this.log.info({ round: res.round, height: res.height }, 'new global model');
  }

  private async localRound(online: boolean): Promise<void> {
    if (online) await this.anchorJump().catch((e) => this.log.debug({ err: (e as Error).message }, 'anchor jump failed; training on the model we have'));
    // eq. 4: a client who shares its head takes the aggregated head of the first global model
    // after each share (and trains on from its own head until its next share)
    if (this.d.split?.takesGlobalHead(this.modelHash)) this.head = this.d.split.headOf(this.model);
    // Split: the client's figure is its head after a round (evaluated when the round ends), so
    // only a client that has trained none is evaluated here. Its head on a newer body before it
    // trains on it is a passing state (0.34 where the round then ended at 0.65) that /status and
    // the testnet's final figure showed whenever they were read at a round's start.
    if (!this.d.split || this.trained === 0) await this.evaluateModel();
    if (this.d.split) return this.splitRound(this.d.split, online);
    const L = this.d.config.learning;
    const behaviour = this.behaviour.forRound();
    const taken = this.d.stream.takeNewest(L.N, this.now());
    const data = subset(this.d.train, behaviour.sampleShare === undefined ? taken : taken.slice(taken.length - Math.max(1, Math.round(behaviour.sampleShare * taken.length))));
    data.y = behaviour.trainingLabels(data.y, data.classes);
    // a seed of its own per client and round (shuffling, and noise of noise-type attacks)
    const seed = (sha256(new TextEncoder().encode(this.d.identity.id)).reduce((h, b) => (h * 31 + b) >>> 0, 0) + this.trained * 7919) >>> 0;
    const lu = await trainLocal(this.d.runtime, this.model, data, { epochs: L.E, batchSize: L.B, lr: L.lr, mu: L.mu, seed });
    this.trained++;
    const update: Buffered = { base: this.modelHash, samples: lu.samples, delta: behaviour.update(lu.delta, new Rng(seed)), attack: behaviour.label };
    if (online && this.buffer.length === 0 && (await this.upload(update))) return;
    await this.pushBuffer(update);
    this.m?.updates.inc({ result: 'buffered' });
    this.log.info({ buffered: this.buffer.length }, 'no miner reachable: update buffered');
  }

  /**
   * Split learning: E epochs over the N newest samples with the first reachable miner training
   * the body; with none reachable the samples wait (there is nothing to buffer: no update exists
   * without a miner's gradients). A failed batch ends the round; the next miner is tried next round.
   */
  private async splitRound(split: SplitLearner, online: boolean): Promise<void> {
    const miner = online ? this.reachable()[0] : undefined;
    if (!miner) return;
    const L = this.d.config.learning;
    const data = subset(this.d.train, this.d.stream.takeNewest(L.N, this.now()));
    const seed = (sha256(new TextEncoder().encode(this.d.identity.id)).reduce((h, b) => (h * 31 + b) >>> 0, 0) + this.trained * 7919) >>> 0;
    try {
      const r = await split.round(this.head!, data, miner, seed);
      this.head = r.head;
      await this.db.put('head', deltaToPayload(r.head));
      const shares = split.headShares;
      await split.afterRound(miner, r.head, this.model, this.modelHash, r.samples).catch((e) => this.log.info({ miner: miner.id, err: (e as Error).message, code: (e as RemoteError).code }, 'head share refused'));
      // the privacy account outlives a restart: a released share stays released
      if (split.headShares !== shares) await this.db.put('headShares', new Writer(4).u32(split.headShares).finish());
      // the head just trained is the model this client now holds: evaluated now, not at the start
      // of the next round (until then /status showed the head before this round: after a
      // client's first round, the genesis model's chance accuracy). Evaluated before the round
      // is counted, so that /status never shows the new count beside the old head's accuracy (a
      // reader that waits for `uploaded` to move, as the testnet does, reads this round's figure).
      await this.evaluateModel(this.trained + 1);
      this.trained++;
      this.sent++;
      this.lastUpload = { miner: miner.id, digest: '', samples: r.samples, averaged: 1 };
      this.m?.updates.inc({ result: 'uploaded' });
      this.log.info({ miner: miner.id, batches: r.batches, samples: r.samples, loss: Number(r.loss.toFixed(4)), accuracy: this.lastAccuracy }, 'split round done');
    } catch (e) {
      if (!(e instanceof RemoteError)) this.rtts.set(miner.id, null);
      this.m?.updates.inc({ result: 'failed' });
      this.log.info({ miner: miner.id, err: (e as Error).message, code: (e as RemoteError).code }, 'split round failed');
    }
  }

  /** Average the buffered updates and upload one signed update (Algorithm 2, offline branch). */
  private async flushBuffer(): Promise<void> {
    const n = this.buffer.length;
    const sum = new Float64Array(this.buffer[0].delta.length);
    for (const b of this.buffer) for (let k = 0; k < sum.length; k++) sum[k] += b.delta[k];
    const delta = Float32Array.from(sum, (v) => v / n);
    // They share a base unless a model arrived in between; the newest base is the one we name.
    const last = this.buffer[n - 1];
    const attack = this.buffer.find((b) => b.attack && b.attack !== 'none')?.attack ?? 'none';
    const ok = await this.upload({ base: last.base, samples: this.buffer.reduce((s, b) => s + b.samples, 0), delta, attack }, n);
    if (!ok) return;
    await this.clearBuffer();
    this.log.info({ averaged: n }, 'uploaded the average of buffered updates');
  }

  private async upload(u: Buffered, averaged = 1): Promise<boolean> {
    const payload = deltaToPayload(u.delta);
    const digest = sha256(payload);
    const createdAt = this.now();
    for (const m of this.reachable()) {
      const claim = { clientId: this.d.identity.id, minerId: m.id, baseModelHash: u.base, updateDigest: digest, sampleCount: u.samples, createdAt, payloadBytes: payload.length };
      const signature = this.d.identity.key.sign(encodeUpdateClaim(claimOfRecord(this.d.config.networkId, claim)), SigningContext.update);
      try {
        await this.submit(m, { ...claim, signature, payload });
      } catch (e) {
        // the miner has it already: an earlier attempt got through
        if (!(e instanceof RemoteError && e.code === ErrorCode.DUPLICATE_RECORD)) {
          this.log.info({ miner: m.id, err: (e as Error).message, code: (e as RemoteError).code }, 'upload failed, trying the next miner');
          if (!(e instanceof RemoteError)) this.rtts.set(m.id, null);
          continue;
        }
      }
      this.sent++;
      this.lastUpload = { miner: m.id, digest: toHex(digest), samples: u.samples, averaged };
      if (averaged > 1) this.lastAveraged = this.lastUpload;
      this.d.onUpload?.({ digest: toHex(digest), attack: u.attack ?? 'none', averaged, delta: u.delta, samples: u.samples, miner: m.id });
      this.m?.updates.inc({ result: 'uploaded' });
      this.log.info({ miner: m.id, digest: toHex(digest).slice(0, 16), samples: u.samples }, 'update uploaded');
      return true;
    }
    return false;
  }

  /** One upload; sealed, a refusal for a stale KEM key gets one retry after asking the miner for its current key. */
  private async submit(m: MinerContact, u: SignedUpdate): Promise<void> {
    const opts = { maxResponseBytes: 1024, timeoutMs: this.d.config.p2p.requestTimeoutMs };
    const sealing = this.d.sealing;
    if (!sealing) {
      const p = protocols(this.d.config.networkId);
      await this.uploader.send(m.peerId, p.submitStream, p.submit, () => encodeSignedUpdate(u), opts);
      return;
    }
    const p = sealedProtocols(this.d.config.networkId);
    const send = () => this.uploader.send(m.peerId, p.submitStream, p.submit, () => sealing.encode(u, 'upload', m.id, this.now()), opts);
    try {
      await send();
    } catch (e) {
      const stale = e instanceof RemoteError ? isStaleKeyCode(e.code) : (e as { code?: string }).code === ErrorCode.SEAL_REQUIRED;
      if (!stale) throw e;
      await sealing.refresh(m.peerId);
      await send();
    }
  }

  private async readBalance(): Promise<void> {
    try {
      const res = await this.chain(encodeChainRequest({ kind: 'balance', id: this.d.identity.id }), 64);
      this.balance = new Reader(res, 'balance').u64();
      this.lastBalance = this.now();
    } catch {
      // next time
    }
  }

  /** `trained`: the local rounds the evaluated head has had (split), this.trained unless a
   * round's end evaluates its head before the round is counted. */
  private async evaluateModel(trained = this.trained): Promise<void> {
    // split: the model is this client's head on the global body, and the head moves every round
    const h = toHex(this.modelHash) + (this.d.split ? `/${trained}` : '');
    if (this.evaluatedHash === h || this.d.heldOut.n === 0) return;
    const model = this.d.split ? this.d.split.compose(this.head!, this.model) : this.model;
    this.lastAccuracy = (await evaluate(this.d.runtime, model, this.d.heldOut)).accuracy;
    this.evaluatedHash = h;
    this.m?.accuracy.set(this.lastAccuracy);
  }

  /** False once stopped or if its LevelDB failed (GET /healthz). */
  get isOpen(): boolean {
    return this.running && this.db?.status === 'open';
  }

  status(): ClientStatus {
    return {
      role: 'client',
      id: this.d.identity.id,
      peerId: this.d.transport.self,
      round: this.round,
      anchor: toHex(this.anchor),
      modelHash: toHex(this.modelHash),
      lastAccuracy: this.lastAccuracy,
      trained: this.trained,
      uploaded: this.sent,
      buffered: this.buffer.length,
      lastUpload: this.lastUpload ?? null,
      lastAveragedUpload: this.lastAveraged ?? null,
      balance: this.balance?.toString() ?? null,
      miners: Object.fromEntries([...this.rtts].map(([k, v]) => [k, v])),
      nearest: this.reachable()[0]?.id ?? null,
      freshSamples: this.d.stream.fresh(this.now()),
      attack: this.behaviour.forRound().label,
      sealing: this.d.sealing?.stats() ?? null,
      ...(this.d.split ? { mode: 'split' as const, headSharing: this.d.split.privacyAccount(), split: this.d.split.status() } : {}),
      association: this.selector.wantsLoad ? { selector: this.selector.name, loads: Object.fromEntries(this.d.miners.map((m) => [m.id, this.loads.get(m.id) ?? null])) } : null,
    };
  }
}
