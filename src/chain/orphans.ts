/**
 * Blocks whose parent we do not have yet. Bounded in count and bytes, entries expire: a peer
 * cannot fill our memory with blocks that never connect. Nothing here is persisted (nothing in
 * it was validated or acknowledged).
 */
import { toHex } from '../core/bytes.ts';
import type { Block } from '../core/types.ts';

export interface OrphanPoolOptions {
  maxBlocks: number;
  maxBytes: number;
  ttlMs: number;
}

// A few reorgs' worth of blocks; each block is at most maxBlockBytes (a few MiB).
export const defaultOrphanPoolOptions: OrphanPoolOptions = { maxBlocks: 64, maxBytes: 128 * 1024 * 1024, ttlMs: 10 * 60_000 };

interface Entry {
  hash: string;
  parent: string;
  block: Block;
  bytes: number;
  addedAt: number;
}

export class OrphanPool {
  private readonly opts: OrphanPoolOptions;
  private readonly byHash = new Map<string, Entry>(); // insertion order = age
  private readonly byParent = new Map<string, Set<string>>();
  private totalBytes = 0;

  constructor(opts: Partial<OrphanPoolOptions> = {}) {
    this.opts = { ...defaultOrphanPoolOptions, ...opts };
  }

  get size(): number {
    return this.byHash.size;
  }

  has(hash: string): boolean {
    return this.byHash.has(hash);
  }

  add(hash: string, block: Block, bytes: number, now: number): void {
    if (this.byHash.has(hash) || bytes > this.opts.maxBytes) return;
    this.prune(now);
    while (this.byHash.size >= this.opts.maxBlocks || this.totalBytes + bytes > this.opts.maxBytes) {
      this.remove(this.byHash.keys().next().value!);
    }
    const parent = toHex(block.header.prevHash);
    this.byHash.set(hash, { hash, parent, block, bytes, addedAt: now });
    this.totalBytes += bytes;
    let kids = this.byParent.get(parent);
    if (!kids) this.byParent.set(parent, (kids = new Set()));
    kids.add(hash);
  }

  /** Remove and return the orphans whose parent is `parent`. */
  takeChildren(parent: string, now: number): Block[] {
    this.prune(now);
    const kids = this.byParent.get(parent);
    if (!kids) return [];
    const out: Block[] = [];
    for (const h of [...kids]) {
      out.push(this.byHash.get(h)!.block);
      this.remove(h);
    }
    return out;
  }

  prune(now: number): void {
    for (const e of this.byHash.values()) {
      if (now - e.addedAt <= this.opts.ttlMs) break; // insertion order: the rest are newer
      this.remove(e.hash);
    }
  }

  private remove(hash: string): void {
    const e = this.byHash.get(hash);
    if (!e) return;
    this.byHash.delete(hash);
    this.totalBytes -= e.bytes;
    const kids = this.byParent.get(e.parent);
    kids?.delete(hash);
    if (kids && kids.size === 0) this.byParent.delete(e.parent);
  }
}
