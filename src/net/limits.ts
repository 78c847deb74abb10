/** Connection limits of the libp2p node (p2p.ts), in a module of their own so that the config can read their defaults without loading libp2p. */
import type { Multiaddr } from '@multiformats/multiaddr';
import { defaultP2PConfig } from '../config/network.ts';

/**
 * Connection slots (issue 13, item 1): one outsider held every slot (~200) of a miner and locked
 * admitted clients out. Outsiders now share a small pool of unidentified slots (the oldest is
 * closed for a newcomer), the rest is reserved for members, and the peer book closes any
 * connection that has not completed the signed hello within its timeout.
 */
export interface ConnectionLimits {
  /** Open connections at most (libp2p refuses inbound ones beyond it). */
  maxConnections: number;
  /** Connections not (yet) proven to be a member's, at most. */
  maxUnidentifiedConnections: number;
  /** Inbound connections (open or in their handshake) from one IP address, at most. */
  maxConnectionsPerIp: number;
  /** Inbound handshakes in progress from one IP address, at most. */
  maxPendingPerIp: number;
  /** New inbound connections per second from one IP address (libp2p's inboundConnectionThreshold). */
  inboundPerIpPerSecond: number;
}

export const defaultConnectionLimits: ConnectionLimits = {
  // the three an operator sets, with their reasons, are the config's (config/network.ts)
  maxConnections: defaultP2PConfig.maxConnections,
  maxUnidentifiedConnections: defaultP2PConfig.maxUnidentifiedConnections,
  maxConnectionsPerIp: defaultP2PConfig.maxConnectionsPerIp,
  // Noise handshakes are quick (one round trip); libp2p allows 10 in progress in total, so one
  // address stalling its handshakes could otherwise take them all for the upgrade timeout
  maxPendingPerIp: 4,
  // libp2p's default
  inboundPerIpPerSecond: 5,
};

/** The IP address of a multiaddr, if it has one. */
export function ipOf(addr: Multiaddr): string | undefined {
  return addr.getComponents().find((c) => c.name === 'ip4' || c.name === 'ip6')?.value;
}
