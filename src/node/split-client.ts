/**
 * The client's half of split learning (issue 19; the cloud-edge-client paper's Algorithm 1,
 * lines 11-15, eq. 2): a training strategy the Client is given through createClient. A local
 * round runs E epochs of minibatches over the N newest samples; for each batch the client
 * computes the head's activations, sends them signed with the labels to one miner
 * (net/split.ts), and steps its head with the cut-layer gradients the miner answers. The head
 * never leaves the client; the body it evaluates with is the chain's global body.
 */
import { randomBytes, randomFillSync } from 'node:crypto';
import { ErrorCode } from '../core/errors.ts';
import { SealContext } from '../crypto/seal.ts';
import { RemoteError } from '../net/remote-error.ts';
import { type UpdateSealing, isStaleKeyCode } from '../net/sealed-updates.ts';
import { SigningContext } from '../core/contexts.ts';
import { Rng } from '../core/random.ts';
import { type NetworkConfig, sharesHead } from '../config/network.ts';
import type { HeadSharingStatus, SplitClientStatus } from '../api/status.ts';
import { splitErrorOf } from './split-miner.ts';
import { toHex } from '../core/bytes.ts';
import { headShareAccount } from '../learn/privacy.ts';
import type { Identity } from '../crypto/keyfile.ts';
import type { Dataset } from '../learn/data.ts';
import { inputSize } from '../learn/model.ts';
import { augmentImage, augments, drawKey, drawOf, imageSide, parseAugment } from '../learn/augment.ts';
import { type SplitRuntime, joinParams, splitParams } from '../learn/split.ts';
import {
  ANSWER_KEY_BYTES,
  bytesToFloats,
  decodeAnswer,
  encodeBatch,
  encodeBatchClaim,
  encodeHeadClaim,
  encodeHeadShare,
  floatsToBytes,
  openAnswer,
  sealedSplitProtocols,
  splitHeadProtocol,
  splitProtocol,
  splitSealAd,
} from '../net/split.ts';
import type { Transport } from '../net/transport.ts';
import type { Clock } from '../util/clock.ts';

export interface SplitRoundResult {
  head: Float32Array;
  samples: number;
  batches: number;
  /** Mean batch loss of the last epoch, as the miner computed it. */
  loss: number;
}

export class SplitLearner {
  readonly runtime: SplitRuntime;
  private readonly config: NetworkConfig;
  private readonly identity: Identity;
  private readonly transport: Pick<Transport, 'request'>;
  private readonly clock: Clock;
  private readonly sealing?: Pick<UpdateSealing, 'sealTo' | 'refresh'>;
  /** Last createdAt sent: batches are strictly newer than the one before (the miner's replay check). */
  private lastCreatedAt = 0;
  /** Eq. 4 releases sent (the count the privacy account composes; the client persists it). */
  private shares = 0;
  /** Local rounds since the last share (eq. 4 every k rounds). */
  private sinceShare = 0;
  /** Hex hash of the global model the last share was built on: the client takes the head of the
   * first global model after it; '' before any share (takes the first it sees); null: taken. */
  private takeAfter: string | null = '';
  /** What /status shows of the rounds (in memory, since the start). */
  private readonly stats: SplitClientStatus = { rounds: 0, failed: 0, miner: null, lastLoss: null, lastRoundAt: null, lastError: null };

  constructor(o: { config: NetworkConfig; identity: Identity; transport: Pick<Transport, 'request'>; runtime: SplitRuntime; clock: Clock; sealing?: Pick<UpdateSealing, 'sealTo' | 'refresh'> }) {
    this.sealing = o.sealing;
    this.config = o.config;
    this.identity = o.identity;
    this.transport = o.transport;
    this.runtime = o.runtime;
    this.clock = o.clock;
  }

  /** The head part of a whole-model vector (a copy: the client's own from here on). */
  headOf(model: Float32Array): Float32Array {
    return Float32Array.from(splitParams(model, this.runtime.spec, this.runtime.cut).head);
  }

  /** The whole model the client evaluates: its own head, the chain's global body. */
  compose(head: Float32Array, global: Float32Array): Float32Array {
    return joinParams(head, splitParams(global, this.runtime.spec, this.runtime.cut).body);
  }

  /** Rounds, their miner and loss, the last error (/status `split`). */
  status(): SplitClientStatus {
    return { ...this.stats };
  }

  /** One local round with miner `miner` (PeerId `peerId`); throws on the first failed batch. */
  async round(head: Float32Array, data: Dataset, miner: { id: string; peerId: string }, seed: number): Promise<SplitRoundResult> {
    try {
      const r = await this.train(head, data, miner, seed);
      Object.assign(this.stats, { rounds: this.stats.rounds + 1, miner: miner.id, lastLoss: r.loss, lastRoundAt: this.clock.now() });
      return r;
    } catch (e) {
      this.stats.failed++;
      this.stats.lastError = splitErrorOf('round', e, miner.id, this.clock.now());
      throw e;
    }
  }

  private async train(head: Float32Array, data: Dataset, miner: { id: string; peerId: string }, seed: number): Promise<SplitRoundResult> {
    const L = this.config.learning;
    const rt = this.runtime;
    const dim = inputSize(rt.spec);
    const B = Math.min(L.B, L.split.maxBatch);
    let w = Float32Array.from(head);
    let next = new Float32Array(w.length);
    const xb = new Float32Array(B * dim);
    const rng = new Rng(seed);
    // learning.split.augment: each sample distorted as it enters a batch, keyed by (round seed,
    // epoch, position), the private head's regulariser (learn/augment.ts)
    const aug = parseAugment(L.split.augment);
    const side = augments(aug) ? imageSide(dim, data.image) : 0;
    const order = Array.from({ length: data.n }, (_, i) => i);
    let batches = 0;
    let lossSum = 0;
    let lossCount = 0;
    for (let e = 0; e < L.E; e++) {
      rng.shuffle(order);
      lossSum = 0;
      lossCount = 0;
      for (let start = 0; start < data.n; start += B) {
        const b = Math.min(B, data.n - start);
        const labels = new Uint8Array(b);
        for (let i = 0; i < b; i++) {
          const j = order[start + i];
          const src = data.x.subarray(j * dim, (j + 1) * dim);
          if (side) augmentImage(src, side, drawOf(aug, drawKey(seed, e, start + i)), xb.subarray(i * dim, (i + 1) * dim));
          else xb.set(src, i * dim);
          labels[i] = data.y[j];
        }
        const x = xb.subarray(0, b * dim);
        const a = Float32Array.from(await rt.headForward(w, x, b));
        const ga = await this.send(miner, a, labels, b);
        await rt.headSgdStep(w, x, ga.gradients, b, L.lr, next);
        [w, next] = [next, w];
        lossSum += ga.loss * b;
        lossCount += b;
        batches++;
      }
    }
    return { head: w, samples: data.n, batches, loss: lossSum / lossCount };
  }

  /** Is this client in learning.split.headSharing (eq. 4)? */
  get sharing(): boolean {
    return sharesHead(this.config, this.identity.id);
  }

  /** Head shares sent so far (eq. 4 releases). */
  get headShares(): number {
    return this.shares;
  }

  /** After a restart: the shares sent before it, so that the privacy account keeps counting them. */
  restoreShares(n: number): void {
    this.shares = n;
  }

  /**
   * Eq. 4 for a sharing client: take the global head of the global model `modelHash` now? Yes
   * on the first global model after each of its shares (the one that averages the shares) and on
   * the first it sees; no in between, where its head trains privately (every k rounds: the
   * k − 1 global models of the rounds in between would throw that training away).
   */
  takesGlobalHead(modelHash: Uint8Array): boolean {
    const h = toHex(modelHash);
    if (!this.sharing || this.takeAfter === null || this.takeAfter === h) return false;
    this.takeAfter = null;
    return true;
  }

  /**
   * After a completed local round of a sharing client: on its rounds k, 2k, ... (k =
   * headSharing.every, counted from its start) shares the head (shareHead); true if it did.
   * Throws what shareHead throws (the share counts as released all the same).
   */
  async afterRound(miner: { id: string; peerId: string }, head: Float32Array, global: Float32Array, baseModelHash: Uint8Array, samples: number): Promise<boolean> {
    const sharing = this.config.learning.split.headSharing;
    if (!sharing || !this.sharing) return false;
    if (++this.sinceShare < sharing.every) return false;
    this.sinceShare = 0;
    await this.shareHead(miner, head, global, baseModelHash, samples);
    return true;
  }

  /**
   * The (ε, δ) of this client's shares so far (learn/privacy.ts); null for a private head. δ =
   * 1e-5, the experiment's (docs/decisions.md): far below 1/(clients) for any network we run,
   * the usual bar for a user-level guarantee.
   */
  privacyAccount(delta = 1e-5): HeadSharingStatus | null {
    const sharing = this.config.learning.split.headSharing;
    if (!sharing || !this.sharing) return null;
    const a = headShareAccount({ clip: sharing.clip, noise: sharing.noise, releases: this.shares, delta });
    return { every: sharing.every, shares: this.shares, clip: sharing.clip, noise: sharing.noise, delta, epsilon: Number.isFinite(a.epsilon) ? a.epsilon : null };
  }

  /**
   * Eq. 4 for a client who opted in: its head update Δ = head − global head, clipped to L2 norm
   * C and noised with N(0, (σ·C)²) per coordinate (the Gaussian mechanism; the noise comes from
   * the OS's CSPRNG, never from a seed a miner could know), signed and sent to `miner`.
   */
  async shareHead(miner: { id: string; peerId: string }, head: Float32Array, global: Float32Array, baseModelHash: Uint8Array, samples: number): Promise<void> {
    const sharing = this.config.learning.split.headSharing;
    if (!sharing) throw new Error('head sharing is off (learning.split.headSharing)');
    const delta = privatise(head, this.headOf(global), sharing.clip, sharing.noise);
    // counted before it is sent: a share that fails on the way may still have reached the miner
    this.shares++;
    this.takeAfter = toHex(baseModelHash);
    const createdAt = Math.max(this.clock.now(), this.lastCreatedAt + 1);
    this.lastCreatedAt = createdAt;
    const share = { clientId: this.identity.id, minerId: miner.id, baseModelHash, createdAt, samples, delta: floatsToBytes(delta) };
    const signature = this.identity.key.sign(encodeHeadClaim(this.config.networkId, share), SigningContext.splitHead);
    try {
      await this.call(miner, 'head', encodeHeadShare({ ...share, signature }), 2048);
    } catch (e) {
      this.stats.lastError = splitErrorOf('head share', e, miner.id, this.clock.now());
      throw e;
    }
  }

  /**
   * One request to `miner`: in clear, or sealed to its KEM key with a fresh answer key (a
   * refusal for a stale KEM key gets one retry after asking the miner for its current key).
   */
  private async call(miner: { id: string; peerId: string }, kind: 'batch' | 'head', body: Uint8Array, maxResponseBytes: number): Promise<Uint8Array> {
    const { networkId, p2p } = this.config;
    const opts = { maxResponseBytes: maxResponseBytes + 16, timeoutMs: p2p.requestTimeoutMs };
    const sealing = this.sealing;
    if (!sealing) return this.transport.request(miner.peerId, kind === 'batch' ? splitProtocol(networkId) : splitHeadProtocol(networkId), body, opts);
    const key = randomBytes(ANSWER_KEY_BYTES);
    const plain = new Uint8Array(ANSWER_KEY_BYTES + body.length);
    plain.set(key);
    plain.set(body, ANSWER_KEY_BYTES);
    const send = () => this.transport.request(miner.peerId, sealedSplitProtocols(networkId)[kind], sealing.sealTo(miner.id, SealContext.split, plain, splitSealAd(networkId, miner.id), this.clock.now()), opts);
    let res: Uint8Array;
    try {
      res = await send();
    } catch (e) {
      const stale = e instanceof RemoteError ? isStaleKeyCode(e.code) : (e as { code?: string }).code === ErrorCode.SEAL_REQUIRED;
      if (!stale) throw e;
      await sealing.refresh(miner.peerId);
      res = await send();
    }
    return openAnswer(key, res);
  }

  private async send(miner: { id: string; peerId: string }, a: Float32Array, labels: Uint8Array, count: number): Promise<{ loss: number; gradients: Float32Array }> {
    const createdAt = Math.max(this.clock.now(), this.lastCreatedAt + 1);
    this.lastCreatedAt = createdAt;
    const batch = { clientId: this.identity.id, minerId: miner.id, createdAt, count, width: this.runtime.width, activations: floatsToBytes(a), labels };
    const signature = this.identity.key.sign(encodeBatchClaim(this.config.networkId, batch), SigningContext.splitBatch);
    const res = await this.call(miner, 'batch', encodeBatch({ ...batch, signature }), count * this.runtime.width * 4 + 64);
    const answer = decodeAnswer(res, count * this.runtime.width);
    const gradients = bytesToFloats(answer.gradients);
    for (let k = 0; k < gradients.length; k++) if (!Number.isFinite(gradients[k])) throw new Error(`miner ${miner.id} answered a non-finite gradient`);
    return { loss: answer.loss, gradients };
  }
}

/** (head − global) clipped to L2 norm `clip`, plus N(0, (noise·clip)²) per coordinate from the CSPRNG. */
export function privatise(head: Float32Array, global: Float32Array, clip: number, noise: number): Float32Array {
  const d = new Float64Array(head.length);
  let norm = 0;
  for (let k = 0; k < d.length; k++) {
    d[k] = head[k] - global[k];
    norm += d[k] * d[k];
  }
  norm = Math.sqrt(norm);
  const scale = norm > clip ? clip / norm : 1;
  const out = new Float32Array(d.length);
  const sigma = noise * clip;
  const z = sigma > 0 ? gaussians(d.length) : undefined;
  for (let k = 0; k < d.length; k++) out[k] = d[k] * scale + (z ? sigma * z[k] : 0);
  return out;
}

/** n standard normal values (Box-Muller on the OS's CSPRNG). */
export function gaussians(n: number): Float64Array {
  const u = new Uint32Array(n + (n % 2));
  randomFillSync(u);
  const out = new Float64Array(n);
  for (let k = 0; k < n; k += 2) {
    const u1 = (u[k] + 1) / 4294967297; // (0, 1]: the log stays finite
    const u2 = u[k + 1] / 4294967296;
    const r = Math.sqrt(-2 * Math.log(u1));
    out[k] = r * Math.cos(2 * Math.PI * u2);
    if (k + 1 < n) out[k + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}
