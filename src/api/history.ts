/**
 * What the dashboard shows over time that the chain does not hold: the node's status sampled
 * at a fixed interval (hash rate, peers, a client's balance, round-trip times...), the test
 * accuracy the miner measured for each global model, and a client's recent uploads. Kept in
 * memory, bounded, and lost on restart (the chain-derived views are not).
 */
import { sha256 } from '../core/hash.ts';
import { toHex } from '../core/bytes.ts';
import type { NodeStatus } from './status.ts';

export interface Series {
  intervalMs: number;
  /** Sample times, ms since the epoch. */
  t: number[];
  /** One array per quantity, aligned with `t`; null where the quantity was not known. */
  series: Record<string, (number | null)[]>;
}

/** The numbers of a status worth plotting, by name: balances in tokens (10^6 units), round-trip times in ms. */
export function sampleOf(s: NodeStatus): Record<string, number | null> {
  if (s.role === 'miner') {
    return { height: s.height, aggregations: s.aggregations, pending: s.pending, peers: s.peers, hashRate: s.hashRate, lastAccuracy: s.lastAccuracy, orphans: s.orphans, unrecorded: s.pool.unrecorded };
  }
  const out: Record<string, number | null> = { round: s.round, trained: s.trained, uploaded: s.uploaded, buffered: s.buffered, lastAccuracy: s.lastAccuracy, freshSamples: s.freshSamples, balance: s.balance === null ? null : Number(s.balance) / 1e6 };
  for (const [id, rtt] of Object.entries(s.miners)) out[`rtt:${id}`] = rtt;
  return out;
}

/** A ring of samples: at most `capacity`, the oldest dropped first. */
export class Sampler {
  readonly intervalMs: number;
  private readonly capacity: number;
  private readonly t: number[] = [];
  private readonly series = new Map<string, (number | null)[]>();

  constructor(o: { intervalMs: number; capacity: number }) {
    this.intervalMs = o.intervalMs;
    this.capacity = o.capacity;
  }

  add(at: number, sample: Record<string, number | null>): void {
    this.t.push(at);
    // a quantity seen for the first time (a miner now reachable) is null before it
    for (const k of Object.keys(sample)) if (!this.series.has(k)) this.series.set(k, new Array<number | null>(this.t.length - 1).fill(null));
    for (const [k, arr] of this.series) arr.push(sample[k] ?? null);
    if (this.t.length > this.capacity) {
      this.t.shift();
      for (const arr of this.series.values()) arr.shift();
    }
  }

  toJSON(): Series {
    return { intervalMs: this.intervalMs, t: [...this.t], series: Object.fromEntries([...this.series].map(([k, v]) => [k, [...v]])) };
  }
}

/** Test accuracy by global-model hash, as the miner measured it (at most `capacity` models kept). */
export class AccuracyLog {
  private readonly byModel = new Map<string, number>();
  private readonly capacity: number;

  constructor(capacity = 10_000) {
    this.capacity = capacity;
  }

  /** Record the accuracy of `model` (float32 parameters, whose bytes the chain's model hash covers); returns it. */
  note(model: Float32Array, accuracy: number): number {
    const key = toHex(sha256(new Uint8Array(model.buffer, model.byteOffset, model.byteLength)));
    this.byModel.delete(key);
    this.byModel.set(key, accuracy);
    if (this.byModel.size > this.capacity) this.byModel.delete(this.byModel.keys().next().value!);
    return accuracy;
  }

  of = (modelHash: string): number | undefined => this.byModel.get(modelHash);
}

export interface UploadEntry {
  at: number;
  miner: string | null;
  digest: string;
  samples: number | null;
  /** How many buffered updates this one averages (1: a regular upload). */
  averaged: number;
}

/** A client's most recent uploads, newest last. */
export class UploadLog {
  private readonly entries: UploadEntry[] = [];
  private readonly capacity: number;

  constructor(capacity = 200) {
    this.capacity = capacity;
  }

  note(e: UploadEntry): void {
    this.entries.push(e);
    if (this.entries.length > this.capacity) this.entries.shift();
  }

  list(): UploadEntry[] {
    return [...this.entries];
  }
}
