/**
 * What the Miner and the Client need from a network, and nothing more (STYLE.md: stub narrow
 * interfaces). The daemon uses libp2p (Libp2pTransport below); the simulator an in-process
 * network with latencies and coverage (src/sim/). Peers are named by PeerId strings.
 */
import { TopicValidatorResult } from '@libp2p/gossipsub';
import { peerIdFromString } from '@libp2p/peer-id';
import { ipOf } from './limits.ts';
import type { P2PNode } from './p2p.ts';
import { type Handler, type RequestOptions, type ServeOptions, request, serve } from './reqres.ts';

export type Verdict = 'accept' | 'ignore' | 'reject';

export interface Transport {
  readonly self: string;
  serve(protocol: string, handler: (req: Uint8Array, from: string) => Promise<Uint8Array>, opts: Omit<ServeOptions, 'onError'> & { onError?: (from: string, e: Error) => void }): Promise<void>;
  request(to: string, protocol: string, body: Uint8Array, opts: RequestOptions): Promise<Uint8Array>;
  /** Gossip (miners): publish, and validate what arrives before it is forwarded. */
  publish(topic: string, data: Uint8Array): Promise<void>;
  subscribe(topic: string, validate: (from: string, data: Uint8Array) => Promise<Verdict>): void;
  ping(to: string, timeoutMs: number): Promise<number>;
  connections(): string[];
  hangUp(peer: string): Promise<void>;
  /** Called for every new connection; returns an unsubscribe function. */
  onConnect(f: (peer: string) => void): () => void;
  /** Called when the last connection to a peer closed (optional: the simulator has none). */
  onDisconnect?(f: (peer: string) => void): () => void;
  /** The IP address a connected peer reaches us from (penalties of outsiders are keyed by it). */
  remoteAddress?(peer: string): string | undefined;
  /** Drop what the transport keeps about a disconnected peer (libp2p's peer store). */
  forget?(peer: string): Promise<void>;
}

const VERDICT: Record<Verdict, TopicValidatorResult> = { accept: TopicValidatorResult.Accept, ignore: TopicValidatorResult.Ignore, reject: TopicValidatorResult.Reject };

export class Libp2pTransport implements Transport {
  readonly node: P2PNode;

  constructor(node: P2PNode) {
    this.node = node;
  }

  get self(): string {
    return this.node.peerId.toString();
  }

  async serve(protocol: string, handler: (req: Uint8Array, from: string) => Promise<Uint8Array>, opts: Omit<ServeOptions, 'onError'> & { onError?: (from: string, e: Error) => void }): Promise<void> {
    const h: Handler = (req, peer) => handler(req, peer.toString());
    await serve(this.node, protocol, h, { ...opts, onError: opts.onError && ((peer, e) => opts.onError!(peer.toString(), e)) });
  }

  request(to: string, protocol: string, body: Uint8Array, opts: RequestOptions): Promise<Uint8Array> {
    return request(this.node, peerIdFromString(to), protocol, body, opts);
  }

  async publish(topic: string, data: Uint8Array): Promise<void> {
    await this.node.services.pubsub!.publish(topic, data);
  }

  subscribe(topic: string, validate: (from: string, data: Uint8Array) => Promise<Verdict>): void {
    const pubsub = this.node.services.pubsub!;
    pubsub.topicValidators.set(topic, async (peer, msg) => VERDICT[await validate(peer.toString(), msg.data)]);
    pubsub.subscribe(topic);
  }

  ping(to: string, timeoutMs: number): Promise<number> {
    return this.node.services.ping.ping(peerIdFromString(to), { signal: AbortSignal.timeout(timeoutMs) });
  }

  connections(): string[] {
    return [...new Set(this.node.getConnections().map((c) => c.remotePeer.toString()))];
  }

  async hangUp(peer: string): Promise<void> {
    await this.node.hangUp(peerIdFromString(peer));
  }

  onConnect(f: (peer: string) => void): () => void {
    const listener = (e: CustomEvent<{ toString(): string }>) => f(e.detail.toString());
    this.node.addEventListener('peer:connect', listener);
    return () => this.node.removeEventListener('peer:connect', listener);
  }

  onDisconnect(f: (peer: string) => void): () => void {
    const listener = (e: CustomEvent<{ toString(): string }>) => f(e.detail.toString());
    this.node.addEventListener('peer:disconnect', listener);
    return () => this.node.removeEventListener('peer:disconnect', listener);
  }

  remoteAddress(peer: string): string | undefined {
    const c = this.node.getConnections(peerIdFromString(peer))[0];
    return c ? ipOf(c.remoteAddr) : undefined;
  }

  async forget(peer: string): Promise<void> {
    const id = peerIdFromString(peer);
    // it may have reconnected meanwhile: identify has just written its record again
    if (this.node.getConnections(id).length === 0) await this.node.peerStore.delete(id);
  }
}
