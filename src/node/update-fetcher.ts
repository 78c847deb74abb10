/**
 * Raw updates for the miner: its pool first, else fetched from the other miners (the `update`
 * protocol, admitted miners only), checked and stored. This is the aggregation's UpdateSource
 * (chain/aggregation.ts); it needs no chain store, so the store's aggregation check can be
 * built before the store. The checks an update passes before it is stored, cheapest first:
 * seen, shape, admission, signature (in the worker pool); the chain-dependent ones (base
 * model, already recorded) are the intake's (update-intake.ts).
 */
import { Writer, equalBytes, toHex } from '../core/bytes.ts';
import { SigningContext } from '../core/contexts.ts';
import { claimOfRecord, encodeUpdateClaim } from '../core/encoding.ts';
import { BflError, ErrorCode, isBflError } from '../core/errors.ts';
import type { Membership } from '../core/params.ts';
import { type SignedUpdate, type UpdateAnnouncement, checkUpdateFields, decodeSignedUpdate } from '../core/update.ts';
import type { PoolEntry, UpdatePool } from '../chain/update-pool.ts';
import type { UpdateSource } from '../chain/aggregation.ts';
import { type NetworkConfig, contributorRoleOf } from '../config/network.ts';
import type { SignatureVerifier } from '../crypto/verifier.ts';
import type { PeerBook } from '../net/peer-book.ts';
import { protocols } from '../net/protocols.ts';
import { type UpdateSealing, sealedProtocols } from '../net/sealed-updates.ts';
import type { Transport } from '../net/transport.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import type { Metrics } from '../util/metrics.ts';
import type { Verdicts } from './verdicts.ts';

export interface UpdateFetcherComponents {
  config: NetworkConfig;
  membership: Membership;
  pool: UpdatePool;
  transport: Transport;
  peers: PeerBook;
  verifier: SignatureVerifier;
  verdicts: Verdicts;
  clock: Clock;
  logger: Logger;
  metrics?: Metrics;
  /** With `p2p.sealUpdates`: fetched updates come sealed to our KEM key. */
  sealing?: UpdateSealing;
}

export class UpdateFetcher implements UpdateSource {
  private readonly c: UpdateFetcherComponents;
  private readonly modelBytes: number;
  private readonly stored = new Set<(e: PoolEntry, source: 'client' | 'miner') => Promise<void>>();
  private readonly count?: ReturnType<Metrics['counter']>;

  constructor(c: UpdateFetcherComponents, modelBytes: number) {
    this.c = c;
    this.modelBytes = modelBytes;
    this.count = c.metrics?.counter('bfl_miner_updates_total', 'updates offered to the miner, by source and result', ['source', 'result']);
  }

  /** Called (and awaited) for every update newly stored in the pool, uploaded or fetched. */
  onStored(f: (e: PoolEntry, source: 'client' | 'miner') => Promise<void>): void {
    this.stored.add(f);
  }

  /**
   * Seen, shape, admission, field sanity: what needs neither the chain nor a signature check.
   * A fetched update may be needed to validate a block, whose rules bound createdAt by the
   * block's timestamp instead of our clock: `fetched` skips the clock's bound.
   */
  checkShape(u: UpdateAnnouncement, fetched = false): void {
    const { pool, membership } = this.c;
    if (pool.get(u.clientId, u.updateDigest)) throw new BflError(ErrorCode.DUPLICATE_RECORD, `update ${u.clientId}:${toHex(u.updateDigest)} was already received`);
    if (u.payloadBytes !== this.modelBytes) throw new BflError(ErrorCode.MALFORMED, `update has ${u.payloadBytes / 4} parameters, the model ${this.modelBytes / 4}`);
    const role = contributorRoleOf(this.c.config);
    if (!membership.ofRole(u.clientId, role)) {
      // split learning: clients send activations (the split protocol), miners make the updates
      if (role === 'miner' && membership.ofRole(u.clientId, 'client')) throw new BflError(ErrorCode.WRONG_MODE, `update from client ${u.clientId}: this network learns in split mode (learning.mode), where clients send cut-layer activations over the split protocol and only miners make updates`);
      throw new BflError(ErrorCode.UNKNOWN_CLIENT, `update from unknown ${role} ${u.clientId}`);
    }
    if (!membership.ofRole(u.minerId, 'miner')) throw new BflError(ErrorCode.UNKNOWN_MINER, `update names unknown miner ${u.minerId}`);
    const { config, clock } = this.c;
    checkUpdateFields(u, { now: fetched ? Number.POSITIVE_INFINITY : clock.now(), genesisTime: config.genesisTime, maxFutureMs: config.chain.maxFutureMs });
  }

  async checkSignature(u: UpdateAnnouncement): Promise<void> {
    const member = this.c.membership.ofRole(u.clientId, contributorRoleOf(this.c.config))!;
    const [ok] = await this.c.verifier.verify([{ publicKey: member.publicKey, message: encodeUpdateClaim(claimOfRecord(this.c.config.networkId, u)), signature: u.signature, context: SigningContext.update }]);
    if (!ok) throw badSignature(u);
  }

  /** The key and signature to verify on `u`'s claim where the check runs elsewhere (crypto/open-sealed.ts); undefined for a sender who is no member (`checkShape` refuses it). */
  signatureOf(u: UpdateAnnouncement): { publicKey: Uint8Array; signature: Uint8Array; context: string } | undefined {
    const member = this.c.membership.ofRole(u.clientId, contributorRoleOf(this.c.config));
    return member && { publicKey: member.publicKey, signature: u.signature, context: SigningContext.update };
  }

  /** `checkSignature` where the verdict came from elsewhere. */
  checkSignatureVerdict(u: UpdateAnnouncement, valid: boolean | undefined): void {
    if (valid !== true) throw badSignature(u);
  }

  /** Store a checked update; tell the listeners if it is new. */
  async store(u: SignedUpdate, source: 'client' | 'miner'): Promise<void> {
    await this.afterStore(await this.c.pool.add(u, this.c.clock.now()), u, source);
  }

  /** Store a checked update whose payload a worker wrote to `tmp` (UpdatePool.temporaryFile); tell the listeners if it is new. */
  async storeFile(u: UpdateAnnouncement, tmp: string, source: 'client' | 'miner'): Promise<void> {
    await this.afterStore(await this.c.pool.adopt(u, tmp, this.c.clock.now()), u, source);
  }

  private async afterStore(added: boolean, u: UpdateAnnouncement | SignedUpdate, source: 'client' | 'miner'): Promise<void> {
    if (!added) return;
    const entry = this.c.pool.get(u.clientId, u.updateDigest)!;
    this.count?.inc({ source, result: 'accepted' });
    for (const f of this.stored) await f(entry, source);
  }

  countRefused(source: 'client' | 'miner', e: unknown): void {
    this.count?.inc({ source, result: isBflError(e) ? e.code : 'INTERNAL' });
  }

  async get(clientId: string, digest: Uint8Array): Promise<SignedUpdate | undefined> {
    return this.fetch(clientId, digest);
  }

  /** An update's payload from the pool, or fetched from the given peers, then any miner. */
  async fetch(clientId: string, digest: Uint8Array, prefer: string[] = []): Promise<SignedUpdate | undefined> {
    const { pool, peers, transport, config } = this.c;
    const local = pool.get(clientId, digest);
    const payload = local && (await pool.payload(clientId, digest));
    if (local && payload) return { ...local, payload };
    const candidates = [...prefer, ...peers.connectedMiners().map((m) => m.peer)];
    const tried = new Set<string>();
    for (const peer of candidates) {
      if (tried.has(peer)) continue;
      tried.add(peer);
      try {
        const sealing = this.c.sealing;
        const res = await transport.request(peer, sealing ? sealedProtocols(config.networkId).update : protocols(config.networkId).update, new Writer(64).str(clientId).fixed(digest, 32).finish(), {
          maxResponseBytes: config.p2p.maxUpdateBytes + 16384,
          timeoutMs: config.p2p.requestTimeoutMs,
        });
        const u = sealing ? sealing.decode(res, 'serve', this.c.clock.now(), config.p2p.maxUpdateBytes) : decodeSignedUpdate(res, config.p2p.maxUpdateBytes);
        if (u.clientId !== clientId || !equalBytes(u.updateDigest, digest)) throw new BflError(ErrorCode.MALFORMED, 'peer sent another update than asked');
        try {
          this.checkShape(u, true);
          await this.checkSignature(u);
          await this.store(u, 'miner');
        } catch (e) {
          this.countRefused('miner', e);
          if (!isBflError(e, ErrorCode.DUPLICATE_RECORD)) throw e;
        }
        return u;
      } catch (e) {
        this.c.verdicts.refused(peer, 'fetched-update', e, 'debug');
      }
    }
    return undefined;
  }
}

function badSignature(u: { clientId: string }): BflError {
  return new BflError(ErrorCode.BAD_SIGNATURE, `update signature of client ${u.clientId} does not verify`);
}
