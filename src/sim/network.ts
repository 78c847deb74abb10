/**
 * An in-process network for the simulator, behind the same Transport interface as libp2p:
 * miners form a full mesh (the edge backhaul); a client reaches a miner while the mobility
 * model puts it in the miner's coverage. Every message takes virtual time (latency grows with
 * the client's distance); requests run the receiver's real handler; gossip is flooded with
 * validation before forwarding and a seen cache per node, as gossipsub does.
 */
import { createHash } from 'node:crypto';
import { isBflError } from '../core/errors.ts';
import type { Clock } from '../util/clock.ts';
import { RemoteError } from '../net/remote-error.ts';
import type { RequestOptions, ServeOptions } from '../net/reqres.ts';
import type { Transport, Verdict } from '../net/transport.ts';
import type { Mobility } from './mobility.ts';

export interface SimNetworkOptions {
  /** One-way latency between miners, ms. */
  backhaulMs: number;
  /** One-way latency of a client at distance 0 and added per 100 m, ms. */
  radioMs: number;
  radioPer100mMs: number;
}

export const defaultSimNetwork: SimNetworkOptions = { backhaulMs: 10, radioMs: 5, radioPer100mMs: 5 };

type Handler = (req: Uint8Array, from: string) => Promise<Uint8Array>;

interface SimNode {
  id: string; // the PeerId-like name
  kind: 'miner' | 'client';
  index: number; // miner or client index for the mobility model
  handlers: Map<string, { handler: Handler; opts: Omit<ServeOptions, 'onError'> & { onError?: (from: string, e: Error) => void } }>;
  validators: Map<string, (from: string, data: Uint8Array) => Promise<Verdict>>;
  seen: Set<string>;
  connectHandlers: ((peer: string) => void)[];
  links: Set<string>; // peers it has "connected" to (onConnect fired)
}

export class SimNetwork {
  readonly clock: Clock;
  private readonly o: SimNetworkOptions;
  private readonly mobility?: Mobility;
  private readonly nodes = new Map<string, SimNode>();
  /** Messages delivered, by kind (for reports). */
  readonly counters = { requests: 0, gossip: 0, unreachable: 0 };

  constructor(clock: Clock, o: SimNetworkOptions = defaultSimNetwork, mobility?: Mobility) {
    this.clock = clock;
    this.o = o;
    this.mobility = mobility;
  }

  add(id: string, kind: 'miner' | 'client', index: number): SimTransport {
    this.nodes.set(id, { id, kind, index, handlers: new Map(), validators: new Map(), seen: new Set(), connectHandlers: [], links: new Set() });
    return new SimTransport(this, id);
  }

  node(id: string): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  reachable(a: string, b: string): boolean {
    const x = this.node(a);
    const y = this.node(b);
    if (x.kind === 'miner' && y.kind === 'miner') return true;
    if (x.kind === 'client' && y.kind === 'client') return false;
    if (!this.mobility) return true;
    const [c, m] = x.kind === 'client' ? [x, y] : [y, x];
    return this.mobility.inRange(c.index, m.index, this.clock.now());
  }

  latency(a: string, b: string): number {
    const x = this.node(a);
    const y = this.node(b);
    if (x.kind === 'miner' && y.kind === 'miner') return this.o.backhaulMs;
    const [c, m] = x.kind === 'client' ? [x, y] : [y, x];
    const d = this.mobility ? this.mobility.distance(c.index, m.index, this.clock.now()) : 0;
    return this.o.radioMs + (d / 100) * this.o.radioPer100mMs;
  }

  peersOf(id: string): string[] {
    return [...this.nodes.keys()].filter((p) => p !== id && this.reachable(id, p));
  }

  /** Tell both ends of every currently reachable pair that they are connected (PeerBook hello). */
  refreshLinks(): void {
    for (const n of this.nodes.values()) {
      for (const p of this.peersOf(n.id)) {
        if (n.links.has(p)) continue;
        n.links.add(p);
        for (const f of n.connectHandlers) f(p);
      }
    }
  }

  flood(from: string, origin: string, topic: string, data: Uint8Array): void {
    const id = topic + createHash('sha256').update(data).digest('hex');
    this.node(from).seen.add(id);
    for (const p of this.peersOf(from)) {
      const to = this.node(p);
      const validate = to.validators.get(topic);
      if (!validate || to.seen.has(id)) continue;
      this.clock.spawn(async () => {
        await this.clock.sleep(this.latency(from, p));
        if (to.seen.has(id)) return;
        to.seen.add(id);
        this.counters.gossip++;
        if ((await validate(from, data)) === 'accept') this.flood(p, origin, topic, data);
      });
    }
  }
}

export class SimTransport implements Transport {
  readonly self: string;
  private readonly net: SimNetwork;

  constructor(net: SimNetwork, self: string) {
    this.net = net;
    this.self = self;
  }

  async serve(protocol: string, handler: Handler, opts: Omit<ServeOptions, 'onError'> & { onError?: (from: string, e: Error) => void }): Promise<void> {
    this.net.node(this.self).handlers.set(protocol, { handler, opts });
  }

  async request(to: string, protocol: string, body: Uint8Array, opts: RequestOptions): Promise<Uint8Array> {
    const clock = this.net.clock;
    if (!this.net.reachable(this.self, to)) {
      this.net.counters.unreachable++;
      await clock.sleep(Math.min(opts.timeoutMs, 1000));
      throw new Error(`${to} is unreachable`);
    }
    await clock.sleep(this.net.latency(this.self, to));
    const h = this.net.node(to).handlers.get(protocol);
    if (!h) throw new Error(`${to} does not serve ${protocol}`);
    this.net.counters.requests++;
    let res: Uint8Array;
    try {
      if (body.length > h.opts.maxRequestBytes) throw new RemoteError('OVERSIZED', `request exceeds ${h.opts.maxRequestBytes} bytes`);
      res = await h.handler(body, this.self);
    } catch (e) {
      h.opts.onError?.(this.self, e as Error);
      if (e instanceof RemoteError) throw e;
      throw new RemoteError(isBflError(e) ? e.code : 'INTERNAL', (e as Error).message);
    }
    await clock.sleep(this.net.latency(this.self, to));
    if (res.length > opts.maxResponseBytes) throw new Error(`response of ${res.length} bytes exceeds ${opts.maxResponseBytes}`);
    return res;
  }

  async publish(topic: string, data: Uint8Array): Promise<void> {
    this.net.flood(this.self, this.self, topic, data);
  }

  subscribe(topic: string, validate: (from: string, data: Uint8Array) => Promise<Verdict>): void {
    this.net.node(this.self).validators.set(topic, validate);
  }

  async ping(to: string, timeoutMs: number): Promise<number> {
    const clock = this.net.clock;
    if (!this.net.reachable(this.self, to)) {
      await clock.sleep(Math.min(timeoutMs, 1000));
      throw new Error(`${to} is unreachable`);
    }
    const rtt = 2 * this.net.latency(this.self, to);
    await clock.sleep(rtt);
    return rtt;
  }

  connections(): string[] {
    return this.net.peersOf(this.self);
  }

  async hangUp(): Promise<void> {
    // a penalised peer: nothing to close in-process; the PeerBook refuses it
  }

  onConnect(f: (peer: string) => void): () => void {
    const n = this.net.node(this.self);
    n.connectHandlers.push(f);
    return () => {
      n.connectHandlers = n.connectHandlers.filter((x) => x !== f);
    };
  }
}
