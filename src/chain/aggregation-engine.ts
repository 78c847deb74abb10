/**
 * Where an aggregation is computed (STYLE.md habit 7): in this thread (unit tests, the
 * simulator, tools) or in a worker thread (the daemon), so that scoring 100 updates of the
 * default model (0.6-1.1 s of CPU) never blocks the event loop: /status, gossip validation and
 * block sync keep running meanwhile. Same code on both sides, so the same bits.
 *
 * Jobs cross to the worker as bytes: every payload (100 × 636 KB) is an ArrayBuffer that is
 * transferred, not cloned; the result's model comes back the same way.
 */
import { Worker } from 'node:worker_threads';
import { type Aggregator, type AggregationContext, BflMecAggregator, createAggregator, dampStaleSteps, stateCodecOf } from '../core/aggregation/index.ts';
import { AgreementAggregator } from '../core/aggregation/agreement.ts';
import type { GramKernel } from '../core/aggregation/vectors.ts';
import type { AggregationEntry, RewardEntry } from '../core/types.ts';
import type { AggregationConfig } from '../config/network.ts';
import { type WorkerHeap, workersHeap } from '../util/worker-heap.ts';

/** The aggregator a network's config names, with its settings; BFL-MEC computes its pairwise
 * matrices with `kernel` when given one (same bits as without: src/kernels/gram.ts). */
export function aggregatorOf(c: AggregationConfig, kernel?: GramKernel): Aggregator<unknown> {
  const aggregator = createAggregator(c.aggregator, {
    bflmec: { metric: c.metric, eps: c.eps, epsFactor: c.epsFactor, minPts: c.minPts, maxNormRatio: c.maxNormRatio },
    stalenessExponent: c.stalenessExponent,
    fedproxDrop: c.fedproxDrop,
    krumF: c.krumF ?? undefined,
    trim: c.trim,
  });
  // both BFL-MEC rules: the default agreement scoring (issue 11) had been left on the JS reference
  if (kernel && (aggregator instanceof BflMecAggregator || aggregator instanceof AgreementAggregator)) aggregator.kernel = kernel;
  return dampStaleSteps(aggregator, c.stalenessDamping);
}

export interface AggregationJob {
  /** The current global model, float32 little-endian. */
  previous: Uint8Array;
  updates: { clientId: string; digest: Uint8Array; payload: Uint8Array; sampleCount: number; staleness: number }[];
  baseReward: bigint;
  /** The aggregator's state before this aggregation (its canonical bytes). */
  state: Uint8Array;
  context: AggregationContext;
}

export interface AggregationOutcome {
  model: Float32Array;
  entries: AggregationEntry[];
  rewards: RewardEntry[];
  /** The aggregator's state after this aggregation (canonical bytes). */
  state: Uint8Array;
}

export interface AggregationEngine {
  /** Whether the aggregator keeps no state (the node then stores none). */
  readonly stateless: boolean;
  /** The state before the first aggregation (the genesis block's), in canonical bytes. */
  initialState(): Uint8Array;
  aggregate(job: AggregationJob): Promise<AggregationOutcome>;
  close(): Promise<void>;
}

function floats(bytes: Uint8Array): Float32Array {
  // A view when aligned (the worker's packed buffer), else one copy.
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return new Float32Array(bytes.slice().buffer);
}

/** The computation itself, shared by both engines. */
export function runAggregation(aggregator: Aggregator<unknown>, job: AggregationJob): AggregationOutcome {
  const codec = stateCodecOf(aggregator);
  const { result, state } = aggregator.aggregate(
    {
      previous: floats(job.previous),
      updates: job.updates.map((u) => ({ clientId: u.clientId, digest: u.digest, delta: floats(u.payload), sampleCount: u.sampleCount, staleness: u.staleness })),
      baseReward: job.baseReward,
      context: job.context,
    },
    codec.decode(job.state),
  );
  return { model: result.model, entries: result.entries, rewards: result.rewards, state: codec.encode(state) };
}

export class InThreadAggregationEngine implements AggregationEngine {
  private readonly aggregator: Aggregator<unknown>;
  readonly stateless: boolean;

  constructor(aggregator: Aggregator<unknown>) {
    this.aggregator = aggregator;
    this.stateless = stateCodecOf(aggregator).stateless;
  }

  initialState(): Uint8Array {
    return stateCodecOf(this.aggregator).encode(this.aggregator.initialState());
  }

  async aggregate(job: AggregationJob): Promise<AggregationOutcome> {
    return runAggregation(this.aggregator, job);
  }

  async close(): Promise<void> {}
}

/** The job as it crosses to the worker: every large array as an ArrayBuffer of its own, transferred. */
export interface PackedJob {
  id: number;
  previous: ArrayBuffer;
  payloads: ArrayBuffer[];
  previousGlobalUpdate?: ArrayBuffer;
  updates: { clientId: string; digest: Uint8Array; sampleCount: number; staleness: number }[];
  baseReward: bigint;
  state: Uint8Array;
  context: { round: number; parentHash: Uint8Array };
}

/**
 * An ArrayBuffer holding exactly these bytes, to transfer: the array's own buffer when it spans
 * all of it (a payload read from the pool: no copy), else a copy (a view into a larger
 * message). Copying 100 payloads into one buffer instead measured 350-630 ms on the event loop
 * of a loaded 2-core machine, the stall this engine exists to avoid.
 */
function ownBuffer(a: Uint8Array | Float32Array): ArrayBuffer {
  if (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && a.buffer instanceof ArrayBuffer) return a.buffer;
  return a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength) as ArrayBuffer;
}

/** The job for the worker, and what to transfer. Takes ownership: the job's arrays may be detached. */
export function packJob(id: number, job: AggregationJob): { packed: PackedJob; transfer: ArrayBuffer[] } {
  const prev = job.context.previousGlobalUpdate;
  const packed: PackedJob = {
    id,
    previous: ownBuffer(job.previous),
    payloads: job.updates.map((u) => ownBuffer(u.payload)),
    previousGlobalUpdate: prev && ownBuffer(prev),
    updates: job.updates.map((u) => ({ clientId: u.clientId, digest: u.digest, sampleCount: u.sampleCount, staleness: u.staleness })),
    baseReward: job.baseReward,
    state: job.state,
    context: { round: job.context.round, parentHash: job.context.parentHash },
  };
  // one buffer may back several arrays only if they were copies of each other's views: transfer each once
  const transfer = [...new Set([packed.previous, ...packed.payloads, ...(packed.previousGlobalUpdate ? [packed.previousGlobalUpdate] : [])])];
  return { packed, transfer };
}

export function unpackJob(p: PackedJob): AggregationJob {
  return {
    previous: new Uint8Array(p.previous),
    updates: p.updates.map((u, i) => ({ ...u, payload: new Uint8Array(p.payloads[i]) })),
    baseReward: p.baseReward,
    state: p.state,
    context: { round: p.context.round, parentHash: p.context.parentHash, previousGlobalUpdate: p.previousGlobalUpdate && new Float32Array(p.previousGlobalUpdate) },
  };
}

interface Pending {
  resolve: (r: AggregationOutcome) => void;
  reject: (e: Error) => void;
}

/**
 * One worker thread (aggregations of one chain come one after another; a second worker would
 * only compete with proof of work for the cores). The worker builds its aggregator from the
 * network's aggregation config, the same way this thread would.
 */
export class WorkerAggregationEngine implements AggregationEngine {
  private worker!: Worker;
  /** Resolves once the current worker runs (its heap can be read from then on). */
  private online!: Promise<unknown>;
  private readonly config: AggregationConfig;
  private readonly pending = new Map<number, Pending>();
  readonly stateless: boolean;
  private readonly initial: Uint8Array;
  private nextId = 0;
  private closed = false;

  constructor(config: AggregationConfig) {
    const local = aggregatorOf(config);
    const codec = stateCodecOf(local);
    this.config = config;
    this.stateless = codec.stateless;
    this.initial = codec.encode(local.initialState());
    this.spawn();
  }

  /**
   * A worker that dies (out of memory, a crash in a kernel) fails the jobs it held and is
   * replaced, so later jobs are not posted to a dead thread and never answered (the chain
   * store holds its lock while it validates an aggregation: one lost answer would stall it).
   */
  private spawn(): void {
    let lastError: Error | undefined;
    this.worker = new Worker(new URL('./aggregation-worker.ts', import.meta.url), { workerData: { config: this.config } });
    this.online = new Promise((resolve) => this.worker.once('online', resolve));
    this.worker.on('error', (err) => (lastError = err));
    this.worker.on('exit', (code) => {
      if (this.closed) return;
      this.failAll(new Error(`aggregation worker exited (code ${code})${lastError ? `: ${lastError.message}` : ''}`));
      this.spawn();
    });
    this.worker.on('message', (msg: { id: number; model?: ArrayBuffer; entries?: AggregationEntry[]; rewards?: RewardEntry[]; state?: Uint8Array; error?: string }) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (this.pending.size === 0) this.worker.unref();
      if (msg.error !== undefined) p.reject(new Error(`aggregation worker: ${msg.error}`));
      else p.resolve({ model: new Float32Array(msg.model!), entries: msg.entries!, rewards: msg.rewards!, state: msg.state! });
    });
    this.worker.unref();
  }

  initialState(): Uint8Array {
    return this.initial;
  }

  /** The worker's own V8 heap: used bytes and external memory (its ArrayBuffers among it), for
   * bfl_worker_memory_bytes; undefined once closed. */
  async heapStatistics(): Promise<WorkerHeap | undefined> {
    if (this.closed) return undefined;
    await this.online;
    return workersHeap([this.worker]);
  }

  async aggregate(job: AggregationJob): Promise<AggregationOutcome> {
    if (this.closed) throw new Error('aggregation engine is closed');
    const id = this.nextId++;
    const { packed, transfer } = packJob(id, job);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref(); // a job in flight keeps the process alive until it answers
      this.worker.postMessage(packed, transfer);
    });
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new Error('aggregation engine closed'));
    await this.worker.terminate();
  }
}
