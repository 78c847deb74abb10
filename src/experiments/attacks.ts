/**
 * Attacks a client can run (docs/architecture.md, "The simulator"), pluggable per client and switchable during a run.
 * Update attacks change Δ before it is signed; data attacks change the training data.
 *   sign-flip        Δ → −Δ
 *   scale:λ          Δ → λΔ (model replacement / boosting)
 *   noise:σ          Δ → Δ + N(0, σ²) per coordinate (a broken or lazy device)
 *   label-flip       labels y → C − 1 − y while training (data poisoning)
 *   free-ride:σ      Δ → N(0, σ²): no training at all, a "curious" client after rewards (case ii)
 *   alie:z           "a little is enough" (Baruch et al. 2019): Δ → μ − z·σ per coordinate
 *   ipm:ε            inner product manipulation (Xie et al. 2020): Δ → −ε·μ
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
  | { kind: 'alie'; z: number }
  | { kind: 'ipm'; epsilon: number };

/** What the omniscient attacks of the literature know: the honest updates' statistics (the simulator's). */
export type { HonestStats };

export const ATTACK_HELP = 'none, sign-flip, scale:λ (e.g. scale:10), noise:σ (e.g. noise:0.05), label-flip, free-ride:σ (e.g. free-ride:0.001), alie:z (e.g. alie:1), ipm:ε (e.g. ipm:0.5)';

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
      if (arg !== undefined) break;
      return { kind };
    case 'scale':
      return { kind, factor: num('λ') };
    case 'alie':
      return { kind, z: num('z') };
    case 'ipm':
      return { kind, epsilon: num('ε') };
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
      return `alie:${a.z}`;
    case 'ipm':
      return `ipm:${a.epsilon}`;
    default:
      return a.kind;
  }
}

/** Apply an update attack to Δ (a new array; data attacks leave Δ alone). */
export function attackUpdate(a: Attack, delta: Float32Array, rng: Rng, honest?: HonestStats): Float32Array {
  switch (a.kind) {
    case 'alie':
      return honest ? honest.mean.map((m, k) => m - a.z * honest.std[k]) : delta.slice();
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
