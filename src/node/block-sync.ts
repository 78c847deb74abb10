/**
 * Block sync, a service of the miner: validates block announcements (gossip: header, proof of
 * work, admission, size; the body is pulled from the announcer), stores peers' blocks
 * (penalising invalid ones), and catches up with peers that have more work: every
 * `syncIntervalMs` with a random connected miner (announcements can be missed), and at once
 * when a block arrives whose parent we lack.
 *
 * A miner that is far behind (new, or restarted with an empty datadir) fetches its peer's blocks
 * in order, each with the headers of the blocks built on it: the store accepts an aggregation
 * whose raw updates every miner has pruned on that work (store.ts, `assumeValidDepth`), and the
 * aggregator state after the last such aggregation comes from the peers, checked against the
 * block's stateHash (`PeerStateSource`). docs/decisions.md, "History validation".
 */
import { isBetterTip } from '../core/chain.ts';
import { equalBytes, toHex } from '../core/bytes.ts';
import { blockHash, decodeBlock } from '../core/encoding.ts';
import { sha256 } from '../core/hash.ts';
import type { BlockHeader } from '../core/types.ts';
import type { StateSource } from '../chain/aggregation.ts';
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

  /** Validate and store a block from a peer (with the headers of blocks built on it, if known); penalise provable misbehaviour. */
  async addPeerBlock(bytes: Uint8Array, peer: string, descendants?: BlockHeader[]): Promise<void> {
    try {
      const res = await this.c.store.addBlock(bytes, { descendants });
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

  /**
   * Catch up with a peer that has more work: find the fork point by hashes, list every block we
   * lack up to its head, then fetch them in order, each added with the headers of the (up to
   * `assumeValidDepth`) blocks fetched after it: a window of that many blocks in memory.
   */
  async syncWith(peer: string): Promise<void> {
    if (this.syncing) return;
    this.syncing = true;
    const { store } = this.c;
    try {
      const head = decodeHead(await this.chainRequest(peer, encodeChainRequest({ kind: 'head' })));
      if (!isBetterTip(head, store.tip) || (await store.getState(head.hash))) return;
      let from = Math.max(0, Math.min(store.tip.height, head.height) - 16);
      const missing: Uint8Array[] = [];
      while (from <= head.height) {
        const hashes = decodeHashes(await this.chainRequest(peer, encodeChainRequest({ kind: 'hashes', from, count: HASHES_PER_REQUEST })));
        if (missing.length > 0) missing.push(...hashes);
        else {
          let first = -1;
          for (let i = 0; i < hashes.length; i++) {
            if (!(await store.getState(hashes[i]))) {
              first = i;
              break;
            }
          }
          if (first === 0 && from > 0) {
            from = Math.max(0, from - HASHES_PER_REQUEST); // the fork is further back
            continue;
          }
          if (first >= 0) missing.push(...hashes.slice(first));
        }
        if (hashes.length < HASHES_PER_REQUEST || missing.length >= MAX_SYNC_BLOCKS) break;
        from += HASHES_PER_REQUEST;
      }
      this.c.logger.info({ peer: this.c.peers.info(peer)?.memberId, blocks: missing.length, theirHeight: head.height }, 'syncing');
      const depth = store.assumeValidDepth;
      const window: { bytes: Uint8Array; header: BlockHeader }[] = [];
      let next = 0;
      for (;;) {
        while (window.length <= depth && next < missing.length) {
          const bytes = await this.chainRequest(peer, encodeChainRequest({ kind: 'block', hash: missing[next++] }));
          window.push({ bytes, header: decodeBlock(bytes, store.params.maxBlockBytes).header });
        }
        const b = window.shift();
        if (!b) break;
        if (await store.getState(blockHash(b.header))) continue;
        await this.addPeerBlock(b.bytes, peer, window.map((w) => w.header));
      }
    } catch (e) {
      this.c.logger.debug({ err: (e as Error).message, tip: toHex(store.tip.hash).slice(0, 16) }, 'sync failed');
    } finally {
      this.syncing = false;
    }
  }
}

/** Hashes per `hashes` request (the chain service serves at most 1024). */
const HASHES_PER_REQUEST = 512;

/** Blocks listed per sync at most (3.2 MB of hashes; a peer's claimed head does not size our
 * memory): a longer chain takes several syncs, each continuing from our new tip. */
const MAX_SYNC_BLOCKS = 100_000;

/** A state is a few KB per client (BFL-MEC: a 1024-float64 sketch each); this only bounds memory. */
const MAX_STATE_BYTES = 64 << 20;

/**
 * Aggregator states from the connected miners (`chain` protocol, kind `state`): the first answer
 * that hashes to the block's stateHash. ChainAggregation checks the hash again.
 */
export class PeerStateSource implements StateSource {
  private readonly c: Pick<BlockSyncComponents, 'transport' | 'peers' | 'logger'>;
  private readonly init: Pick<BlockSyncInit, 'config'>;

  constructor(init: Pick<BlockSyncInit, 'config'>, c: Pick<BlockSyncComponents, 'transport' | 'peers' | 'logger'>) {
    this.init = init;
    this.c = c;
  }

  async get(blockHash: Uint8Array, stateHash: Uint8Array): Promise<Uint8Array | undefined> {
    const { config } = this.init;
    for (const { peer, memberId } of this.c.peers.connectedMiners()) {
      try {
        const s = await this.c.transport.request(peer, protocols(config.networkId).chain, encodeChainRequest({ kind: 'state', hash: blockHash }), { maxResponseBytes: MAX_STATE_BYTES, timeoutMs: config.p2p.requestTimeoutMs });
        if (equalBytes(sha256(s), stateHash)) return s;
        this.c.logger.warn({ peer: memberId, block: toHex(blockHash).slice(0, 16) }, 'aggregator state from a peer does not match the block');
      } catch (e) {
        this.c.logger.debug({ peer: memberId, err: (e as Error).message }, 'aggregator state fetch failed');
      }
    }
    return undefined;
  }
}

/** libp2p-style factory: `blockSync(init)(components)`. */
export function blockSync(init: BlockSyncInit): (c: BlockSyncComponents) => BlockSync {
  return (c) => new BlockSync(init, c);
}
