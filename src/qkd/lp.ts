/**
 * A small builder for (mixed-integer) linear programs and their solution with HiGHS (npm
 * `highs`, WebAssembly). Models are plain typed arrays (CSR rows) so that a worker thread can
 * receive them as bytes; `solveInThread` is the simple path unit tests use, `HighsWorker` runs
 * the same solve off the event loop for the CLI and experiments.
 */
import { Worker } from 'node:worker_threads';
import type { Highs } from 'highs';

/** A linear program: minimise colCost·x subject to rowLower ≤ A x ≤ rowUpper and bounds. */
export interface LpModel {
  numCols: number;
  numRows: number;
  colCost: Float64Array;
  colLower: Float64Array;
  colUpper: Float64Array;
  /** 1 for an integer column, 0 for a continuous one. */
  integer: Uint8Array;
  rowLower: Float64Array;
  rowUpper: Float64Array;
  /** CSR: row i holds entries rowStart[i] .. rowStart[i+1]-1. */
  rowStart: Int32Array;
  index: Int32Array;
  value: Float64Array;
  offset: number;
}

export interface SolveOptions {
  /** Seconds before HiGHS stops with its best solution so far (default 60: a plan is an
   * interactive command; the experiment sets its own). */
  timeLimit: number;
  /** Relative MIP gap at which HiGHS stops (HiGHS's own default, 1e-4). */
  mipRelGap: number;
}

export const defaultSolveOptions: SolveOptions = { timeLimit: 60, mipRelGap: 1e-4 };

export type SolveStatus = 'optimal' | 'time-limit' | 'infeasible' | 'unbounded' | 'error';

export interface LpSolution {
  status: SolveStatus;
  /** Objective of the best solution found (NaN without one). */
  objective: number;
  /** Best lower bound HiGHS proved (equals the objective when optimal). */
  bound: number;
  x: Float64Array;
  ms: number;
}

const INF = Number.POSITIVE_INFINITY;

/** Builds an LpModel one column and one row at a time. */
export class LpBuilder {
  private cost: number[] = [];
  private lo: number[] = [];
  private hi: number[] = [];
  private int: number[] = [];
  private rlo: number[] = [];
  private rhi: number[] = [];
  private start: number[] = [0];
  private idx: number[] = [];
  private val: number[] = [];
  offset = 0;

  get numCols(): number {
    return this.cost.length;
  }

  get numRows(): number {
    return this.rlo.length;
  }

  /** Adds a column; returns its index. */
  addVar(cost: number, o: { lb?: number; ub?: number; integer?: boolean } = {}): number {
    this.cost.push(cost);
    this.lo.push(o.lb ?? 0);
    this.hi.push(o.ub ?? INF);
    this.int.push(o.integer ? 1 : 0);
    return this.cost.length - 1;
  }

  /** Adds lb ≤ Σ coef·x[col] ≤ ub (terms on the same column are summed). */
  addRow(terms: [number, number][], lb: number, ub: number): number {
    const merged = new Map<number, number>();
    for (const [c, v] of terms) merged.set(c, (merged.get(c) ?? 0) + v);
    for (const [c, v] of [...merged].sort((a, b) => a[0] - b[0])) {
      if (v === 0) continue;
      this.idx.push(c);
      this.val.push(v);
    }
    this.start.push(this.idx.length);
    this.rlo.push(lb);
    this.rhi.push(ub);
    return this.rlo.length - 1;
  }

  /** Multiplies a column's cost (scenario probabilities weight second-stage costs). */
  scaleCost(col: number, factor: number): void {
    this.cost[col] *= factor;
  }

  /** Fixes a column to a value (evaluating a given first stage). */
  fix(col: number, value: number): void {
    this.lo[col] = value;
    this.hi[col] = value;
  }

  build(): LpModel {
    return {
      numCols: this.cost.length,
      numRows: this.rlo.length,
      colCost: Float64Array.from(this.cost),
      colLower: Float64Array.from(this.lo),
      colUpper: Float64Array.from(this.hi),
      integer: Uint8Array.from(this.int),
      rowLower: Float64Array.from(this.rlo),
      rowUpper: Float64Array.from(this.rhi),
      rowStart: Int32Array.from(this.start),
      index: Int32Array.from(this.idx),
      value: Float64Array.from(this.val),
      offset: this.offset,
    };
  }
}

let highsPromise: Promise<Highs> | undefined;

export function loadHighs(): Promise<Highs> {
  highsPromise ??= import('highs').then((m) => (m.default as unknown as () => Promise<Highs>)());
  return highsPromise;
}

/** Solves in this thread (blocks the event loop for the duration of the solve). */
export async function solveInThread(m: LpModel, opts: Partial<SolveOptions> = {}): Promise<LpSolution> {
  const highs = await loadHighs();
  return solveWith(highs, m, { ...defaultSolveOptions, ...opts });
}

export function solveWith(highs: Highs, m: LpModel, o: SolveOptions): LpSolution {
  const t0 = performance.now();
  const hasInt = m.integer.some((v) => v === 1);
  const model = highs.createModel({
    numCols: m.numCols,
    numRows: m.numRows,
    offset: m.offset,
    colCost: m.colCost,
    colLower: m.colLower.map((v) => (v === INF ? highs.infinity : v === -INF ? -highs.infinity : v)),
    colUpper: m.colUpper.map((v) => (v === INF ? highs.infinity : v === -INF ? -highs.infinity : v)),
    rowLower: m.rowLower.map((v) => (v === -INF ? -highs.infinity : v === INF ? highs.infinity : v)),
    rowUpper: m.rowUpper.map((v) => (v === INF ? highs.infinity : v === -INF ? -highs.infinity : v)),
    matrix: { format: 'csr', numRows: m.numRows, numCols: m.numCols, starts: m.rowStart, indices: m.index, values: m.value },
    ...(hasInt ? { integrality: Int32Array.from(m.integer) as unknown as Int32Array } : {}),
  });
  try {
    // One thread: the machine is shared and the wasm build is single-threaded anyway.
    model.options.set({ output_flag: false, time_limit: o.timeLimit, mip_rel_gap: o.mipRelGap, random_seed: 0 });
    model.run();
    const code = model.getModelStatus();
    const S = highs.constants.modelStatus as unknown as Record<string, number>;
    const x = Float64Array.from(model.getSolution().colValue);
    const objective = model.getObjectiveValue();
    let status: SolveStatus;
    if (code === S.optimal) status = 'optimal';
    else if (code === S.timeLimit) status = x.length === m.numCols && Number.isFinite(objective) ? 'time-limit' : 'error';
    else if (code === S.infeasible) status = 'infeasible';
    else if (code === S.unbounded || code === S.unboundedOrInfeasible) status = 'unbounded';
    else status = 'error';
    const bound = hasInt ? Number(model.info.get('mip_dual_bound')) : objective;
    return { status, objective: status === 'optimal' || status === 'time-limit' ? objective : Number.NaN, bound, x, ms: performance.now() - t0 };
  } finally {
    model.dispose();
  }
}

/** One worker thread holding one HiGHS instance; solves run one after another. */
export class HighsWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (s: LpSolution) => void; reject: (e: Error) => void }>();
  private nextId = 0;

  constructor() {
    this.worker = new Worker(new URL('./lp-worker.ts', import.meta.url));
    this.worker.on('message', (msg: { id: number; solution?: LpSolution; error?: string }) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error !== undefined) p.reject(new Error(msg.error));
      else p.resolve(msg.solution!);
    });
    this.worker.on('error', (e) => {
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    });
  }

  solve(m: LpModel, opts: Partial<SolveOptions> = {}): Promise<LpSolution> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, model: m, options: { ...defaultSolveOptions, ...opts } });
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** Where solves run: in this thread (tests) or in a worker (CLI, experiments). */
export interface LpSolver {
  solve(m: LpModel, opts?: Partial<SolveOptions>): Promise<LpSolution>;
}

export const inThreadSolver: LpSolver = { solve: solveInThread };
