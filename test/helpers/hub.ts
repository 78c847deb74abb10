/**
 * An in-memory network of Transports for unit tests of the peer book and the services behind
 * it: handlers (and their gates) called directly, connections and addresses explicit.
 */
import type { Transport } from '../../src/net/transport.ts';
import type { Clock } from '../../src/util/clock.ts';

/** An in-memory network of Transports: handlers called directly, connections and addresses explicit. */
export class Hub {
  readonly nodes = new Map<string, HubTransport>();
  connect(a: string, b: string) {
    this.nodes.get(a)!.linked.add(b);
    this.nodes.get(b)!.linked.add(a);
    for (const [x, y] of [[a, b], [b, a]]) for (const f of this.nodes.get(x)!.connectFns) f(y);
  }
  /** The last connection between a and b closed (hangUp alone does not tell the peer books). */
  disconnect(a: string, b: string) {
    this.nodes.get(a)!.linked.delete(b);
    this.nodes.get(b)!.linked.delete(a);
    for (const [x, y] of [[a, b], [b, a]]) for (const f of this.nodes.get(x)!.disconnectFns) f(y);
  }
}

export class HubTransport implements Transport {
  readonly linked = new Set<string>();
  readonly connectFns: ((p: string) => void)[] = [];
  readonly handlers = new Map<string, (req: Uint8Array, from: string) => Promise<Uint8Array>>();
  readonly errors = new Map<string, (from: string, e: Error) => void>();
  readonly gates = new Map<string, (from: string) => Promise<unknown>>();
  hungUp: string[] = [];
  silent = false; // a peer that never answers a hello

  readonly hub: Hub;
  readonly self: string;
  readonly ip: string;

  constructor(hub: Hub, self: string, ip: string) {
    this.hub = hub;
    this.self = self;
    this.ip = ip;
    hub.nodes.set(self, this);
  }

  async serve(protocol: string, handler: (req: Uint8Array, from: string) => Promise<Uint8Array>, opts: { onError?: (from: string, e: Error) => void; gate?: (from: string) => Promise<unknown> }) {
    this.handlers.set(protocol, handler);
    if (opts.onError) this.errors.set(protocol, opts.onError);
    if (opts.gate) this.gates.set(protocol, opts.gate);
  }

  async request(to: string, protocol: string, body: Uint8Array, opts: { timeoutMs: number }): Promise<Uint8Array> {
    const peer = this.hub.nodes.get(to)!;
    if (peer.silent) return new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), opts.timeoutMs));
    const h = peer.handlers.get(protocol);
    if (!h) throw new Error('protocol not supported');
    try {
      await peer.gates.get(protocol)?.(this.self); // as reqres.serve: before the request is read
      return await h(body, this.self);
    } catch (e) {
      peer.errors.get(protocol)?.(this.self, e as Error);
      throw e;
    }
  }

  async publish() {}
  subscribe() {}
  async ping() {
    return 1;
  }
  connections() {
    return [...this.linked];
  }
  async hangUp(peer: string) {
    this.hungUp.push(peer);
    this.linked.delete(peer);
    this.hub.nodes.get(peer)?.linked.delete(this.self);
  }
  onConnect(f: (peer: string) => void) {
    this.connectFns.push(f);
    return () => {};
  }
  forgotten: string[] = [];
  readonly disconnectFns: ((p: string) => void)[] = [];
  onDisconnect(f: (peer: string) => void) {
    this.disconnectFns.push(f);
    return () => {};
  }
  async forget(peer: string) {
    this.forgotten.push(peer);
  }
  remoteAddress(peer: string) {
    return this.linked.has(peer) ? this.hub.nodes.get(peer)!.ip : undefined;
  }
}

/** A clock whose time the test sets (sleep and spawn run on real timers: the waits here are short). */
export function testClock(): Clock & { t: number } {
  const c = {
    t: 1_000_000,
    now: () => c.t,
    sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, Math.min(ms, 20))),
    suspend: <T>(p: Promise<T>) => p,
    run: <T>(task: () => Promise<T>) => task(),
    spawn: (task: () => Promise<unknown>) => void task().catch(() => undefined),
  };
  return c;
}
