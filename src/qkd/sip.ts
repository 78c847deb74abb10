/**
 * Two-stage stochastic (integer) programs as their deterministic equivalent (Birge &
 * Louveaux, ch. 3; the paper's eq. 21): min c·x + Σ_s p_s q_s·y_s subject to the first-stage
 * rows on x and, per scenario s, the recourse rows on (x, y_s). The QKD planner (plan.ts) and the
 * textbook farmer problem (tests) go through this one builder.
 */
import { LpBuilder, type LpModel } from './lp.ts';

export interface TwoStageProblem<F> {
  /** Scenario probabilities (they must sum to 1). */
  probabilities: number[];
  /** Adds the first-stage columns and rows; returns what the recourse needs (e.g. column ids). */
  firstStage(b: LpBuilder): F;
  /** Adds scenario s's recourse columns and rows. Costs are written as for scenario s alone;
   * the builder weights them by p_s. */
  secondStage(b: LpBuilder, first: F, s: number): void;
}

export interface DeterministicEquivalent<F> {
  model: LpModel;
  first: F;
  /** Columns [firstCols.start, firstCols.end) are the first stage. */
  firstCols: { start: number; end: number };
  /** Columns of scenario s: [scenarioCols[s].start, scenarioCols[s].end). */
  scenarioCols: { start: number; end: number }[];
}

export interface BuildOptions {
  /** Fix the first-stage columns to these values (in column order): the recourse-only problem
   * that evaluates a given plan (EEV, the cost of a heuristic's reservations). */
  fixFirst?: ArrayLike<number>;
}

export function buildDeterministicEquivalent<F>(p: TwoStageProblem<F>, o: BuildOptions = {}): DeterministicEquivalent<F> {
  const sum = p.probabilities.reduce((a, b) => a + b, 0);
  if (p.probabilities.length === 0 || Math.abs(sum - 1) > 1e-9 || p.probabilities.some((q) => q < 0)) {
    throw new RangeError(`scenario probabilities must be non-negative and sum to 1 (sum ${sum})`);
  }
  const b = new LpBuilder();
  const first = p.firstStage(b);
  const firstCols = { start: 0, end: b.numCols };
  if (o.fixFirst) {
    if (o.fixFirst.length !== firstCols.end) throw new RangeError(`fixFirst has ${o.fixFirst.length} values for ${firstCols.end} first-stage columns`);
    for (let j = 0; j < firstCols.end; j++) b.fix(j, o.fixFirst[j]);
  }
  const scenarioCols: { start: number; end: number }[] = [];
  p.probabilities.forEach((prob, s) => {
    const start = b.numCols;
    p.secondStage(b, first, s);
    for (let j = start; j < b.numCols; j++) b.scaleCost(j, prob);
    scenarioCols.push({ start, end: b.numCols });
  });
  return { model: b.build(), first, firstCols, scenarioCols };
}

/** c·x over the first-stage columns of a solution. */
export function firstStageCost(de: DeterministicEquivalent<unknown>, x: ArrayLike<number>): number {
  let c = 0;
  for (let j = de.firstCols.start; j < de.firstCols.end; j++) c += de.model.colCost[j] * x[j];
  return c;
}

/** p_s q_s·y_s of one scenario (already weighted by its probability). */
export function scenarioCost(de: DeterministicEquivalent<unknown>, x: ArrayLike<number>, s: number): number {
  let c = 0;
  for (let j = de.scenarioCols[s].start; j < de.scenarioCols[s].end; j++) c += de.model.colCost[j] * x[j];
  return c;
}
