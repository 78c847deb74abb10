/**
 * Signature verification behind one interface (STYLE.md habit 7): an in-thread verifier for
 * tests and tools, and a pool of worker threads for the daemon so that a flood of signatures
 * never blocks the event loop. Jobs cross to the workers as bytes.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { type MlDsa, type MlDsaParams, defaultMlDsa } from './mldsa.ts';

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
}

export interface VerifierPoolOptions {
  /** Worker threads. Default: cores - 1 (one core stays with the event loop), at least 1. */
  workers?: number;
  params?: MlDsaParams;
  implementation?: 'native' | 'noble';
}

export class WorkerVerifierPool implements SignatureVerifier {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly load: number[] = [];
  private nextId = 0;
  private closed = false;

  constructor(opts: VerifierPoolOptions = {}) {
    const n = opts.workers ?? Math.max(1, availableParallelism() - 1);
    for (let i = 0; i < n; i++) {
      const w = new Worker(new URL('./verifier-worker.ts', import.meta.url), {
        workerData: { params: opts.params ?? 'ML-DSA-44', implementation: opts.implementation ?? 'auto' },
      });
      w.on('message', (msg: { id: number; results?: boolean[]; error?: string }) => {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        this.load[i]--;
        if (msg.error) p.reject(new Error(msg.error));
        else p.resolve(msg.results!);
      });
      w.on('error', (err) => this.failAll(err));
      w.unref();
      this.workers.push(w);
      this.load.push(0);
    }
  }

  async verify(jobs: VerifyJob[]): Promise<boolean[]> {
    if (this.closed) throw new Error('verifier pool is closed');
    if (jobs.length === 0) return [];
    // Least-loaded worker; one batch stays on one worker (batches are small, ordering is kept).
    let best = 0;
    for (let i = 1; i < this.workers.length; i++) if (this.load[i] < this.load[best]) best = i;
    const id = this.nextId++;
    this.load[best]++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.workers[best].postMessage({
        id,
        jobs: jobs.map((j) => ({ publicKey: j.publicKey, message: j.message, signature: j.signature, context: j.context })),
      });
    });
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new Error('verifier pool closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
