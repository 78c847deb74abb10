/**
 * Scoring + aggregation time (`bfl-node bench aggregate`): n updates of dimension D through
 * BFL-MEC (mean, Gram matrix of n + 1 points, DBSCAN, weights, weighted sum), the median of
 * several runs, and the share taken by the pairwise matrix, which is O(n² · D) and dominates.
 * Default size: 100 updates of the default MLP (784-200-10: 159,010 parameters).
 * Measured with the fastest Gram kernel here (WebAssembly SIMD on every core, src/kernels) and
 * with the JS reference, whose bits it must give (checked on every run). With --reference-blas,
 * numpy (OpenBLAS) computes the same float64 Gram matrix in the same run (a yardstick only).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgreementAggregator } from '../src/core/aggregation/agreement.ts';
import type { UpdateInput } from '../src/core/aggregation/types.ts';
import { mean, referenceGramKernel, toFloat64, type GramKernel } from '../src/core/aggregation/vectors.ts';
import { Rng } from '../src/core/random.ts';
import { ThreadedGramKernel, WasmGramKernel } from '../src/kernels/gram.ts';
import { median } from './stats.ts';

export const DEFAULT_MLP_PARAMS = 784 * 200 + 200 + 200 * 10 + 10;

export interface AggregateBench {
  clients: number;
  dimension: number;
  kernel: string; // the Gram kernel of `ms` and `pairwiseMs`
  ms: number; // median total with that kernel
  pairwiseMs: number; // median of its Gram matrix alone
  pairwiseShare: number;
  msReference: number; // median total with the JS reference kernel
  pairwiseReferenceMs: number;
  pairwiseWasmOneThreadMs: number;
  /** CPU time of the one-thread WebAssembly Gram matrix: on a shared machine wall-clock times
   * measure the other work too. */
  pairwiseWasmOneThreadCpuMs: number;
  /** The kernels gave the reference's bits: the Gram matrix and the whole aggregation result. */
  bitIdentical: boolean;
  blasMs?: number; // numpy X·Xᵀ of the same points, median (with --reference-blas)
  blas?: string;
  ratioToBlas?: number; // pairwiseMs / blasMs
  blasCpuMs?: number; // CPU time of all of BLAS's threads, median
  ratioToBlasCpu?: number; // pairwiseWasmOneThreadCpuMs / blasCpuMs: work for work
  runs: number;
  loadAverage1m: number;
}

function updates(n: number, dim: number, seed = 1): UpdateInput[] {
  const rng = new Rng(seed);
  const dir = Float32Array.from({ length: dim }, () => rng.normal());
  return Array.from({ length: n }, (_, i) => {
    const delta = Float32Array.from(dir, (x) => (i % 10 < 8 ? x : -x) * 0.01 + rng.normal() * 0.005);
    return { clientId: `c${i}`, digest: createHash('sha256').update(`${seed}/${i}`).digest(), delta, sampleCount: 100, staleness: 0 };
  });
}

const bits = (a: Float64Array | Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** numpy's median time for X·Xᵀ of the points, or undefined without python3 and numpy. */
function blasReference(points: Float64Array[], runs: number): { ms: number; cpuMs: number; blas: string } | undefined {
  const file = join(tmpdir(), `bfl-gram-${process.pid}.f64`);
  try {
    writeFileSync(file, Buffer.concat(points.map(bits)));
    const script = new URL('./gram_blas.py', import.meta.url).pathname;
    // Debian's python3 first: python3-numpy with OpenBLAS is what --reference-blas documents
    for (const python of ['/usr/bin/python3', 'python3']) {
      try {
        const out = execFileSync(python, [script, file, String(points.length), String(points[0].length), String(runs)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
        const r = JSON.parse(out.trim().split('\n').pop()!) as { ms: number; cpuMs: number; numpy: string; blas: string };
        return { ms: r.ms, cpuMs: r.cpuMs, blas: `numpy ${r.numpy}, ${r.blas}` };
      } catch {
        // this interpreter has no numpy: try the next
      }
    }
    return undefined;
  } finally {
    rmSync(file, { force: true });
  }
}

export async function benchAggregate(opts: { clients?: number; dim?: number; runs?: number; referenceBlas?: boolean; kernel?: GramKernel } = {}): Promise<AggregateBench> {
  const loadAverage1m = loadavg()[0];
  const n = opts.clients ?? 100;
  const dim = opts.dim ?? DEFAULT_MLP_PARAMS;
  const runs = opts.runs ?? 5;
  const ups = updates(n, dim);
  const previous = new Float32Array(dim);
  const input = { previous, updates: ups, baseReward: 100_000_000n };
  const threaded = opts.kernel ? undefined : await ThreadedGramKernel.create();
  const kernel = opts.kernel ?? threaded ?? WasmGramKernel.create() ?? referenceGramKernel;
  const wasm = WasmGramKernel.create() ?? referenceGramKernel;
  try {
    const vs = ups.map((u) => toFloat64(u.delta));
    const points = [...vs, mean(vs)];
    const time = (f: () => unknown) => {
      const t = performance.now();
      f();
      return performance.now() - t;
    };
    // the default rule (agreement scoring, issue 11) with the state of one earlier aggregation:
    // every client has a history and the momentum exists, the most work a state asks for
    const fast = new AgreementAggregator();
    fast.kernel = kernel;
    const ref = new AgreementAggregator();
    const state = ref.aggregate({ ...input, updates: updates(n, dim, 2) }, ref.initialState()).state;
    const m = { total: [] as number[], pw: [] as number[], totalRef: [] as number[], pwRef: [] as number[], pwWasm: [] as number[], pwWasmCpu: [] as number[] };
    let bitIdentical = true;
    for (let r = 0; r < runs + 1; r++) {
      let fastResult, refResult, g, gRef, gWasm;
      const t = [time(() => (fastResult = fast.aggregate(input, state).result)), time(() => (g = kernel.pairwise(points, 'dot')))];
      const tr = [time(() => (refResult = ref.aggregate(input, state).result)), time(() => (gRef = referenceGramKernel.pairwise(points, 'dot')))];
      const cpu0 = process.threadCpuUsage().user;
      const tw = time(() => (gWasm = wasm.pairwise(points, 'dot')));
      const cpuMs = (process.threadCpuUsage().user - cpu0) / 1000;
      bitIdentical &&= bits(g!).equals(bits(gRef!)) && bits(gWasm!).equals(bits(gRef!)) && bits(fastResult!.model).equals(bits(refResult!.model));
      if (r === 0) continue; // warm-up
      m.total.push(t[0]);
      m.pw.push(t[1]);
      m.totalRef.push(tr[0]);
      m.pwRef.push(tr[1]);
      m.pwWasm.push(tw);
      m.pwWasmCpu.push(cpuMs);
    }
    const ms = median(m.total);
    const pairwiseMs = median(m.pw);
    const blas = opts.referenceBlas ? blasReference(points, runs) : undefined;
    const r1 = (x: number) => Number(x.toFixed(1));
    return {
      clients: n,
      dimension: dim,
      kernel: kernel.name,
      ms: r1(ms),
      pairwiseMs: r1(pairwiseMs),
      pairwiseShare: Number((pairwiseMs / ms).toFixed(3)),
      msReference: r1(median(m.totalRef)),
      pairwiseReferenceMs: r1(median(m.pwRef)),
      pairwiseWasmOneThreadMs: r1(median(m.pwWasm)),
      pairwiseWasmOneThreadCpuMs: r1(median(m.pwWasmCpu)),
      bitIdentical,
      ...(blas
        ? { blasMs: r1(blas.ms), blas: blas.blas, ratioToBlas: Number((pairwiseMs / blas.ms).toFixed(2)), blasCpuMs: r1(blas.cpuMs), ratioToBlasCpu: Number((median(m.pwWasmCpu) / blas.cpuMs).toFixed(2)) }
        : {}),
      runs,
      loadAverage1m: Number(loadAverage1m.toFixed(2)),
    };
  } finally {
    await threaded?.close();
  }
}
