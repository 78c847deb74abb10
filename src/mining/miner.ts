/**
 * Proof-of-work search behind one interface (STYLE.md habits 7 and 8): an in-thread miner for
 * tests and a pool of worker threads for the daemon. Both stop at once when aborted (a better
 * tip arrived), report hashes tried, and drop stale solutions.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { type WorkerHeap, workersHeap } from '../util/worker-heap.ts';
import { encodeHeaderPrefix } from '../core/encoding.ts';
import { PowSearcher } from '../core/pow.ts';
import type { BlockHeader } from '../core/types.ts';
import { WasmPowSearcher } from './pow-wasm.ts';

export interface MineResult {
  header: BlockHeader;
  hashes: number;
  ms: number;
}

export interface PowMiner {
  /** Resolves with the solved header, or null when aborted. */
  mine(header: BlockHeader, signal?: AbortSignal): Promise<MineResult | null>;
  /** Hashes per second over the last completed or aborted job. */
  readonly hashRate: number;
  close(): Promise<void>;
}

/** Nonces per slice between checks of the abort flag: ~11 ms at 6 M hashes/s, ~35 ms at 2 M/s. */
export const SLICE = 1 << 16;

/**
 * 'wasm': the WebAssembly SIMD search (src/mining/pow-wasm.ts) where the engine has SIMD and
 * the header is under 120 bytes, else the JS one; 'js': the JS reference (src/core/pow.ts).
 * Both find the same nonce; the WebAssembly one measured 3-6 × faster (`bfl-node bench pow`).
 */
export type PowEngine = 'wasm' | 'js';

/** A searcher for one header: the WebAssembly one when asked for and applicable. */
export function powSearcher(header: BlockHeader, engine: PowEngine = 'wasm'): { search(start: number, count: number): { nonce: number } | null } {
  const prefix = encodeHeaderPrefix(header);
  return (engine === 'wasm' && WasmPowSearcher.create(prefix, header.difficulty)) || new PowSearcher(prefix, header.difficulty);
}

export class InThreadMiner implements PowMiner {
  hashRate = 0;
  readonly engine: PowEngine;

  constructor(opts: { engine?: PowEngine } = {}) {
    this.engine = opts.engine ?? 'wasm';
  }

  async mine(header: BlockHeader, signal?: AbortSignal): Promise<MineResult | null> {
    const searcher = powSearcher(header, this.engine);
    const t0 = performance.now();
    let hashes = 0;
    for (let start = header.nonce; ; start += SLICE) {
      if (signal?.aborted) break;
      const sol = searcher.search(start, SLICE);
      if (sol) {
        hashes += sol.nonce - start + 1;
        const ms = performance.now() - t0;
        this.hashRate = (hashes / ms) * 1000;
        return { header: { ...header, nonce: sol.nonce }, hashes, ms };
      }
      hashes += SLICE;
      await new Promise((r) => setImmediate(r)); // let the event loop (and an abort) in
    }
    this.hashRate = (hashes / (performance.now() - t0)) * 1000;
    return null;
  }

  async close(): Promise<void> {}
}

export interface WorkerMinerOptions {
  /** Default: one per core. Mining is the only CPU-bound work of an idle miner. */
  workers?: number;
  /** Default 'wasm' (falls back to 'js' where it cannot run): the faster one. */
  engine?: PowEngine;
}

/** Each worker searches its own nonce range: worker i starts at i · 2^44 (safe up to 512 workers). */
const RANGE = 2 ** 44;

export class WorkerMinerPool implements PowMiner {
  readonly workers: number;
  readonly engine: PowEngine;
  hashRate = 0;
  private readonly threads: Worker[] = [];
  /** ctrl[0]: the job the workers may work on; counters[i]: hashes tried by worker i. */
  private readonly ctrl: Int32Array;
  private readonly counters: Float64Array;
  private jobId = 0;
  private closed = false;
  private current?: (r: { worker: number; nonce: number } | null) => void;

  constructor(opts: WorkerMinerOptions = {}) {
    this.workers = opts.workers ?? availableParallelism();
    this.engine = opts.engine ?? 'wasm';
    this.ctrl = new Int32Array(new SharedArrayBuffer(4));
    this.counters = new Float64Array(new SharedArrayBuffer(8 * this.workers));
    for (let i = 0; i < this.workers; i++) {
      const w = new Worker(new URL('./worker.ts', import.meta.url), { workerData: { index: i, ctrl: this.ctrl, counters: this.counters, engine: this.engine } });
      w.on('message', (m: { jobId: number; nonce: number }) => {
        if (m.jobId === this.jobId && this.current) this.current({ worker: i, nonce: m.nonce });
      });
      w.unref();
      this.threads.push(w);
    }
  }

  /** Total hashes tried by all workers since the pool started. */
  totalHashes(): number {
    let n = 0;
    for (let i = 0; i < this.workers; i++) n += this.counters[i];
    return n;
  }

  async mine(header: BlockHeader, signal?: AbortSignal): Promise<MineResult | null> {
    if (signal?.aborted) return null;
    this.stop(); // a previous job, if any, is stale now
    const jobId = ++this.jobId;
    Atomics.store(this.ctrl, 0, jobId);
    const before = this.totalHashes();
    const t0 = performance.now();
    const prefix = encodeHeaderPrefix(header);
    let mine: ((r: { worker: number; nonce: number } | null) => void) | undefined;
    const found = await new Promise<{ worker: number; nonce: number } | null>((resolve) => {
      this.current = mine = resolve;
      const onAbort = () => resolve(null);
      signal?.addEventListener('abort', onAbort, { once: true });
      for (let i = 0; i < this.workers; i++) {
        this.threads[i].postMessage({ jobId, prefix, difficulty: header.difficulty.toString(), start: header.nonce + i * RANGE });
      }
    });
    if (this.jobId === jobId) Atomics.store(this.ctrl, 0, 0); // stop the others
    // A newer job may have installed its own resolver meanwhile: clear only ours.
    if (this.current === mine) this.current = undefined;
    const ms = performance.now() - t0;
    const hashes = this.totalHashes() - before;
    this.hashRate = ms > 0 ? (hashes / ms) * 1000 : 0;
    if (!found) return null;
    return { header: { ...header, nonce: found.nonce }, hashes, ms };
  }

  /** The workers' V8 heaps together (used bytes and external memory), for
   * bfl_worker_memory_bytes; undefined once closed. A worker answers while it searches: V8 serves
   * the request at the search loop's interrupt checks. */
  async heapStatistics(): Promise<WorkerHeap | undefined> {
    return this.closed ? undefined : workersHeap(this.threads);
  }

  private stop(): void {
    Atomics.store(this.ctrl, 0, 0);
    this.current?.(null);
    this.current = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stop();
    await Promise.all(this.threads.map((t) => t.terminate()));
  }
}
