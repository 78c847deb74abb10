// The per-aggregation dumps of scripts/scoring-dump.ts and scripts/shapley-dump.ts, read back by the
// offline scripts: DIR/<round>/meta.json (dim, updates), deltas.f32 (the updates back to back) and
// previous.f32 (the model they start from).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { shapleyValues } from '../src/experiments/report.ts';

export interface DumpRound {
  name: string;
  // any: each dump script writes its own update fields
  meta: { dim: number; updates: any[] } & Record<string, unknown>;
  /** All updates of the round, back to back (`dim` each). */
  deltas: Float32Array;
  previous: Float32Array;
  /** Update i of the round, a view into `deltas`. */
  delta(i: number): Float32Array;
}

const f32 = (path: string) => {
  const raw = readFileSync(path);
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
};

/** The dump's rounds, in order (read one at a time with readRound: a 50-client round is ~32 MB). */
export const dumpNames = (dir: string): string[] => readdirSync(dir).filter((x) => /^\d+$/.test(x)).sort();

/** FIRST=K in the environment: only a dump's first K aggregations (a shorter run of the same
 * seed: the closed loop is deterministic, so its first K aggregations are these); else all. */
export function firstAggregations(): number {
  const first = process.env.FIRST === undefined ? Infinity : Number(process.env.FIRST);
  if (!(first >= 1)) throw new Error(`FIRST must be a positive number of aggregations, got ${JSON.stringify(process.env.FIRST)}`);
  return first;
}

export function readRound(dir: string, name: string): DumpRound {
  const meta = JSON.parse(readFileSync(join(dir, name, 'meta.json'), 'utf8'));
  const deltas = f32(join(dir, name, 'deltas.f32'));
  return { name, meta, deltas, previous: f32(join(dir, name, 'previous.f32')), delta: (i) => deltas.subarray(i * meta.dim, (i + 1) * meta.dim) };
}

export interface Dump { round: number; dim: number; previous: Float32Array; ups: { clientId: string; digest: string; samples: number; attacker: boolean; delta: Float32Array }[] }

/** Every round at once, each update with its delta. */
export const loadDumps = (dir: string): Dump[] =>
  dumpNames(dir).map((d) => {
    const r = readRound(dir, d);
    return { round: Number(d), dim: r.meta.dim, previous: r.previous, ups: r.meta.updates.map((u, i) => ({ ...u, delta: r.delta(i) })) };
  });

/** Add each client's Shapley value of one aggregation's game (its 2^n coalition values, in the
 * mask order of shapleyValues) to `into`, the clients being the round's updates in order. */
export function addShapley(into: Map<string, number>, clientIds: readonly string[], coalitionValues: ArrayLike<number>): void {
  shapleyValues(clientIds.length, Float64Array.from(coalitionValues)).forEach((phi, i) => into.set(clientIds[i], (into.get(clientIds[i]) ?? 0) + phi));
}
