import type { Worker } from 'node:worker_threads';

/** What bfl_worker_memory_bytes reports of a group of worker threads. */
export interface WorkerHeap {
  /** V8 heap in use, summed over the threads. */
  heapUsed: number;
  /** Memory outside the V8 heap that it accounts for (ArrayBuffers among it), summed. */
  external: number;
}

/** The threads' V8 heaps together. A busy thread answers at its next interrupt check (measured:
 * 0.1-0.4 ms in the middle of a proof-of-work search). */
export async function workersHeap(workers: readonly Worker[]): Promise<WorkerHeap> {
  const all = await Promise.all(workers.map((w) => w.getHeapStatistics()));
  return { heapUsed: all.reduce((n, h) => n + h.used_heap_size, 0), external: all.reduce((n, h) => n + h.external_memory, 0) };
}
