/**
 * The chain service, our `chain` request/response protocol (in libp2p's service shape: an init
 * object, the narrow components it needs, a factory, start/stop): the head, blocks by hash,
 * canonical hashes by height (syncing miners), the newest global model after a client's anchor
 * (the anchor jump), reward balances, the miner's load (association policies, issue 17) and
 * aggregator states (a syncing miner's first state: issue 13, item 2). Served to admitted
 * members only, within their budgets; the global model's response is encoded once per anchor
 * and reused (issue 13, item 7: an outsider pulling models in a loop made every request decode
 * a block and re-encode 636 KB).
 */
import { Writer, equalBytes, toHex } from '../core/bytes.ts';
import { aggregationTxOf } from '../core/chain.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import type { ChainStore } from '../chain/store.ts';
import { type MinerLoad, decodeChainRequest, encodeHashes, encodeHead, encodeMinerLoad, encodeModelAfter } from '../net/messages.ts';
import { protocols } from '../net/protocols.ts';
import type { PeerBook } from '../net/peer-book.ts';
import type { Transport } from '../net/transport.ts';
import type { Verdicts } from './verdicts.ts';

export interface ChainServiceInit {
  networkId: string;
  timeoutMs: number;
}

export interface ChainServiceComponents {
  store: ChainStore;
  transport: Transport;
  /** Admission and budgets (members only); without it the service answers anyone (tools, tests). */
  peers?: Pick<PeerBook, 'admit' | 'charge' | 'member'>;
  verdicts?: Pick<Verdicts, 'refused'>;
  /** The miner's current load (the `load` request); absent: the request is refused NOT_FOUND. */
  load?: () => MinerLoad;
}

export class ChainService {
  private readonly init: ChainServiceInit;
  private readonly c: ChainServiceComponents;
  /** The encoded model-after response of the newest anchor (a new anchor replaces it). */
  private model?: { anchor: string; newer: Uint8Array; same: Uint8Array };

  constructor(init: ChainServiceInit, c: ChainServiceComponents) {
    this.init = init;
    this.c = c;
  }

  async start(): Promise<void> {
    const { peers, verdicts } = this.c;
    await this.c.transport.serve(
      protocols(this.init.networkId).chain,
      async (req, peer) => {
        await peers?.admit(peer, 'chain');
        const res = await this.handle(req);
        peers?.charge(peer, res.length);
        return res;
      },
      { maxRequestBytes: 1024, timeoutMs: this.init.timeoutMs, gate: peers && ((peer) => peers.member(peer)), onError: verdicts && ((peer, e) => verdicts.refused(peer, 'chain', e, 'debug')) },
    );
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
        const anchor = toHex(tip.anchor);
        if (this.model?.anchor !== anchor) {
          const block = (await store.getBlock(tip.anchor))!;
          const agg = aggregationTxOf(block);
          if (!agg) throw new BflError(ErrorCode.STORE_CORRUPT, 'anchor block has no aggregation');
          const m = { blockHash: tip.anchor, height: block.header.height, round: agg.round, modelHash: agg.modelHash };
          this.model = { anchor, newer: encodeModelAfter({ ...m, newer: true, model: agg.model }), same: encodeModelAfter({ ...m, newer: false, model: new Uint8Array(0) }) };
        }
        return newer ? this.model.newer : this.model.same;
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
