/**
 * Signature verification behind one interface (STYLE.md habit 7): an in-thread verifier for
 * tests and tools, and a pool of worker threads for the daemon so that a flood of signatures
 * never blocks the event loop. Jobs cross to the workers as bytes.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { type WorkerHeap, workersHeap } from '../util/worker-heap.ts';
import { type MlDsa, type MlDsaParams, defaultMlDsa } from './mldsa.ts';
import type { OpenJob, OpenResult, SealedOpener } from './open-sealed.ts';

export interface VerifyJob {
  publicKey: Uint8Array;
  message: Uint8Array;
  signature: Uint8Array;
  context: string;
}

export interface SignatureVerifier {
  verify(jobs: VerifyJob[]): Promise<boolean[]>;
  close(): Promise<void>;
}

export class InThreadVerifier implements SignatureVerifier {
  private readonly mldsa: MlDsa;

  constructor(mldsa: MlDsa = defaultMlDsa()) {
    this.mldsa = mldsa;
  }

  async verify(jobs: VerifyJob[]): Promise<boolean[]> {
    return jobs.map((j) => this.mldsa.verify(j.publicKey, j.message, j.signature, j.context));
  }

  async close(): Promise<void> {}
}

interface Pending {
  resolve: (r: boolean[]) => void;
  reject: (e: Error) => void;
  /** Jobs of this call: its share of a batch's results. */
  count: number;
}

export interface VerifierPoolOptions {
  /** Worker threads. Default: cores - 1 (one core stays with the event loop), at least 1. */
  workers?: number;
  params?: MlDsaParams;
  implementation?: 'native' | 'noble';
  /**
   * Messages one worker holds at once; calls beyond go out together in the next message. 2: the
   * worker always has the next batch waiting while its answer travels back, and uploads (one
   * call each) that find it busy cost one postMessage per batch, not one each (issue 12: the
   * posting was about 5 % of the miner's event loop under `bench ingest`).
   */
  maxMessagesPerWorker?: number;
}

/** Sealed uploads in one message at most: a frame stream's maxInFlight (4) for each of a few clients, about 5 MB of envelopes. */
const MAX_OPENS_PER_MESSAGE = 8;

/**
 * The verifier's threads also open sealed uploads (crypto/open-sealed.ts, issue 12): the same
 * worker, so a miner keeps one thread for the CPU work of its intake, and the envelope crosses
 * by transfer (its buffer moves to the worker and back, never copied).
 */
export class WorkerVerifierPool implements SignatureVerifier, SealedOpener {
  private readonly workers: Worker[] = [];
  /** Per message id, the calls whose jobs it carries, in order. */
  private readonly pending = new Map<number, Pending[]>();
  private readonly load: number[] = [];
  private readonly maxMessages: number;
  /** Calls waiting for a worker with room (all full). */
  private queue: { calls: Pending[]; jobs: VerifyJob[] } = { calls: [], jobs: [] };
  /** Sealed uploads waiting for a worker with room: sent together, up to MAX_OPENS_PER_MESSAGE a message (each buffer transferred). */
  private opens: { job: OpenJob; resolve: (r: OpenResult) => void; reject: (e: Error) => void }[] = [];
  private readonly pendingOpens = new Map<number, { resolve: (r: OpenResult) => void; reject: (e: Error) => void }[]>();
  private nextId = 0;
  private closed = false;

  constructor(opts: VerifierPoolOptions = {}) {
    const n = opts.workers ?? Math.max(1, availableParallelism() - 1);
    this.maxMessages = Math.max(1, opts.maxMessagesPerWorker ?? 2);
    for (let i = 0; i < n; i++) {
      const w = new Worker(new URL('./verifier-worker.ts', import.meta.url), {
        workerData: { params: opts.params ?? 'ML-DSA-44', implementation: opts.implementation ?? 'auto' },
        name: 'verifier', // the thread's name in /proc and profilers (bench ingest's per-thread CPU)
      });
      w.on('message', (msg: { id: number; results?: boolean[]; opened?: OpenResult[]; error?: string }) => {
        const opens = this.pendingOpens.get(msg.id);
        if (opens) {
          this.pendingOpens.delete(msg.id);
          this.load[i]--;
          opens.forEach((o, k) => (msg.error ? o.reject(new Error(msg.error)) : o.resolve(msg.opened![k])));
          this.dispatch();
          return;
        }
        const calls = this.pending.get(msg.id);
        if (!calls) return;
        this.pending.delete(msg.id);
        this.load[i]--;
        let at = 0;
        for (const p of calls) {
          if (msg.error) p.reject(new Error(msg.error));
          else p.resolve(msg.results!.slice(at, at + p.count));
          at += p.count;
        }
        this.dispatch();
      });
      w.on('error', (err) => this.failAll(err));
      w.unref();
      this.workers.push(w);
      this.load.push(0);
    }
  }

  /** The pool's workers' V8 heaps together (used bytes and external memory: the sealed uploads
   * they hold among it), for bfl_worker_memory_bytes; undefined once closed. */
  async heapStatistics(): Promise<WorkerHeap | undefined> {
    return this.closed ? undefined : workersHeap(this.workers);
  }

  async verify(jobs: VerifyJob[]): Promise<boolean[]> {
    if (this.closed) throw new Error('verifier pool is closed');
    if (jobs.length === 0) return [];
    return new Promise((resolve, reject) => {
      // One call's jobs stay in one message (ordering is kept); calls queue while every worker is full.
      this.queue.calls.push({ resolve, reject, count: jobs.length });
      for (const j of jobs) this.queue.jobs.push(j);
      this.dispatch();
    });
  }

  async openSealed(job: OpenJob): Promise<OpenResult> {
    if (this.closed) throw new Error('verifier pool is closed');
    return new Promise((resolve, reject) => {
      this.opens.push({ job, resolve, reject });
      this.dispatch();
    });
  }

  /** Send queued work to the least-loaded worker while one has room: sealed uploads one message each in arrival order, then the verify calls as one message. */
  private dispatch(): void {
    for (;;) {
      if (this.queue.calls.length === 0 && this.opens.length === 0) return;
      let best = 0;
      for (let i = 1; i < this.workers.length; i++) if (this.load[i] < this.load[best]) best = i;
      if (this.load[best] >= this.maxMessages) return;
      const id = this.nextId++;
      this.load[best]++;
      if (this.opens.length > 0) {
        // those that queued while the worker was busy go together: one message, one wake-up
        const opens = this.opens.splice(0, MAX_OPENS_PER_MESSAGE);
        this.pendingOpens.set(id, opens);
        this.workers[best].postMessage({ id, opens: opens.map((o) => o.job) }, opens.map((o) => o.job.buffer));
        continue;
      }
      const { calls, jobs } = this.queue;
      this.queue = { calls: [], jobs: [] };
      this.pending.set(id, calls);
      this.workers[best].postMessage({ id, jobs: jobs.map((j) => ({ publicKey: j.publicKey, message: j.message, signature: j.signature, context: j.context })) });
      return;
    }
  }

  private failAll(err: Error): void {
    for (const calls of this.pending.values()) for (const p of calls) p.reject(err);
    this.pending.clear();
    for (const p of this.queue.calls) p.reject(err);
    this.queue = { calls: [], jobs: [] };
    for (const opens of this.pendingOpens.values()) for (const o of opens) o.reject(err);
    this.pendingOpens.clear();
    for (const o of this.opens) o.reject(err);
    this.opens = [];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new Error('verifier pool closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
