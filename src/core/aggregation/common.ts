/** Pieces shared by every aggregator: canonical order, staleness, rewards, applying g. */
import { compareBytes } from '../bytes.ts';
import type { RewardEntry } from '../types.ts';
import type { UpdateInput } from './types.ts';

/**
 * Updates sorted by (digest, client id): the one order all arithmetic runs in. Two clients may
 * send byte-identical updates (a copycat is still a valid record: records are unique per
 * (client, digest)); refusing them would make the ϕ rule demand an aggregation nobody can
 * compute. Only a repeated (client, digest) is refused.
 */
export function byDigestThenClient(a: { digest: Uint8Array; clientId: string }, b: { digest: Uint8Array; clientId: string }): number {
  return compareBytes(a.digest, b.digest) || (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0);
}

export function canonical(updates: UpdateInput[]): UpdateInput[] {
  const sorted = [...updates].sort(byDigestThenClient);
  for (let i = 1; i < sorted.length; i++) {
    if (byDigestThenClient(sorted[i - 1], sorted[i]) === 0) throw new RangeError(`update ${sorted[i].clientId} appears twice`);
  }
  if (sorted.length > 0) {
    const dim = sorted[0].delta.length;
    for (const u of sorted) if (u.delta.length !== dim) throw new RangeError(`update of ${u.clientId} has ${u.delta.length} parameters, expected ${dim}`);
  }
  return sorted;
}

/**
 * Staleness discount s(τ) = (1 + τ)^(−a) (asynchronous FL, e.g. FedAsync's polynomial
 * staleness function). a = 0 turns it off (the default: the paper does not weight staleness).
 * Math.pow is V8's own fdlibm port, the same on every platform that runs this Node version.
 */
export function stalenessWeight(tau: number, a: number): number {
  if (a === 0) return 1;
  return Math.pow(1 + Math.max(0, tau), -a);
}

/** reward_i = ⌊base · p_i⌋ summed per client; the floors make the total at most `base`. */
export function rewardsFor(entries: { clientId: string; weight: number; rewarded: boolean }[], base: bigint): RewardEntry[] {
  if (base > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('base reward above 2^53 units');
  const b = Number(base);
  const per = new Map<string, bigint>();
  for (const e of entries) {
    if (!e.rewarded || e.weight <= 0) continue;
    per.set(e.clientId, (per.get(e.clientId) ?? 0n) + BigInt(Math.floor(b * e.weight)));
  }
  return [...per]
    .filter(([, v]) => v > 0n)
    .sort(([a], [b2]) => (a < b2 ? -1 : a > b2 ? 1 : 0))
    .map(([id, amount]) => ({ id, amount }));
}

/** Largest finite float32, (2 − 2^−23) · 2^127. */
export const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * previous + g, rounded to float32 once per coordinate, saturated at ±FLOAT32_MAX: finite
 * updates near the float32 range (3e38 + 3e38) would otherwise round to ±Infinity, and the next
 * aggregation would make NaN of it (Inf − Inf). A NaN in g (which finite inputs should never
 * give) is caught here too, by keeping the previous value, so the global model stays finite
 * whatever the rule computed (issue 13, item 6). Deterministic: plain comparisons.
 */
export function applyUpdate(previous: Float32Array, g: Float64Array): Float32Array {
  const out = new Float32Array(previous.length);
  for (let k = 0; k < out.length; k++) {
    const v = previous[k] + g[k];
    out[k] = v > FLOAT32_MAX ? FLOAT32_MAX : v < -FLOAT32_MAX ? -FLOAT32_MAX : v === v ? v : previous[k];
  }
  return out;
}

/**
 * Normalise non-negative scores over the members of `mask` to weights summing to 1; others get
 * 0. If every member scores 0, the members share equally (there is no basis to prefer one).
 */
export function normalise(scores: number[], mask: boolean[] = scores.map(() => true)): number[] {
  let total = 0;
  let members = 0;
  for (let i = 0; i < scores.length; i++) {
    if (!mask[i]) continue;
    total += scores[i];
    members++;
  }
  if (members === 0) return scores.map(() => 0);
  if (total === 0) return scores.map((_, i) => (mask[i] ? 1 / members : 0));
  return scores.map((s, i) => (mask[i] ? s / total : 0));
}
