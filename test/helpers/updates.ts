/** Synthetic update sets: an honest direction plus noise, and attackers of a chosen kind. */
import { createHash } from 'node:crypto';
import { encodeTx } from '../../src/core/encoding.ts';
import type { AggregationResult, UpdateInput } from '../../src/core/aggregation/types.ts';
import { Rng } from '../../src/core/random.ts';

export function makeUpdates(o: { seed: number; honest: number; attackers: number; attack?: 'sign-flip' | 'scale' | 'noise'; scale?: number; dim: number }): { updates: UpdateInput[]; previous: Float32Array } {
  const rng = new Rng(o.seed);
  const direction = Float64Array.from({ length: o.dim }, () => rng.normal());
  const previous = Float32Array.from({ length: o.dim }, () => rng.normal() * 0.1);
  const updates: UpdateInput[] = [];
  const make = (id: string, f: (x: number) => number) => {
    const delta = Float32Array.from(direction, (x) => f(x + 0.5 * rng.normal()) * 0.01);
    updates.push({ clientId: id, digest: createHash('sha256').update(Buffer.from(delta.buffer)).update(id).digest(), delta, sampleCount: 50 + rng.int(100), staleness: 0 });
  };
  for (let i = 0; i < o.honest; i++) make(`client-${i + 1}`, (x) => x);
  for (let i = 0; i < o.attackers; i++) {
    const attack = o.attack ?? 'sign-flip';
    make(`attacker-${i + 1}`, attack === 'sign-flip' ? (x) => -x : attack === 'scale' ? (x) => x * (o.scale ?? 10) : () => rng.normal() * 5);
  }
  return { updates, previous };
}

/** Digest of everything an aggregation puts on chain (entries, rewards, model). The state hash,
 * the transaction's last 32 bytes, is left out: it is not part of the result, and the golden
 * digests predate it. */
export function resultDigest(r: AggregationResult): string {
  const tx = encodeTx({ type: 'aggregation', round: 1, baseModelHash: new Uint8Array(32), modelHash: new Uint8Array(32), model: new Uint8Array(r.model.buffer), entries: r.entries, rewards: r.rewards, stateHash: new Uint8Array(32) });
  return createHash('sha256').update(tx.subarray(0, tx.length - 32)).digest('hex');
}
