/**
 * Who is who: PeerId → admitted member, learnt from signed peer records exchanged over the
 * hello protocol on every new connection, and the penalty ledger of request/response
 * misbehaviour (past a threshold the peer is disconnected and refused for a while). Works
 * over any Transport: libp2p in the daemon, the in-process network in the simulator.
 */
import { defaultP2PConfig } from '../config/network.ts';
import { SigningContext } from '../core/contexts.ts';
import { BflError, ErrorCode, isBflError } from '../core/errors.ts';
import type { Membership } from '../core/params.ts';
import type { Role } from '../core/types.ts';
import type { Identity } from '../crypto/keyfile.ts';
import { type KemDirectory, decodeKemAnnouncement, encodeKemAnnouncement, kemAnnouncementMessage, signKemAnnouncement } from '../crypto/kem-keys.ts';
import type { SignatureVerifier, VerifyJob } from '../crypto/verifier.ts';
import { type Clock, systemClock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import type { Metrics } from '../util/metrics.ts';
import { decodePeerRecord, encodePeerRecord, peerRecordMessage } from './messages.ts';
import { Bounded, Buckets, PenaltyLedger } from './budget.ts';
import { protocols } from './protocols.ts';
import type { Transport } from './transport.ts';

export interface PeerInfo {
  memberId: string;
  role: Role;
}

/**
 * How peers are admitted and held to account (issue 13, items 1, 5 and 7). Budgets and
 * penalties are keyed by subject: an admitted member's id (a fresh libp2p key neither escapes a
 * ban nor gets a fresh budget) or, for a peer that has not proven membership, its address.
 */
export interface PeerPolicy {
  /** A peer that has not completed the signed hello by then is disconnected. */
  helloTimeoutMs: number;
  /** Penalty points after which a subject is disconnected and refused for `banMs`. */
  banThreshold: number;
  banMs: number;
  /** Points of a subject not penalised for `penaltyGraceMs` halve every `penaltyHalfLifeMs`. */
  penaltyGraceMs: number;
  penaltyHalfLifeMs: number;
  /** Subjects remembered at most by each ledger and budget table (least recently seen go first). */
  maxSubjects: number;
  /** Requests per second per member per protocol, with a burst of `requestBurst`. */
  requestsPerSecond: number;
  requestBurst: number;
  /** Response bytes per second per member (model and block downloads); the burst is 8 s of it. */
  downloadBytesPerSecond: number;
  /** Miners sync blocks from each other: their budgets are this many times a client's. */
  minerBudgetFactor: number;
  /** Hellos served per second per address (anyone may say hello: one ML-DSA verification each). */
  hellosPerSecond: number;
}

/** A protocol's own per-member request budget (a miner's is `minerBudgetFactor` times it). */
export interface RequestBudget {
  perSecond: number;
  burst: number;
}

export const defaultPeerPolicy: PeerPolicy = {
  // helloTimeoutMs, requestsPerSecond and downloadBytesPerSecond are the config's (with their reasons there)
  helloTimeoutMs: defaultP2PConfig.helloTimeoutMs,
  // ten provable offences (10 points each) ban; an invalid block (50) counts five
  banThreshold: 100,
  banMs: 10 * 60_000,
  // a flood keeps its points; an honest peer's rare slip (a lost answer's retry: 2 points) fades
  penaltyGraceMs: 10 * 60_000,
  penaltyHalfLifeMs: 10 * 60_000,
  // a few hundred bytes each: 4096 subjects are ~1 MB at most, whatever a flood of keys does
  maxSubjects: 4096,
  requestsPerSecond: defaultP2PConfig.requestsPerSecond,
  requestBurst: 100,
  downloadBytesPerSecond: defaultP2PConfig.downloadBytesPerSecond,
  minerBudgetFactor: 10,
  hellosPerSecond: 5,
};

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
  policy?: Partial<PeerPolicy>;
  /** PeerIds the config names for members (members[].peerId): they have reserved connection
   * capacity before their hello (Noise has proven the PeerId; the hello proves the member). */
  configuredPeers?: Map<string, string>;
}

/**
 * Who is who: PeerId → admitted member, learnt from signed peer records, the penalty ledger of
 * request/response misbehaviour and the per-protocol budgets.
 */
export class PeerBook {
  private readonly o: PeerBookOptions;
  private readonly policy: PeerPolicy;
  private readonly clock: Clock;
  private readonly peers = new Map<string, PeerInfo>();
  private readonly pending = new Map<string, Promise<PeerInfo | undefined>>();
  private readonly ledger: PenaltyLedger;
  private readonly requests: Buckets;
  private readonly bytes: Buckets;
  /** Where each recent peer connected from: a penalty that lands after the hang-up still finds its address. */
  private readonly addresses: Bounded<string>;
  /** Addresses members connected from (a NAT may hide outsiders behind them): never refused before the handshake. */
  private readonly memberAddresses: Bounded<true>;
  private readonly record: Uint8Array;
  private readonly m?: { penalties: ReturnType<Metrics['counter']>; limited: ReturnType<Metrics['counter']>; dropped: ReturnType<Metrics['counter']> };
  private readonly unsubscribe: (() => void)[] = [];

  constructor(o: PeerBookOptions) {
    this.o = o;
    this.policy = { ...defaultPeerPolicy, ...o.policy };
    this.clock = o.clock ?? systemClock;
    const p = this.policy;
    this.ledger = new PenaltyLedger({ threshold: p.banThreshold, banMs: p.banMs, graceMs: p.penaltyGraceMs, halfLifeMs: p.penaltyHalfLifeMs, maxSubjects: p.maxSubjects });
    this.requests = new Buckets(p.maxSubjects);
    this.bytes = new Buckets(p.maxSubjects);
    this.addresses = new Bounded(p.maxSubjects);
    this.memberAddresses = new Bounded(p.maxSubjects);
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
    this.m = o.metrics && {
      penalties: o.metrics.counter('bfl_peer_penalties_total', 'penalties given to peers, by reason', ['reason']),
      limited: o.metrics.counter('bfl_peer_rate_limited_total', 'requests refused for exceeding a per-peer budget, by protocol', ['protocol']),
      dropped: o.metrics.counter('bfl_peer_unidentified_dropped_total', 'connections closed because the peer did not complete the signed hello in time'),
    };
  }

  async start(): Promise<void> {
    const { transport, networkId } = this.o;
    await transport.serve(
      protocols(networkId).hello,
      async (req, peer) => {
        // members are exempt: strangers flooding hellos from a member's address (a NAT) must not
        // stop the member identifying us, or it would hang up on us
        if (!this.isMember(peer) && !this.within(peer, 'hello', this.addressKey(peer), this.policy.hellosPerSecond, this.policy.hellosPerSecond * 4)) throw limited('hello');
        await this.accept(peer, req);
        return this.record;
      },
      { maxRequestBytes: 8192, timeoutMs: this.policy.helloTimeoutMs, onError: (peer, e) => isBflError(e) && e.action === 'REJECT' && this.penalise(peer, `hello:${e.code}`, e.code === ErrorCode.RATE_LIMITED ? 2 : 10) },
    );
    this.unsubscribe.push(
      transport.onConnect((peer) => {
        const ip = transport.remoteAddress?.(peer);
        if (ip) this.addresses.set(peer, ip);
        if (ip && this.o.configuredPeers?.has(peer)) this.memberAddresses.set(ip, true);
        if (this.isBanned(peer)) {
          void transport.hangUp(peer).catch(() => undefined);
          return;
        }
        this.clock.spawn(() => this.helloOrHangUp(peer));
      }),
    );
    // a PeerId's mapping is only needed while it is connected: fresh keys do not pile up
    if (transport.onDisconnect) this.unsubscribe.push(transport.onDisconnect((peer) => this.forget(peer)));
  }

  stop(): void {
    for (const f of this.unsubscribe.splice(0)) f();
  }

  /**
   * A peer's last connection closed. An outsider's record in the transport's peer store
   * (addresses, protocols, keys, signed record: ~1-2 KB) goes too: libp2p drops a peer only 6 h
   * after it was last seen, and then only when someone lists the store, so a flood of fresh
   * keys (thousands in a 10 min soak) grew it for hours. Members keep theirs.
   */
  private forget(peer: string): void {
    const member = this.peers.get(peer) ?? this.o.configuredPeers?.get(peer);
    this.peers.delete(peer);
    if (!member) void this.o.transport.forget?.(peer).catch((e) => this.o.logger.debug({ peer, err: (e as Error).message }, 'peer store entry not dropped'));
  }

  /**
   * A new connection must prove membership with a signed hello within `helloTimeoutMs`, else it
   * is closed: an outsider cannot sit on a connection slot (issue 13, item 1).
   */
  private async helloOrHangUp(peer: string): Promise<void> {
    const who = await this.identify(peer);
    if (who && !this.isBanned(peer)) return;
    if (!who && this.peers.has(peer)) return; // it said hello to us meanwhile
    // a moment for the refusal of a request in flight (UNAUTHORIZED: say hello first) to arrive
    if (!who) await this.clock.sleep(Math.min(500, this.policy.helloTimeoutMs / 10));
    if (!who && this.peers.has(peer)) return;
    if (!this.o.transport.connections().includes(peer)) return;
    this.m?.dropped.inc();
    this.o.logger.debug({ peer, member: who?.memberId }, who ? 'banned member reconnected: closed' : 'no signed hello in time: connection closed');
    await this.o.transport.hangUp(peer).catch(() => undefined);
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
    const ip = this.o.transport.remoteAddress?.(peer) ?? this.addresses.peek(peer);
    if (ip) this.memberAddresses.set(ip, true);
    // a banned member under a fresh libp2p key: known now, and refused (issue 13, item 5)
    if (this.ledger.isBanned(memberKey(rec.memberId), this.clock.now())) {
      void this.o.transport.hangUp(peer).catch(() => undefined);
      throw new BflError(ErrorCode.UNAUTHORIZED, `${rec.memberId} is banned for misbehaviour`, { action: 'IGNORE' });
    }
    return info;
  }

  /** Who `peer` is; asks it (hello) if we do not know yet. Undefined for outsiders. */
  async identify(peer: string): Promise<PeerInfo | undefined> {
    const known = this.peers.get(peer);
    if (known) return known;
    let p = this.pending.get(peer);
    if (!p) {
      p = this.o.transport
        .request(peer, protocols(this.o.networkId).hello, this.record, { maxResponseBytes: 8192, timeoutMs: this.policy.helloTimeoutMs })
        .then((res) => this.accept(peer, res))
        .catch((e) => {
          this.o.logger.debug({ peer, err: (e as Error).message }, 'peer identification failed');
          return this.peers.get(peer); // it may have said hello to us meanwhile
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

  /**
   * Admit a request on one of our protocols: from an admitted member (after its hello) that is
   * not banned and within its budget for `protocol` (issue 13, item 7). Throws UNAUTHORIZED
   * (an outsider: REJECT, penalised by address) or RATE_LIMITED. `budget`: the protocol's own
   * request rate where its honest use is not one request per tick (split learning's batches).
   */
  async admit(peer: string, protocol: string, budget?: RequestBudget): Promise<PeerInfo> {
    const who = await this.member(peer, protocol);
    const k = who.role === 'miner' ? this.policy.minerBudgetFactor : 1;
    const subject = memberKey(who.memberId);
    const now = this.clock.now();
    const rate = this.policy.downloadBytesPerSecond * k;
    const perSecond = budget?.perSecond ?? this.policy.requestsPerSecond;
    const burst = budget?.burst ?? this.policy.requestBurst;
    // in debt from downloads (any protocol's responses count): wait until it is paid off
    if (!this.bytes.take(subject, 0, rate, rate * 8, now) || !this.within(peer, protocol, subject, perSecond * k, burst * k)) throw limited(protocol);
    return who;
  }

  /** An admitted member that is not banned (the check before a request is read: no budget taken). */
  async member(peer: string, protocol = 'this protocol'): Promise<PeerInfo> {
    const who = await this.identify(peer);
    if (!who) throw new BflError(ErrorCode.UNAUTHORIZED, `${protocol} is for admitted members: say hello with a signed peer record first`);
    if (this.isBanned(peer)) throw new BflError(ErrorCode.UNAUTHORIZED, `${who.memberId} is banned for misbehaviour`, { action: 'IGNORE' });
    return who;
  }

  /** Charge `bytes` of a response we served (or of a split batch we trained on) to `peer`'s byte budget. */
  charge(peer: string, bytes: number): void {
    const who = this.peers.get(peer);
    if (!who) return;
    const rate = this.policy.downloadBytesPerSecond * (who.role === 'miner' ? this.policy.minerBudgetFactor : 1);
    this.bytes.charge(memberKey(who.memberId), bytes, rate, rate * 8, this.clock.now());
  }

  private within(peer: string, protocol: string, subject: string, rate: number, burst: number): boolean {
    if (this.requests.take(`${subject} ${protocol}`, 1, rate, burst, this.clock.now())) return true;
    this.m?.limited.inc({ protocol });
    this.o.logger.debug({ peer, subject, protocol }, 'request over budget');
    return false;
  }

  /** The ledger key of `peer`: its member id once it said hello, else its address (or PeerId). */
  private subject(peer: string): string {
    const who = this.peers.get(peer);
    return who ? memberKey(who.memberId) : this.addressKey(peer);
  }

  private addressKey(peer: string): string {
    const ip = this.o.transport.remoteAddress?.(peer) ?? this.addresses.peek(peer);
    return ip ? `ip:${ip}` : `peer:${peer}`;
  }

  /** Count a misbehaviour; past the threshold, disconnect and refuse the subject for a while. */
  penalise(peer: string, reason: string, points = 10): void {
    const subject = this.subject(peer);
    const { total, banned } = this.ledger.add(subject, points, this.clock.now());
    this.m?.penalties.inc({ reason });
    this.o.logger.warn({ peer, subject, reason, total, banned }, 'peer penalised');
    if (!banned) return;
    // every connection of a banned member, whatever its PeerId; of an outsider, this one
    const who = this.peers.get(peer);
    const targets = who ? this.o.transport.connections().filter((p) => this.peers.get(p)?.memberId === who.memberId) : [peer];
    for (const p of new Set([...targets, peer])) void this.o.transport.hangUp(p).catch(() => undefined);
  }

  penaltyOf(peer: string): number {
    return this.ledger.pointsOf(this.subject(peer), this.clock.now());
  }

  /** Banned: as the member it proved to be (or the config names it), else by its address. */
  isBanned(peer: string): boolean {
    const now = this.clock.now();
    const member = this.peers.get(peer)?.memberId ?? this.o.configuredPeers?.get(peer);
    if (member) return this.ledger.isBanned(memberKey(member), now);
    return this.ledger.isBanned(this.addressKey(peer), now);
  }

  /**
   * The connection gate's question (p2p.ts): refuse a new inbound connection from `peer` at
   * `ip`? A PeerId known as (or configured for) a banned member is refused; an unknown one from
   * a banned address too. A member's own PeerId is not refused for its address's ban (a NAT may
   * hide an outsider behind it).
   */
  refuses(peer: string, ip: string | undefined): boolean {
    const now = this.clock.now();
    const member = this.peers.get(peer)?.memberId ?? this.o.configuredPeers?.get(peer);
    if (member) return this.ledger.isBanned(memberKey(member), now);
    return ip !== undefined && this.ledger.isBanned(`ip:${ip}`, now);
  }

  /**
   * The gate's question before the handshake (p2p.ts), when only the address is known: refuse an
   * inbound connection from `ip`? Yes while the address is banned, unless a member has connected
   * from it (then the PeerId decides, after the handshake: `refuses`). A banned outsider's fresh
   * keys would otherwise each cost a Noise handshake (X25519 and a signature verification) before
   * their refusal (Noise was ~7 % of a miner's event loop under the soak's flood, fifth wave's profile).
   */
  refusesAddress(ip: string): boolean {
    return !this.memberAddresses.peek(ip) && this.ledger.isBanned(`ip:${ip}`, this.clock.now());
  }

  /** Proven (hello) or configured member: has reserved connection capacity. */
  isMember(peer: string): boolean {
    return this.peers.has(peer) || (this.o.configuredPeers?.has(peer) ?? false);
  }

  /** Penalties by member id (or address for outsiders), for /status. */
  penaltyReport(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.ledger.report(this.clock.now()))) out[k.startsWith('member:') ? k.slice(7) : k] = v;
    return out;
  }

  /** Sizes of the ledgers (tests: they stay bounded under a flood). */
  tableSizes(): { penalties: number; bans: number; requestBudgets: number; byteBudgets: number; peers: number } {
    return { ...this.ledger.size, requestBudgets: this.requests.size, byteBudgets: this.bytes.size, peers: this.peers.size };
  }
}

const memberKey = (id: string) => `member:${id}`;
const limited = (protocol: string) => new BflError(ErrorCode.RATE_LIMITED, `too many requests on ${protocol.split('/').slice(-2, -1)[0] ?? protocol}: slow down`);
