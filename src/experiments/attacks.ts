/**
 * Attacks a client can run (docs/architecture.md, "The simulator"), pluggable per client and switchable during a run.
 * Update attacks change Δ before it is signed; data attacks change the training data.
 *   sign-flip        Δ → −Δ
 *   scale:λ          Δ → λΔ (model replacement / boosting)
 *   noise:σ          Δ → Δ + N(0, σ²) per coordinate (a broken or lazy device)
 *   label-flip       labels y → C − 1 − y while training (data poisoning)
 *   free-ride:σ      Δ → N(0, σ²): no training at all, a "curious" client after rewards (case ii)
 *   alie[:z]         "a little is enough" (Baruch et al. 2019): Δ → μ − z·σ per coordinate; without
 *                    z the paper's z_max for the run's n and f (aliePaperZ), resolved by the experiment
 *   ipm:ε            inner product manipulation (Xie et al. 2020): Δ → −ε·μ
 *   mimic            Δ → the latest honest update of one fixed honest client (Karimireddy et al.
 *                    2022: over-weights one client's data under non-IID; the lowest-numbered one)
 *   copycat          Δ → another client's latest update, byte for byte (a free-rider, case ii);
 *                    zeros while there is none
 *   free-ride-global Δ → the previous global update (a free-rider that resends the last step)
 *   noisy-labels:p   a fraction p of the training labels replaced by random ones: an honest
 *                    client with worse data (experiment rewards --quality), not an attacker
 * μ and σ are the honest updates' mean and standard deviation: the simulator gives them to
 * its attackers (omniscient, as in those papers); without them the client's own Δ stands in
 * for μ and σ = 0 (ALIE then sends its honest update, IPM a shrunk sign flip).
 * Attacks that need the other clients' updates (a little is enough, inner product
 * manipulation) live with the experiment harness, which sees every update.
 */
import { BflError, ErrorCode } from '../core/errors.ts';
import { Rng } from '../core/random.ts';
import type { ClientBehaviour, RoundBehaviour } from '../node/behaviour.ts';
import type { HonestStats } from '../sim/harness.ts';

export type Attack =
  | { kind: 'none' }
  | { kind: 'sign-flip' }
  | { kind: 'scale'; factor: number }
  | { kind: 'noise'; sigma: number }
  | { kind: 'label-flip' }
  | { kind: 'free-ride'; sigma: number }
  | { kind: 'alie'; z: number | null }
  | { kind: 'ipm'; epsilon: number }
  | { kind: 'mimic' }
  | { kind: 'copycat' }
  | { kind: 'free-ride-global' }
  | { kind: 'noisy-labels'; p: number };

/** What the omniscient attacks of the literature know: the honest updates' statistics (the simulator's). */
export type { HonestStats };

/**
 * ALIE's z_max (Baruch et al. 2019, §3): s = ⌊n/2 + 1⌋ − f honest workers must be "won over",
 * z = Φ⁻¹((n − s) / n). For n = 50, f = 15: s = 11, z = 0.772; for n = 10, f = 3: z = 0.524.
 */
export function aliePaperZ(n: number, f: number): number {
  const s = Math.floor(n / 2 + 1) - f;
  return inverseNormalCdf(Math.min(1 - 1e-9, Math.max(1e-9, (n - s) / n)));
}

/** Φ⁻¹ by Acklam's rational approximation (relative error below 1.2e-9): enough for an attack
 * strength; no consensus code depends on it. */
export function inverseNormalCdf(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`p must be in (0, 1), got ${p}`);
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - lo) return -inverseNormalCdf(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

/** An attack as the run's clients use it: `alie` without z gets the paper's z for n and f. */
export function resolveAttack(a: Attack, n: number, f: number): Attack {
  return a.kind === 'alie' && a.z === null ? { kind: 'alie', z: aliePaperZ(n, Math.max(1, f)) } : a;
}

export const ATTACK_HELP = 'none, sign-flip, scale:λ (e.g. scale:10), noise:σ (e.g. noise:0.05), label-flip, free-ride:σ (e.g. free-ride:0.001), alie (the paper\'s z for n and f) or alie:z (e.g. alie:1.5), ipm:ε (e.g. ipm:0.5), mimic, copycat, free-ride-global, noisy-labels:p (e.g. noisy-labels:0.2)';

export function parseAttack(s: string): Attack {
  const [kind, arg] = s.split(':');
  const num = (what: string) => {
    const v = Number(arg);
    if (arg === undefined || !Number.isFinite(v)) throw new BflError(ErrorCode.BAD_CONFIG, `attack ${kind} needs a number: ${kind}:${what}`);
    return v;
  };
  switch (kind) {
    case 'none':
    case 'sign-flip':
    case 'label-flip':
    case 'mimic':
    case 'copycat':
    case 'free-ride-global':
      if (arg !== undefined) break;
      return { kind };
    case 'scale':
      return { kind, factor: num('λ') };
    case 'alie':
      return { kind, z: arg === undefined ? null : num('z') };
    case 'ipm':
      return { kind, epsilon: num('ε') };
    case 'noisy-labels': {
      const p = num('p');
      if (p < 0 || p > 1) break;
      return { kind, p };
    }
    case 'noise':
    case 'free-ride': {
      const sigma = num('σ');
      if (sigma < 0) break;
      return { kind, sigma };
    }
  }
  throw new BflError(ErrorCode.BAD_CONFIG, `unknown attack "${s}": use ${ATTACK_HELP}`);
}

export function formatAttack(a: Attack): string {
  switch (a.kind) {
    case 'scale':
      return `scale:${a.factor}`;
    case 'noise':
    case 'free-ride':
      return `${a.kind}:${a.sigma}`;
    case 'alie':
      return a.z === null ? 'alie' : `alie:${Number(a.z.toFixed(4))}`;
    case 'ipm':
      return `ipm:${a.epsilon}`;
    case 'noisy-labels':
      return `noisy-labels:${a.p}`;
    default:
      return a.kind;
  }
}

/** Apply an update attack to Δ (a new array; data attacks leave Δ alone). */
export function attackUpdate(a: Attack, delta: Float32Array, rng: Rng, honest?: HonestStats): Float32Array {
  switch (a.kind) {
    case 'alie': {
      // an unresolved z (no experiment around it) uses τ = 1.5, the fixed option of the literature
      const z = a.z ?? 1.5;
      return honest ? honest.mean.map((m, k) => m - z * honest.std[k]) : delta.slice();
    }
    case 'mimic':
      return honest?.latest?.length ? honest.latest[0].delta.slice() : delta.slice();
    case 'copycat':
      // nothing to copy yet (the first round): a free-rider has no work of its own to send
      return honest?.latest?.length ? honest.latest[rng.int(honest.latest.length)].delta.slice() : delta.map(() => 0);
    case 'free-ride-global':
      return honest?.previousGlobal ? honest.previousGlobal.slice() : delta.map(() => 0);
    case 'ipm':
      return (honest?.mean ?? delta).map((m) => -a.epsilon * m);
    case 'sign-flip':
      return delta.map((v) => -v);
    case 'scale':
      return delta.map((v) => v * a.factor);
    case 'noise':
      return delta.map((v) => v + a.sigma * rng.normal());
    case 'free-ride':
      return delta.map(() => a.sigma * rng.normal());
    default:
      return delta;
  }
}

/** Apply a data attack to training labels (a new array). */
export function attackLabels(a: Attack, y: Uint8Array, classes: number): Uint8Array {
  if (a.kind === 'noisy-labels') {
    // seeded by the batch itself, so a run is reproducible without a seed passed in
    const rng = new Rng(y.reduce((h, v) => (h * 31 + v) >>> 0, 7));
    return y.map((v) => (rng.float() < a.p ? rng.int(classes) : v));
  }
  return a.kind === 'label-flip' ? y.map((v) => classes - 1 - v) : y;
}

/** An attack as a client behaviour for one round (the product's seam, node/behaviour.ts). */
export function attackRound(a: Attack, honest?: () => HonestStats | undefined): RoundBehaviour {
  return {
    label: formatAttack(a),
    trainingLabels: (y, classes) => attackLabels(a, y, classes),
    update: (delta, rng) => attackUpdate(a, delta, rng, honest?.()),
  };
}

/** A client that runs the same attack every round (the daemon's --attack). */
export function attackBehaviour(a: Attack): ClientBehaviour {
  const round = attackRound(a);
  return { forRound: () => round };
}
