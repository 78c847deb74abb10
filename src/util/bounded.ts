/**
 * A bounded map for the node's caches and tables (the peer book's ledgers and budgets, the chain
 * store's caches): whatever a flood or a long-running chain does, it holds at most `max` entries.
 */

/** A map that forgets its least recently used entries beyond `max` (Map keeps insertion order). */
export class Bounded<V> {
  private readonly m = new Map<string, V>();
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  get(k: string): V | undefined {
    const v = this.m.get(k);
    if (v !== undefined) {
      this.m.delete(k);
      this.m.set(k, v);
    }
    return v;
  }

  peek(k: string): V | undefined {
    return this.m.get(k);
  }

  set(k: string, v: V): void {
    this.m.delete(k);
    this.m.set(k, v);
    while (this.m.size > this.max) this.m.delete(this.m.keys().next().value!);
  }

  delete(k: string): void {
    this.m.delete(k);
  }

  get size(): number {
    return this.m.size;
  }

  entries(): IterableIterator<[string, V]> {
    return this.m.entries();
  }
}
