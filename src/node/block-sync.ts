/**
 * Block sync, a service of the miner: validates block announcements (gossip: header, proof of
 * work, admission, size; the body is pulled from the announcer), stores peers' blocks
 * (penalising invalid ones), and catches up with peers that have more work: every
 * `syncIntervalMs` with a random connected miner (announcements can be missed), and at once
 * when a block arrives whose parent we lack.
 */
import { toHex } from '../core/bytes.ts';
import { isBetterTip } from '../core/chain.ts';
import { blockHash } from '../core/encoding.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import { meetsTarget } from '../core/pow.ts';
import type { ChainStore } from '../chain/store.ts';
import type { NetworkConfig } from '../config/network.ts';
import { decodeBlockAnnouncement, decodeHashes, decodeHead, encodeChainRequest } from '../net/messages.ts';
import type { PeerBook } from '../net/peer-book.ts';
import { protocols, topics } from '../net/protocols.ts';
import type { Transport, Verdict } from '../net/transport.ts';
import type { Clock } from '../util/clock.ts';
import type { Logger } from '../util/logger.ts';
import type { Verdicts } from './verdicts.ts';

export interface BlockSyncInit {
  config: NetworkConfig;
  /** How often to compare heads with a peer (catches blocks whose announcement we missed). */
  syncIntervalMs: number;
}

export interface BlockSyncComponents {
  store: ChainStore;
  transport: Transport;
  peers: PeerBook;
  verdicts: Verdicts;
  clock: Clock;
  logger: Logger;
}

export class BlockSync {
  private readonly init: BlockSyncInit;
  private readonly c: BlockSyncComponents;
  private running = false;
  private syncing = false;
  private loop?: Promise<void>;
  private readonly stopSignal = new AbortController();

  constructor(init: BlockSyncInit, c: BlockSyncComponents) {
    this.init = init;
    this.c = c;
  }

  private spawn(task: () => Promise<unknown>, what: string): void {
    this.c.clock.spawn(task, (e) => this.c.logger.debug({ err: (e as Error).message }, `${what} failed`));
  }

  async start(): Promise<void> {
    this.running = true;
    this.c.transport.subscribe(topics(this.init.config.networkId).blocks, (peer, data) => this.c.verdicts.gossip('blocks', peer, () => this.checkAnnouncement(peer, data)));
    this.loop = this.c.clock.run(() => this.syncEvery());
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopSignal.abort();
    await this.c.clock.suspend(this.loop ?? Promise.resolve());
  }

  private async checkAnnouncement(peer: string, data: Uint8Array): Promise<Verdict> {
    const { store, peers } = this.c;
    const a = decodeBlockAnnouncement(data);
    const hash = blockHash(a.header);
    const who = await peers.identify(peer);
    if (who?.role !== 'miner') return 'ignore';
    if (await store.getState(hash)) return 'ignore';
    const p = store.params;
    if (a.header.difficulty !== p.difficulty || !meetsTarget(hash, p.difficulty)) throw new BflError(ErrorCode.BAD_POW, 'announced block header fails proof of work');
    if (!store.membership.ofRole(a.header.minerId, 'miner')) throw new BflError(ErrorCode.UNKNOWN_MINER, `block from unknown miner ${a.header.minerId}`);
    if (a.blockBytes > p.maxBlockBytes) throw new BflError(ErrorCode.OVERSIZED, `announced block of ${a.blockBytes} bytes`);
    this.spawn(() => this.fetchBlock(hash, peer), 'block fetch');
    return 'accept';
  }

  private async chainRequest(peer: string, body: Uint8Array): Promise<Uint8Array> {
    const { config } = this.init;
    return this.c.transport.request(peer, protocols(config.networkId).chain, body, { maxResponseBytes: this.c.store.params.maxBlockBytes + 1024, timeoutMs: config.p2p.requestTimeoutMs });
  }

  private async fetchBlock(hash: Uint8Array, peer: string): Promise<void> {
    try {
      const bytes = await this.chainRequest(peer, encodeChainRequest({ kind: 'block', hash }));
      await this.addPeerBlock(bytes, peer);
    } catch (e) {
      this.c.logger.debug({ err: (e as Error).message }, 'block fetch failed');
    }
  }

  /** Validate and store a block from a peer; penalise provable misbehaviour. */
  async addPeerBlock(bytes: Uint8Array, peer: string): Promise<void> {
    try {
      const res = await this.c.store.addBlock(bytes);
      if (res.status === 'orphan') this.spawn(() => this.syncWith(peer), 'sync');
    } catch (e) {
      this.c.verdicts.refused(peer, 'block', e, 'warn');
      throw e;
    }
  }

  private async syncEvery(): Promise<void> {
    while (this.running) {
      await this.c.clock.sleep(this.init.syncIntervalMs, this.stopSignal.signal);
      if (!this.running) break;
      const miners = this.c.peers.connectedMiners();
      if (miners.length > 0) await this.syncWith(miners[Math.floor(Math.random() * miners.length)].peer);
    }
  }

  /** Catch up with a peer that has more work: find the fork point by hashes, then fetch blocks in order. */
  async syncWith(peer: string): Promise<void> {
    if (this.syncing) return;
    this.syncing = true;
    const { store } = this.c;
    try {
      const head = decodeHead(await this.chainRequest(peer, encodeChainRequest({ kind: 'head' })));
      if (!isBetterTip(head, store.tip) || (await store.getState(head.hash))) return;
      let from = Math.max(0, Math.min(store.tip.height, head.height) - 16);
      let missing: Uint8Array[] = [];
      for (;;) {
        const hashes = decodeHashes(await this.chainRequest(peer, encodeChainRequest({ kind: 'hashes', from, count: 512 })));
        let first = -1;
        for (let i = 0; i < hashes.length; i++) {
          if (!(await store.getState(hashes[i]))) {
            first = i;
            break;
          }
        }
        if (first === 0 && from > 0) {
          from = Math.max(0, from - 512); // the fork is further back
          continue;
        }
        if (first >= 0) missing = hashes.slice(first);
        if (first === -1 && hashes.length === 512) {
          from += 512;
          continue;
        }
        break;
      }
      this.c.logger.info({ peer: this.c.peers.info(peer)?.memberId, blocks: missing.length, theirHeight: head.height }, 'syncing');
      for (const h of missing) {
        if (await store.getState(h)) continue;
        await this.addPeerBlock(await this.chainRequest(peer, encodeChainRequest({ kind: 'block', hash: h })), peer);
      }
    } catch (e) {
      this.c.logger.debug({ err: (e as Error).message, tip: toHex(store.tip.hash).slice(0, 16) }, 'sync failed');
    } finally {
      this.syncing = false;
    }
  }
}

/** libp2p-style factory: `blockSync(init)(components)`. */
export function blockSync(init: BlockSyncInit): (c: BlockSyncComponents) => BlockSync {
  return (c) => new BlockSync(init, c);
}
