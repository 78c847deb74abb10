/**
 * Where an aggregation is computed (STYLE.md habit 7): in this thread (unit tests, the
 * simulator, tools) or in a worker thread (the daemon), so that scoring 100 updates of the
 * default model (0.6-1.1 s of CPU) never blocks the event loop: /status, gossip validation and
 * block sync keep running meanwhile. Same code on both sides, so the same bits.
 *
 * Jobs cross to the worker as bytes: the update payloads are packed into one ArrayBuffer (100 ×
 * 636 KB) that is transferred, not cloned; the result's model comes back the same way.
 */
import { Worker } from 'node:worker_threads';
import { type Aggregator, type AggregationContext, createAggregator, stateCodecOf } from '../core/aggregation/index.ts';
import type { AggregationEntry, RewardEntry } from '../core/types.ts';
import type { AggregationConfig } from '../config/network.ts';

/** The aggregator a network's config names, with its settings. */
export function aggregatorOf(c: AggregationConfig): Aggregator<unknown> {
  return createAggregator(c.aggregator, {
    bflmec: { metric: c.metric, eps: c.eps, epsFactor: c.epsFactor, minPts: c.minPts, maxNormRatio: c.maxNormRatio },
    stalenessExponent: c.stalenessExponent,
    fedproxDrop: c.fedproxDrop,
    krumF: c.krumF ?? undefined,
    trim: c.trim,
  });
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

/** The job as it crosses to the worker: every large array in one transferred buffer. */
export interface PackedJob {
  id: number;
  buffer: ArrayBuffer; // previous model, then each payload, then the previous global update
  modelBytes: number;
  updates: { clientId: string; digest: Uint8Array; sampleCount: number; staleness: number; bytes: number }[];
  baseReward: bigint;
  state: Uint8Array;
  context: { round: number; parentHash: Uint8Array; previousGlobalUpdate: boolean };
}

export function packJob(id: number, job: AggregationJob): PackedJob {
  const prev = job.context.previousGlobalUpdate;
  const total = job.previous.byteLength + job.updates.reduce((s, u) => s + u.payload.byteLength, 0) + (prev ? prev.byteLength : 0);
  const all = new Uint8Array(total);
  let at = 0;
  const put = (b: Uint8Array) => {
    all.set(b, at);
    at += b.byteLength;
  };
  put(job.previous);
  for (const u of job.updates) put(u.payload);
  if (prev) put(new Uint8Array(prev.buffer, prev.byteOffset, prev.byteLength));
  return {
    id,
    buffer: all.buffer,
    modelBytes: job.previous.byteLength,
    updates: job.updates.map((u) => ({ clientId: u.clientId, digest: u.digest, sampleCount: u.sampleCount, staleness: u.staleness, bytes: u.payload.byteLength })),
    baseReward: job.baseReward,
    state: job.state,
    context: { round: job.context.round, parentHash: job.context.parentHash, previousGlobalUpdate: prev !== undefined },
  };
}

export function unpackJob(p: PackedJob): AggregationJob {
  const all = new Uint8Array(p.buffer);
  let at = 0;
  const take = (n: number) => {
    const v = all.subarray(at, at + n);
    at += n;
    return v;
  };
  const previous = take(p.modelBytes);
  const updates = p.updates.map((u) => ({ clientId: u.clientId, digest: u.digest, sampleCount: u.sampleCount, staleness: u.staleness, payload: take(u.bytes) }));
  const previousGlobalUpdate = p.context.previousGlobalUpdate ? floats(take(p.modelBytes)) : undefined;
  return { previous, updates, baseReward: p.baseReward, state: p.state, context: { round: p.context.round, parentHash: p.context.parentHash, previousGlobalUpdate } };
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
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  readonly stateless: boolean;
  private readonly initial: Uint8Array;
  private nextId = 0;
  private closed = false;

  constructor(config: AggregationConfig) {
    const local = aggregatorOf(config);
    const codec = stateCodecOf(local);
    this.stateless = codec.stateless;
    this.initial = codec.encode(local.initialState());
    this.worker = new Worker(new URL('./aggregation-worker.ts', import.meta.url), { workerData: { config } });
    this.worker.on('message', (msg: { id: number; model?: ArrayBuffer; entries?: AggregationEntry[]; rewards?: RewardEntry[]; state?: Uint8Array; error?: string }) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (this.pending.size === 0) this.worker.unref();
      if (msg.error !== undefined) p.reject(new Error(`aggregation worker: ${msg.error}`));
      else p.resolve({ model: new Float32Array(msg.model!), entries: msg.entries!, rewards: msg.rewards!, state: msg.state! });
    });
    this.worker.on('error', (err) => this.failAll(err));
    this.worker.unref();
  }

  initialState(): Uint8Array {
    return this.initial;
  }

  async aggregate(job: AggregationJob): Promise<AggregationOutcome> {
    if (this.closed) throw new Error('aggregation engine is closed');
    const id = this.nextId++;
    const packed = packJob(id, job);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref(); // a job in flight keeps the process alive until it answers
      this.worker.postMessage(packed, [packed.buffer]);
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
