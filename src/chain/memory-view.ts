/** An in-memory ChainView: replaying a chain (chain verify) and tests. */
import { toHex } from '../core/bytes.ts';
import type { Block } from '../core/types.ts';
import type { ChainState, ChainView } from '../core/validation.ts';

export class MemoryChainView implements ChainView {
  private readonly states = new Map<string, ChainState>();
  private readonly records = new Map<string, Uint8Array[]>();
  private readonly models = new Map<string, Uint8Array[]>();

  add(block: Block, state: ChainState): void {
    this.states.set(toHex(state.hash), state);
    for (const tx of block.txs) {
      if (tx.type === 'record') push(this.records, `${tx.clientId}:${toHex(tx.updateDigest)}`, state.hash);
      if (tx.type === 'aggregation') push(this.models, toHex(tx.modelHash), state.hash);
    }
  }

  async getState(hash: Uint8Array): Promise<ChainState | undefined> {
    return this.states.get(toHex(hash));
  }

  async blocksWithRecord(clientId: string, digest: Uint8Array): Promise<Uint8Array[]> {
    return this.records.get(`${clientId}:${toHex(digest)}`) ?? [];
  }

  async blocksWithModel(modelHash: Uint8Array): Promise<Uint8Array[]> {
    return this.models.get(toHex(modelHash)) ?? [];
  }

  async isAncestor(ancestor: Uint8Array, of: Uint8Array): Promise<boolean> {
    const a = toHex(ancestor);
    const target = this.states.get(a);
    let cur = this.states.get(toHex(of));
    if (!target) return false;
    while (cur && cur.height > target.height) cur = this.states.get(toHex(cur.parentHash));
    return !!cur && toHex(cur.hash) === a;
  }
}

function push(m: Map<string, Uint8Array[]>, k: string, v: Uint8Array): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}
