/**
 * The Gram (and squared-distance) matrix of the BFL-MEC scoring in WebAssembly SIMD
 * (assembly/gram.ts, built into gram.wasm beside this file by `npm run build:wasm`), on one
 * thread or split across worker threads. Both give exactly the bits of the reference,
 * pairwise() in src/core/aggregation/vectors.ts (per pair, per chunk of 512 coordinates, one
 * float64 accumulator in coordinate order, chunk sums added in chunk order); the property test
 * test/unit/gram-kernel.test.ts compares all three bit for bit. They are accelerators the
 * aggregation can be given (GramKernel); consensus code keeps the pure reference.
 *
 * Threads split the chunks, not the rows: thread t computes every pair's sum over the chunks it
 * claims into a matrix of its own per chunk, and the main thread adds those matrices onto the
 * result in chunk order, so who computed what never changes a bit. Chunks are claimed one at a
 * time from a shared counter: a thread that the OS (or other work on a shared machine) holds
 * back takes fewer, instead of holding up a fixed share.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { CHUNK, pairwise as referencePairwise, type GramKernel, type Vector } from '../core/aggregation/vectors.ts';

export interface GramExports {
  chunk(kind: number, vecs: number, n: number, dim: number, c: number, out: number, add: number): void;
  reduce(acc: number, parts: number, count: number, size: number): void;
}

let compiled: WebAssembly.Module | null | undefined;

/** The compiled kernel, or null when this engine cannot run it (no WebAssembly SIMD or threads). */
export function gramModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(readFileSync(new URL('./gram.wasm', import.meta.url)));
      instantiate(compiled, sharedMemory());
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

export function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): GramExports {
  return new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as GramExports;
}

const PAGE = 65536;
/** 4 GiB, all a 32-bit WebAssembly memory can address; shared memories need a maximum. */
const MAX_PAGES = 65536;
/** The module keeps no data in memory; the first page stays unused all the same. */
const BASE = PAGE;
/** Per-chunk partial matrices of one wave (threads only): bounds the extra memory. 32 MiB holds
 * all 311 chunks of 101 points × 159,010 (86 kB each), so the default size is one wave. */
const PART_BUDGET = 32 << 20;

export function sharedMemory(): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
}

interface Layout {
  n: number;
  nPad: number; // n rounded up to a multiple of 4 (the kernel's blocks); the extra rows are zero
  dim: number;
  chunks: number;
  vecs: number;
  acc: number;
  parts: number;
  waveChunks: number; // chunks per wave of partial matrices
  end: number;
}

function layout(n: number, dim: number, partBudget: number): Layout {
  const nPad = Math.ceil(n / 4) * 4;
  const chunks = Math.ceil(dim / CHUNK);
  const vecs = BASE;
  const acc = vecs + nPad * dim * 8;
  const matrix = nPad * nPad * 8;
  const parts = acc + matrix;
  const waveChunks = partBudget > 0 ? Math.max(1, Math.min(chunks, Math.floor(partBudget / matrix))) : 0;
  return { n, nPad, dim, chunks, vecs, acc, parts, waveChunks, end: parts + waveChunks * matrix };
}

/** Vectors of equal length, in a memory the kernel can address: otherwise the reference does it. */
function fits(v: readonly Vector[], L: Layout): boolean {
  return v.every((x) => x.length === L.dim) && L.end <= MAX_PAGES * PAGE;
}

function prepare(memory: WebAssembly.Memory, v: readonly Vector[], L: Layout): void {
  const have = memory.buffer.byteLength;
  if (L.end > have) memory.grow(Math.ceil((L.end - have) / PAGE));
  const f = new Float64Array(memory.buffer);
  for (let i = 0; i < L.n; i++) f.set(v[i], L.vecs / 8 + i * L.dim); // float32 rows widen exactly
  f.fill(0, L.vecs / 8 + L.n * L.dim, L.acc / 8 + L.nPad * L.nPad); // padding rows and the sums
}

/** The n×n result from the kernel's upper blocks, mirrored like the reference's. */
function collect(memory: WebAssembly.Memory, L: Layout, kind: 'dot' | 'sqdist'): Float64Array {
  const acc = new Float64Array(memory.buffer, L.acc, L.nPad * L.nPad);
  const { n, nPad } = L;
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    // the reference never computes the diagonal of squared distances: it stays 0 (even for ±∞)
    if (kind === 'dot') out[i * n + i] = acc[i * nPad + i];
    for (let j = i + 1; j < n; j++) out[i * n + j] = out[j * n + i] = acc[i * nPad + j];
  }
  return out;
}

const kindCode = (kind: 'dot' | 'sqdist') => (kind === 'dot' ? 0 : 1);

/** The WebAssembly SIMD kernel on the calling thread. */
export class WasmGramKernel implements GramKernel {
  readonly name = 'wasm-simd';
  private readonly memory = sharedMemory();
  private readonly ex: GramExports;

  private constructor(module: WebAssembly.Module) {
    this.ex = instantiate(module, this.memory);
  }

  /** null when this engine cannot run WebAssembly SIMD. */
  static create(): WasmGramKernel | null {
    const m = gramModule();
    return m ? new WasmGramKernel(m) : null;
  }

  pairwise(v: readonly Vector[], kind: 'dot' | 'sqdist'): Float64Array {
    if (v.length === 0) return new Float64Array(0);
    const L = layout(v.length, v[0].length, 0);
    if (!fits(v, L)) return referencePairwise(v, kind);
    prepare(this.memory, v, L);
    // chunk sums added straight onto the result, chunks in order
    for (let c = 0; c < L.chunks; c++) this.ex.chunk(kindCode(kind), L.vecs, L.nPad, L.dim, c, L.acc, 1);
    return collect(this.memory, L, kind);
  }
}

/** Control words shared with the workers (an Int32Array over a SharedArrayBuffer). */
export const CTRL = { gen: 0, stop: 1, kind: 2, n: 3, dim: 4, c0: 5, c1: 6, done: 7, vecs: 8, parts: 9, next: 16 } as const;
/** Claim counters, one per wave generation (mod this): a worker late from the previous wave
 * claims from its own, exhausted counter and never takes a chunk of the next wave. */
export const NEXT_SLOTS = 16;

export interface ThreadedGramOptions {
  /** Threads in all, the calling one included. Default: one per core. */
  threads?: number;
  /** A wave with no chunk finished for this long means a worker is gone: the kernel stops using
   * its workers and computes on the calling thread from then on. Default 10 s: a chunk is about
   * 1 ms of work (101 × 159,010), so only a dead or starved thread misses that by 10^4. */
  stallMs?: number;
  /** Bytes of per-chunk partial matrices per wave (default 32 MiB; at least one chunk's). */
  partBudgetBytes?: number;
}

/**
 * The WebAssembly SIMD kernel split across worker threads. pairwise() stays synchronous: the
 * calling thread computes chunks too and then waits (Atomics.wait) for the rest, so it can stand
 * in wherever the reference is called. Create with `await ThreadedGramKernel.create()`, close
 * when done.
 */
export class ThreadedGramKernel implements GramKernel {
  readonly name: string;
  readonly threads: number;
  private readonly memory: WebAssembly.Memory;
  private readonly ex: GramExports;
  private readonly ctrl: Int32Array;
  private readonly workers: Worker[];
  private readonly stallMs: number;
  private readonly partBudget: number;
  private fallback?: WasmGramKernel | null;
  private gen = 0;

  private constructor(module: WebAssembly.Module, memory: WebAssembly.Memory, ctrl: Int32Array, workers: Worker[], opts: ThreadedGramOptions) {
    this.memory = memory;
    this.ex = instantiate(module, memory);
    this.ctrl = ctrl;
    this.workers = workers;
    this.threads = workers.length + 1;
    this.name = `wasm-simd x${this.threads} threads`;
    this.stallMs = opts.stallMs ?? 10_000;
    this.partBudget = opts.partBudgetBytes ?? PART_BUDGET;
  }

  /** null when this engine cannot run WebAssembly SIMD. */
  static async create(opts: ThreadedGramOptions = {}): Promise<ThreadedGramKernel | null> {
    const module = gramModule();
    if (!module) return null;
    const threads = Math.max(1, opts.threads ?? availableParallelism());
    const memory = sharedMemory();
    const ctrl = new Int32Array(new SharedArrayBuffer(4 * (CTRL.next + NEXT_SLOTS)));
    const workers = await Promise.all(
      Array.from({ length: threads - 1 }, () => {
        const w = new Worker(new URL('./gram-worker.ts', import.meta.url), { workerData: { memory, ctrl } });
        w.unref();
        return new Promise<Worker>((resolve, reject) => {
          w.once('message', () => resolve(w));
          w.once('error', reject);
        });
      }),
    );
    return new ThreadedGramKernel(module, memory, ctrl, workers, opts);
  }

  pairwise(v: readonly Vector[], kind: 'dot' | 'sqdist'): Float64Array {
    if (v.length === 0) return new Float64Array(0);
    if (this.fallback !== undefined) return this.fallback ? this.fallback.pairwise(v, kind) : referencePairwise(v, kind);
    const L = layout(v.length, v[0].length, this.partBudget);
    if (!fits(v, L)) return referencePairwise(v, kind);
    prepare(this.memory, v, L);
    const { ctrl, ex } = this;
    const matrix = L.nPad * L.nPad;
    for (let c0 = 0; c0 < L.chunks; c0 += L.waveChunks) {
      const c1 = Math.min(L.chunks, c0 + L.waveChunks);
      const gen = ++this.gen;
      const next = CTRL.next + (gen % NEXT_SLOTS);
      // Atomic stores: a worker that reads these and then still sees the same generation has
      // read this wave's values (see gram-worker.ts).
      Atomics.store(ctrl, CTRL.kind, kindCode(kind));
      Atomics.store(ctrl, CTRL.n, L.nPad);
      Atomics.store(ctrl, CTRL.dim, L.dim);
      Atomics.store(ctrl, CTRL.c0, c0);
      Atomics.store(ctrl, CTRL.c1, c1);
      Atomics.store(ctrl, CTRL.vecs, L.vecs);
      Atomics.store(ctrl, CTRL.parts, L.parts);
      Atomics.store(ctrl, CTRL.done, 0);
      Atomics.store(ctrl, next, c0);
      Atomics.store(ctrl, CTRL.gen, gen); // publishes the words above to the workers
      Atomics.notify(ctrl, CTRL.gen);
      for (let c = Atomics.add(ctrl, next, 1); c < c1; c = Atomics.add(ctrl, next, 1)) {
        ex.chunk(kindCode(kind), L.vecs, L.nPad, L.dim, c, L.parts + (c - c0) * matrix * 8, 0);
        Atomics.add(ctrl, CTRL.done, 1);
      }
      if (!this.await(c1 - c0)) {
        this.abandon();
        return this.pairwise(v, kind);
      }
      ex.reduce(L.acc, L.parts, c1 - c0, matrix);
    }
    return collect(this.memory, L, kind);
  }

  /** Wait until `count` chunks of the wave are done; false when the workers stall. */
  private await(count: number): boolean {
    let last = Atomics.load(this.ctrl, CTRL.done);
    let since = performance.now();
    while (last < count) {
      Atomics.wait(this.ctrl, CTRL.done, last, 100);
      const d = Atomics.load(this.ctrl, CTRL.done);
      if (d !== last) {
        last = d;
        since = performance.now();
      } else if (performance.now() - since > this.stallMs) return false;
    }
    return true;
  }

  /** Stop using the workers (one is gone or stuck); late writes land in memory no longer read. */
  private abandon(): void {
    this.fallback = WasmGramKernel.create();
    void this.close();
  }

  async close(): Promise<void> {
    if (this.fallback === undefined) this.fallback = WasmGramKernel.create();
    Atomics.store(this.ctrl, CTRL.stop, 1);
    Atomics.add(this.ctrl, CTRL.gen, 1);
    Atomics.notify(this.ctrl, CTRL.gen);
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
