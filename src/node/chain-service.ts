/**
 * The chain service, our `chain` request/response protocol (in libp2p's service shape: an init
 * object, the narrow components it needs, a factory, start/stop): the head, blocks by hash,
 * canonical hashes by height (syncing miners), the newest global model after a client's anchor
 * (the anchor jump), reward balances, the miner's load (association policies, issue 17) and
 * aggregator states (a syncing miner's first state: issue 13, item 2).
 */
import { Writer, equalBytes, toHex } from '../core/bytes.ts';
import { aggregationTxOf } from '../core/chain.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import type { ChainStore } from '../chain/store.ts';
import { type MinerLoad, decodeChainRequest, encodeHashes, encodeHead, encodeMinerLoad, encodeModelAfter } from '../net/messages.ts';
import { protocols } from '../net/protocols.ts';
import type { Transport } from '../net/transport.ts';

export interface ChainServiceInit {
  networkId: string;
  timeoutMs: number;
}

export interface ChainServiceComponents {
  store: ChainStore;
  transport: Transport;
  /** The miner's current load (the `load` request); absent: the request is refused NOT_FOUND. */
  load?: () => MinerLoad;
}

export class ChainService {
  private readonly init: ChainServiceInit;
  private readonly c: ChainServiceComponents;

  constructor(init: ChainServiceInit, c: ChainServiceComponents) {
    this.init = init;
    this.c = c;
  }

  async start(): Promise<void> {
    await this.c.transport.serve(protocols(this.init.networkId).chain, (req) => this.handle(req), { maxRequestBytes: 1024, timeoutMs: this.init.timeoutMs });
  }

  async stop(): Promise<void> {}

  private async handle(req: Uint8Array): Promise<Uint8Array> {
    const q = decodeChainRequest(req);
    const { store } = this.c;
    const tip = store.tip;
    switch (q.kind) {
      case 'head':
        return encodeHead({ height: tip.height, hash: tip.hash, work: tip.work, rounds: tip.rounds, anchor: tip.anchor, modelHash: tip.modelHash });
      case 'block': {
        const b = await store.getBlockBytes(q.hash);
        if (!b) throw new BflError(ErrorCode.NOT_FOUND, `no block ${toHex(q.hash)}`, { action: 'IGNORE' });
        return b;
      }
      case 'hashes': {
        const out: Uint8Array[] = [];
        for (let h = q.from; h < q.from + Math.min(q.count, 1024) && h <= tip.height; h++) out.push(Buffer.from((await store.hashAt(h))!, 'hex'));
        return encodeHashes(out);
      }
      case 'model-after': {
        // The chain state tracks the newest aggregation block (the anchor), so the client's
        // anchor jump reads one block, whatever the distance from its saved anchor.
        const newer = !equalBytes(q.anchor, tip.anchor);
        const block = (await store.getBlock(tip.anchor))!;
        const agg = aggregationTxOf(block);
        if (!agg) throw new BflError(ErrorCode.STORE_CORRUPT, 'anchor block has no aggregation');
        return encodeModelAfter({ newer, blockHash: tip.anchor, height: block.header.height, round: agg.round, modelHash: agg.modelHash, model: newer ? agg.model : new Uint8Array(0) });
      }
      case 'balance':
        return new Writer(8).u64(await store.balance(q.id)).finish();
      case 'load':
        if (!this.c.load) throw new BflError(ErrorCode.NOT_FOUND, 'this node does not announce its load', { action: 'IGNORE' });
        return encodeMinerLoad(this.c.load());
      case 'state': {
        // canonical bytes as stored; the asker checks them against the block's stateHash
        const s = await store.aggregatorState(q.hash);
        if (!s) throw new BflError(ErrorCode.NOT_FOUND, `no aggregator state for block ${toHex(q.hash)}`, { action: 'IGNORE' });
        return s;
      }
    }
  }
}

/** libp2p-style factory: `chainService(init)(components)`. */
export function chainService(init: ChainServiceInit): (c: ChainServiceComponents) => ChainService {
  return (c) => new ChainService(init, c);
}
