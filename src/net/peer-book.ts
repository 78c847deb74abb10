/**
 * Who is who: PeerId → admitted member, learnt from signed peer records exchanged over the
 * hello protocol on every new connection, and the penalty ledger of request/response
 * misbehaviour (past a threshold the peer is disconnected and refused for a while). Works
 * over any Transport: libp2p in the daemon, the in-process network in the simulator.
 */
import { SigningContext } from '../core/contexts.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import type { Membership } from '../core/params.ts';
import type { Role } from '../core/types.ts';
import type { Identity } from '../crypto/keyfile.ts';
import { type KemDirectory, decodeKemAnnouncement, encodeKemAnnouncement, kemAnnouncementMessage, signKemAnnouncement } from '../crypto/kem-keys.ts';
import type { SignatureVerifier, VerifyJob } from '../crypto/verifier.ts';
import { type Clock, systemClock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import type { Metrics } from '../util/metrics.ts';
import { decodePeerRecord, encodePeerRecord, peerRecordMessage } from './messages.ts';
import { protocols } from './protocols.ts';
import type { Transport } from './transport.ts';

export interface PeerInfo {
  memberId: string;
  role: Role;
}

export interface PeerBookOptions {
  transport: Transport;
  identity: Identity;
  networkId: string;
  membership: Membership;
  verifier: SignatureVerifier;
  timeoutMs: number;
  logger: Logger;
  metrics?: Metrics;
  clock?: Clock;
  /** Where miners' ML-KEM keys learnt from peer records go (verified first). */
  kemDirectory?: KemDirectory;
  /** Penalty points after which a peer is disconnected and refused for `banMs`. */
  banThreshold?: number;
  banMs?: number;
}

/**
 * Who is who: PeerId → admitted member, learnt from signed peer records, and the penalty
 * ledger of request/response misbehaviour.
 */
export class PeerBook {
  private readonly o: PeerBookOptions;
  private readonly clock: Clock;
  private readonly peers = new Map<string, PeerInfo>();
  private readonly pending = new Map<string, Promise<PeerInfo | undefined>>();
  private readonly penalties = new Map<string, number>();
  private readonly banned = new Map<string, number>();
  private readonly record: Uint8Array;
  private readonly m?: { penalties: ReturnType<Metrics['counter']> };
  private unsubscribe?: () => void;

  constructor(o: PeerBookOptions) {
    this.o = o;
    this.clock = o.clock ?? systemClock;
    const peerId = o.transport.self;
    // A miner announces its newest KEM key valid now (a rotation takes effect at restart).
    const now = this.clock.now();
    const kem = (o.identity.kemKeys ?? []).filter((k) => k.notBefore <= now && now < k.notAfter).sort((a, b) => b.notBefore - a.notBefore)[0];
    this.record = encodePeerRecord({
      memberId: o.identity.id,
      peerId,
      signature: o.identity.key.sign(peerRecordMessage(o.networkId, o.identity.id, peerId), SigningContext.peer),
      kem: kem && o.identity.role === 'miner' ? encodeKemAnnouncement(signKemAnnouncement(o.networkId, o.identity.id, o.identity.key, kem)) : undefined,
    });
    this.m = o.metrics && { penalties: o.metrics.counter('bfl_peer_penalties_total', 'penalties given to peers, by reason', ['reason']) };
  }

  async start(): Promise<void> {
    const { transport, networkId } = this.o;
    await transport.serve(
      protocols(networkId).hello,
      async (req, peer) => {
        await this.accept(peer, req);
        return this.record;
      },
      { maxRequestBytes: 8192, timeoutMs: this.o.timeoutMs },
    );
    this.unsubscribe = transport.onConnect((peer) => {
      if (this.isBanned(peer)) {
        void transport.hangUp(peer).catch(() => undefined);
        return;
      }
      this.clock.spawn(() => this.identify(peer));
    });
  }

  stop(): void {
    this.unsubscribe?.();
  }

  /** Verify a peer record from `peer`; remember the mapping. */
  private async accept(peer: string, bytes: Uint8Array): Promise<PeerInfo> {
    const rec = decodePeerRecord(bytes);
    if (rec.peerId !== peer) throw new BflError(ErrorCode.BAD_SIGNATURE, 'peer record is for another PeerId');
    const member = this.o.membership.get(rec.memberId);
    if (!member) throw new BflError(ErrorCode.UNAUTHORIZED, `${rec.memberId} is not a member of this network`);
    const kem = rec.kem && member.role === 'miner' ? decodeKemAnnouncement(rec.kem) : undefined;
    if (kem && kem.memberId !== rec.memberId) throw new BflError(ErrorCode.BAD_SIGNATURE, `peer record of ${rec.memberId} carries a KEM key of ${kem.memberId}`);
    const jobs: VerifyJob[] = [{ publicKey: member.publicKey, message: peerRecordMessage(this.o.networkId, rec.memberId, rec.peerId), signature: rec.signature, context: SigningContext.peer }];
    if (kem) jobs.push({ publicKey: member.publicKey, message: kemAnnouncementMessage(this.o.networkId, kem), signature: kem.signature, context: SigningContext.kemKey });
    const [ok, kemOk] = await this.o.verifier.verify(jobs);
    if (!ok) throw new BflError(ErrorCode.BAD_SIGNATURE, `peer record of ${rec.memberId} does not verify`);
    if (kem && !kemOk) throw new BflError(ErrorCode.BAD_SIGNATURE, `KEM key announcement of ${rec.memberId} does not verify`);
    if (kem) this.o.kemDirectory?.learn(kem);
    const info = { memberId: rec.memberId, role: member.role };
    this.peers.set(peer, info);
    return info;
  }

  /** Who `peer` is; asks it (hello) if we do not know yet. Undefined for outsiders. */
  async identify(peer: string): Promise<PeerInfo | undefined> {
    const known = this.peers.get(peer);
    if (known) return known;
    let p = this.pending.get(peer);
    if (!p) {
      p = this.o.transport
        .request(peer, protocols(this.o.networkId).hello, this.record, { maxResponseBytes: 8192, timeoutMs: this.o.timeoutMs })
        .then((res) => this.accept(peer, res))
        .catch((e) => {
          this.o.logger.debug({ peer, err: (e as Error).message }, 'peer identification failed');
          return undefined;
        })
        .finally(() => this.pending.delete(peer));
      this.pending.set(peer, p);
      return p;
    }
    return this.clock.suspend(p);
  }

  info(peer: string): PeerInfo | undefined {
    return this.peers.get(peer);
  }

  /** Forget what `peer` told us and ask again (e.g. after KEM_KEY_EXPIRED: it rotated its key). */
  async reidentify(peer: string): Promise<PeerInfo | undefined> {
    this.peers.delete(peer);
    return this.identify(peer);
  }

  /** Connected peers that are admitted miners. */
  connectedMiners(): { peer: string; memberId: string }[] {
    const out: { peer: string; memberId: string }[] = [];
    for (const peer of this.o.transport.connections()) {
      const i = this.peers.get(peer);
      if (i?.role === 'miner') out.push({ peer, memberId: i.memberId });
    }
    return out;
  }

  peerOf(memberId: string): string | undefined {
    for (const peer of this.o.transport.connections()) if (this.peers.get(peer)?.memberId === memberId) return peer;
    return undefined;
  }

  /** Count a misbehaviour; past the threshold, disconnect and refuse the peer for a while. */
  penalise(peer: string, reason: string, points = 10): void {
    const total = (this.penalties.get(peer) ?? 0) + points;
    this.penalties.set(peer, total);
    this.m?.penalties.inc({ reason });
    this.o.logger.warn({ peer, member: this.peers.get(peer)?.memberId, reason, total }, 'peer penalised');
    if (total >= (this.o.banThreshold ?? 100)) {
      this.banned.set(peer, this.clock.now() + (this.o.banMs ?? 10 * 60_000));
      void this.o.transport.hangUp(peer).catch(() => undefined);
    }
  }

  penaltyOf(peer: string): number {
    return this.penalties.get(peer) ?? 0;
  }

  isBanned(peer: string): boolean {
    return (this.banned.get(peer) ?? 0) > this.clock.now();
  }

  /** Penalties by member id (or PeerId for outsiders), for /status. */
  penaltyReport(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of this.penalties) out[this.peers.get(k)?.memberId ?? k] = v;
    return out;
  }
}
