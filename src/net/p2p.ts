/**
 * The libp2p node (docs/architecture.md, "Network"): TCP + Noise + Yamux, identify, ping, bootstrap from the
 * config, optional mDNS, gossipsub for miners. Who a PeerId is (signed peer records) and the
 * penalties of request/response misbehaviour live in peer-book.ts; gossip misbehaviour is
 * scored by gossipsub itself.
 */
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { bootstrap } from '@libp2p/bootstrap';
import { type GossipSub, gossipsub } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import type { ConnectionGater, Libp2p, MultiaddrConnection, PeerId, PrivateKey } from '@libp2p/interface';
import { mdns } from '@libp2p/mdns';
import { type Ping, ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { createLibp2p } from 'libp2p';
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import { type ConnectionLimits, defaultConnectionLimits, ipOf } from './limits.ts';
import { topics } from './protocols.ts';
import { bufferFor } from './reqres.ts';
import { withCachedSigningKey } from './signing-key.ts';

export { type ConnectionLimits, defaultConnectionLimits, ipOf };

export type Services = { identify: unknown; ping: Ping; pubsub?: GossipSub };
export type P2PNode = Libp2p<Services>;

export interface P2POptions {
  privateKey: PrivateKey;
  listen: string[];
  bootstrap: string[];
  networkId: string;
  gossip: boolean;
  mdns: boolean;
  ipColocationPenalty: boolean;
  maxMessageBytes: number;
  /** The largest request or response of our protocols (maxFrameBytes(config)): libp2p's stream
   * buffers are sized to hold it (their default, 4 MiB, is below our limits). */
  maxFrameBytes?: number;
  /** How often to redial configured peers (`bootstrap`) we hold no connection to; 0 = never. */
  redialMs?: number;
  limits?: Partial<ConnectionLimits>;
  /** Who is a member and who is banned: the node's peer book, built after libp2p (late bound). */
  admission?: () => Admission | undefined;
}

/** What the connection gate asks of the peer book (peer-book.ts). */
export interface Admission {
  /** Refuse a new inbound connection from `peer` at `ip` (a banned member or address)? */
  refuses(peer: string, ip: string | undefined): boolean;
  /** Refuse it before its handshake, from its address alone (banned, and no member's)? */
  refusesAddress?(ip: string): boolean;
  /** A proven or configured member: not counted against the unidentified connections. */
  isMember(peer: string): boolean;
}

/** The gate of new inbound connections: per-IP counts, bans, and the unidentified pool. */
function connectionGater(limits: ConnectionLimits, node: () => P2PNode | undefined, admission: () => Admission | undefined): ConnectionGater {
  const inbound = new Map<string, number>();
  const pending = new Map<string, number>();
  const handshaking = new WeakSet<MultiaddrConnection>();
  const dec = (m: Map<string, number>, ip: string) => {
    const n = (m.get(ip) ?? 1) - 1;
    if (n <= 0) m.delete(ip);
    else m.set(ip, n);
  };
  return {
    denyInboundConnection(maConn) {
      const ip = ipOf(maConn.remoteAddr);
      if (!ip) return false;
      // a banned address costs no Noise handshake (the PeerId check waits for it, below)
      if (admission()?.refusesAddress?.(ip)) return true;
      if ((inbound.get(ip) ?? 0) >= limits.maxConnectionsPerIp || (pending.get(ip) ?? 0) >= limits.maxPendingPerIp) return true;
      inbound.set(ip, (inbound.get(ip) ?? 0) + 1);
      pending.set(ip, (pending.get(ip) ?? 0) + 1);
      handshaking.add(maConn);
      maConn.addEventListener('close', () => {
        dec(inbound, ip);
        if (handshaking.delete(maConn)) dec(pending, ip);
      });
      return false;
    },
    denyInboundEncryptedConnection(peerId: PeerId, maConn) {
      const ip = ipOf(maConn.remoteAddr);
      if (ip && handshaking.delete(maConn)) dec(pending, ip);
      const a = admission();
      const n = node();
      const peer = peerId.toString();
      if (!a || !n) return false;
      if (a.refuses(peer, ip)) return true;
      if (a.isMember(peer)) return false;
      // one unidentified PeerId needs no more than a couple of connections (simultaneous dials)
      if (n.getConnections(peerId).length >= 2) return true;
      const strangers = n.getConnections().filter((c) => !a.isMember(c.remotePeer.toString()));
      if (strangers.length >= limits.maxUnidentifiedConnections) {
        // make room: the oldest stranger has had the longest to say hello
        const oldest = strangers.sort((x, y) => x.timeline.open - y.timeline.open).slice(0, strangers.length - limits.maxUnidentifiedConnections + 1);
        for (const c of oldest) void c.close().catch(() => c.abort(new Error('unidentified slot reclaimed')));
      }
      return false;
    },
  };
}

/** Gossipsub scoring for our two topics (Lodestar-style: invalid messages cost the most). */
function scoreParams(networkId: string, ipColocationPenalty: boolean) {
  const t = topics(networkId);
  const topic = {
    topicWeight: 1,
    timeInMeshWeight: 0.01,
    timeInMeshQuantum: 1000,
    timeInMeshCap: 100,
    firstMessageDeliveriesWeight: 1,
    firstMessageDeliveriesDecay: 0.9,
    firstMessageDeliveriesCap: 50,
    meshMessageDeliveriesWeight: 0, // our topics are bursty; do not punish quiet meshes
    meshMessageDeliveriesDecay: 0.9,
    meshMessageDeliveriesCap: 1,
    meshMessageDeliveriesThreshold: 0,
    meshMessageDeliveriesWindow: 1000,
    meshMessageDeliveriesActivation: 60_000,
    meshFailurePenaltyWeight: 0,
    meshFailurePenaltyDecay: 0.9,
    invalidMessageDeliveriesWeight: -100, // one REJECT sinks a peer well below the gossip threshold
    invalidMessageDeliveriesDecay: 0.99,
  };
  return {
    topics: { [t.updates]: topic, [t.blocks]: topic },
    IPColocationFactorWeight: ipColocationPenalty ? -10 : 0,
  };
}

/** libp2p's own default stream buffer: what a node without a network config (tests, tools) keeps. */
const DEFAULT_FRAME_BYTES = 4 * 1024 * 1024;

/**
 * The largest frame our protocols exchange: a (sealed) update with its headroom, or a block
 * with its response header. Every stream buffer and length limit derives from the config's
 * two size limits through this, so no layer refuses what another allows (issue 13, item 8).
 */
export function maxFrameBytes(p: { maxUpdateBytes: number; maxBlockBytes: number }): number {
  return Math.max(p.maxUpdateBytes + 16384, p.maxBlockBytes + 1024);
}

export async function createP2P(o: P2POptions): Promise<P2PNode> {
  const services: Record<string, unknown> = { identify: identify(), ping: ping() };
  if (o.gossip) {
    services.pubsub = gossipsub({
      allowPublishToZeroTopicPeers: true,
      emitSelf: false,
      maxInboundDataLength: o.maxMessageBytes,
      scoreParams: scoreParams(o.networkId, o.ipColocationPenalty),
      // announcements are signed by our own keys; gossipsub's own signatures stay on (origin).
    });
  }
  const peerDiscovery = [];
  if (o.bootstrap.length > 0) peerDiscovery.push(bootstrap({ list: o.bootstrap, timeout: 100 }));
  if (o.mdns) peerDiscovery.push(mdns());
  const limits = { ...defaultConnectionLimits, ...o.limits };
  let created: P2PNode | undefined;
  const node = (await createLibp2p({
    privateKey: withCachedSigningKey(o.privateKey), // gossipsub signs every message we publish
    addresses: { listen: o.listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ streamOptions: { maxReadBufferLength: bufferFor(o.maxFrameBytes ?? DEFAULT_FRAME_BYTES) } })],
    peerDiscovery,
    services: services as never,
    connectionManager: {
      maxConnections: limits.maxConnections,
      inboundConnectionThreshold: limits.inboundPerIpPerSecond,
      // libp2p's 10 in total; per address at most maxPendingPerIp (the gater)
      maxIncomingPendingConnections: Math.max(10, limits.maxPendingPerIp * 4),
    },
    connectionGater: connectionGater(limits, () => created, o.admission ?? (() => undefined)),
  })) as unknown as P2PNode;
  created = node;
  stayConnected(node, o.bootstrap, o.redialMs ?? 2000);
  return node;
}

/**
 * Keep a connection to every configured peer (the admitted miners). Bootstrap dials once and
 * libp2p's reconnect queue only redials peers that were connected and gives up after a few
 * tries, so two miners that start at the same moment could miss each other and mine apart for
 * good (seen once in the testnet on a loaded machine: two chains, 60 s without converging).
 */
function stayConnected(node: P2PNode, addrs: string[], everyMs: number): void {
  if (addrs.length === 0 || everyMs <= 0) return;
  const targets = addrs.map(multiaddr).map((addr) => ({ addr, peer: peerIdFromString(addr.getComponents().find((c) => c.name === 'p2p')!.value!) }));
  const dialing = new Set<string>();
  const timer = setInterval(() => {
    if (node.status !== 'started') return;
    for (const t of targets) {
      const key = t.peer.toString();
      if (dialing.has(key) || node.getConnections(t.peer).length > 0) continue;
      dialing.add(key);
      node
        .dial(t.addr, { signal: AbortSignal.timeout(everyMs * 2) })
        .catch(() => undefined) // unreachable for now: try again next round
        .finally(() => dialing.delete(key));
    }
  }, everyMs);
  timer.unref();
  node.addEventListener('stop', () => clearInterval(timer));
}
