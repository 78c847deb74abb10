/**
 * Consensus-critical vector arithmetic. Every miner must get the same bits, so each quantity
 * has one definition of its evaluation order, in float64:
 * - a dot product (or squared distance) runs over chunks of CHUNK coordinates in order; inside
 *   a chunk one accumulator adds the coordinates in order; the chunk sums are added in order;
 * - means and weighted sums run over the updates in canonical order (sorted by digest).
 * The pairwise matrix computes four pairs per pass over a row's chunk (register blocking: the
 * row is loaded once for four columns) and keeps each pair's order exactly as above, so entry
 * (i, j) has the bits of dot(v[i], v[j]). Chunks of 512 keep a slice of every vector in L2 while
 * all pairs use it. Measured (`bfl-node bench aggregate`): blocking halved the time of 100
 * updates of 159,010 parameters against a 4-accumulator unblocked loop.
 */

export const CHUNK = 512;

/** An update as received (float32) or a float64 quantity derived from updates. Every float32 is
 * a float64 exactly and is widened before any arithmetic, so a float32 vector gives the bits of
 * its float64 copy: the aggregation reads updates in place instead of copying each into a float64
 * array first (100 copies of 1.27 MB, each a fresh mapping under the launcher's mmap threshold:
 * docs/decisions.md, "What grew in the default aggregation job"). Each inner loop below sees one
 * array type only: V8 specialises a loop to the array types it has met, and the reference
 * pairwise fed both kinds ran at half speed (measured). pairwise widens a chunk of every vector
 * at a time into a float64 scratch (n·D copies against its n²·D/2 products); dotsWith, where a
 * copy would cost as much as the products, has a loop of its own for float32 vectors. */
export type Vector = Float32Array | Float64Array;

/** Coordinates lo..hi of x into row (from 0): exact for float32 and float64 alike. */
function widen(x: Vector, lo: number, hi: number, row: Float64Array): void {
  for (let k = lo; k < hi; k++) row[k - lo] = x[k];
}

/** n float64 rows of CHUNK coordinates in one allocation (pairwise's scratch). */
function scratchRows(n: number): Float64Array[] {
  const all = new Float64Array(n * CHUNK);
  return Array.from({ length: n }, (_, i) => all.subarray(i * CHUNK, (i + 1) * CHUNK));
}

function dotRange(a: Float64Array, b: Float64Array, lo: number, hi: number): number {
  let s = 0;
  for (let k = lo; k < hi; k++) s += a[k] * b[k];
  return s;
}

function sqDistRange(a: Float64Array, b: Float64Array, lo: number, hi: number): number {
  let s = 0;
  for (let k = lo; k < hi; k++) {
    const d = a[k] - b[k];
    s += d * d;
  }
  return s;
}

/** Four chunk sums of row `a` against columns b0..b3 (each exactly as dotRange / sqDistRange). */
function block4(kind: 'dot' | 'sqdist', a: Float64Array, b0: Float64Array, b1: Float64Array, b2: Float64Array, b3: Float64Array, lo: number, hi: number, out: Float64Array, at: number): void {
  let s0 = 0,
    s1 = 0,
    s2 = 0,
    s3 = 0;
  if (kind === 'dot') {
    for (let k = lo; k < hi; k++) {
      const x = a[k];
      s0 += x * b0[k];
      s1 += x * b1[k];
      s2 += x * b2[k];
      s3 += x * b3[k];
    }
  } else {
    for (let k = lo; k < hi; k++) {
      const x = a[k];
      const d0 = x - b0[k];
      const d1 = x - b1[k];
      const d2 = x - b2[k];
      const d3 = x - b3[k];
      s0 += d0 * d0;
      s1 += d1 * d1;
      s2 += d2 * d2;
      s3 += d3 * d3;
    }
  }
  out[at] += s0;
  out[at + 1] += s1;
  out[at + 2] += s2;
  out[at + 3] += s3;
}

/** block4's dot products for float32 columns: the same arithmetic (each element widened, then
 * multiplied and added in float64), a separate loop so that V8 keeps both specialised. */
function block4Dot32(a: Float64Array, b0: Float32Array, b1: Float32Array, b2: Float32Array, b3: Float32Array, lo: number, hi: number, out: Float64Array, at: number): void {
  let s0 = 0,
    s1 = 0,
    s2 = 0,
    s3 = 0;
  for (let k = lo; k < hi; k++) {
    const x = a[k];
    s0 += x * b0[k];
    s1 += x * b1[k];
    s2 += x * b2[k];
    s3 += x * b3[k];
  }
  out[at] += s0;
  out[at + 1] += s1;
  out[at + 2] += s2;
  out[at + 3] += s3;
}

function dotRange32(a: Float64Array, b: Float32Array, lo: number, hi: number): number {
  let s = 0;
  for (let k = lo; k < hi; k++) s += a[k] * b[k];
  return s;
}

function chunked(kernel: typeof dotRange, a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let lo = 0; lo < a.length; lo += CHUNK) s += kernel(a, b, lo, Math.min(a.length, lo + CHUNK));
  return s;
}

export function dot(a: Float64Array, b: Float64Array): number {
  return chunked(dotRange, a, b);
}

export function sqDistance(a: Float64Array, b: Float64Array): number {
  return chunked(sqDistRange, a, b);
}

/**
 * [dot(v[0], x), dot(v[1], x), ...] with exactly those bits (a product is commutative, each
 * pair's order is dot's), four vectors per pass over x as in `pairwise`: one accumulator per pair
 * is a chain of dependent additions, four chains keep the adder busy. Measured at 100 updates ×
 * 159,010: about a third of the time of 100 calls of dot.
 */
export function dotsWith(v: readonly Float32Array[] | readonly Float64Array[], x: Float64Array): Float64Array {
  const n = v.length;
  const out = new Float64Array(n);
  const dim = x.length;
  if (isFloat32(v)) {
    for (let lo = 0; lo < dim; lo += CHUNK) {
      const hi = Math.min(dim, lo + CHUNK);
      let j = 0;
      for (; j + 3 < n; j += 4) block4Dot32(x, v[j], v[j + 1], v[j + 2], v[j + 3], lo, hi, out, j);
      for (; j < n; j++) out[j] += dotRange32(x, v[j], lo, hi);
    }
  } else {
    for (let lo = 0; lo < dim; lo += CHUNK) {
      const hi = Math.min(dim, lo + CHUNK);
      let j = 0;
      for (; j + 3 < n; j += 4) block4('dot', x, v[j], v[j + 1], v[j + 2], v[j + 3], lo, hi, out, j);
      for (; j < n; j++) out[j] += dotRange(x, v[j], lo, hi);
    }
  }
  return out;
}

const isFloat32 = (v: readonly Float32Array[] | readonly Float64Array[]): v is readonly Float32Array[] => v.length > 0 && v[0] instanceof Float32Array;

/**
 * Symmetric n×n matrix (row-major) of dot products or squared distances. Entry (i, j) has
 * exactly the bits of `dot(v[i], v[j])` / `sqDistance(v[i], v[j])`.
 */
export function pairwise(v: readonly Vector[], kind: 'dot' | 'sqdist'): Float64Array {
  const n = v.length;
  const out = new Float64Array(n * n);
  if (n === 0) return out;
  const dim = v[0].length;
  const kernel = kind === 'dot' ? dotRange : sqDistRange;
  const rows = scratchRows(n);
  for (let lo = 0; lo < dim; lo += CHUNK) {
    const hi = Math.min(dim, lo + CHUNK);
    const len = hi - lo;
    for (let i = 0; i < n; i++) widen(v[i], lo, hi, rows[i]);
    for (let i = 0; i < n; i++) {
      const a = rows[i];
      let j = kind === 'dot' ? i : i + 1;
      for (; j + 3 < n; j += 4) block4(kind, a, rows[j], rows[j + 1], rows[j + 2], rows[j + 3], 0, len, out, i * n + j);
      for (; j < n; j++) out[i * n + j] += kernel(a, rows[j], 0, len);
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) out[i * n + j] = out[j * n + i];
  return out;
}

/**
 * Computes `pairwise` with the same bits, faster: the WebAssembly SIMD kernel and its worker
 * threads (src/kernels/gram.ts) implement it. The aggregation can be given one; consensus needs
 * only that the bits are those of the reference below.
 */
export interface GramKernel {
  readonly name: string;
  pairwise(v: readonly Vector[], kind: 'dot' | 'sqdist'): Float64Array;
}

export const referenceGramKernel: GramKernel = { name: 'js', pairwise };

/** Coordinate-wise mean over the vectors in the given order. */
export function mean(v: readonly Vector[]): Float64Array {
  const out = new Float64Array(v[0].length);
  for (const x of v) for (let k = 0; k < out.length; k++) out[k] += x[k];
  for (let k = 0; k < out.length; k++) out[k] /= v.length;
  return out;
}

/** Σ w_i v_i over the vectors in the given order (zero weights skipped: same bits as adding 0·x, faster). */
export function weightedSum(v: readonly Vector[], w: readonly number[]): Float64Array {
  const out = new Float64Array(v[0]?.length ?? 0);
  for (let i = 0; i < v.length; i++) {
    const wi = w[i];
    if (wi === 0) continue;
    const x = v[i];
    for (let k = 0; k < out.length; k++) out[k] += wi * x[k];
  }
  return out;
}

export function toFloat64(v: Float32Array): Float64Array {
  // the typed-array constructor converts natively; Float64Array.from went through the iterator
  return new Float64Array(v);
}

/** Cosine similarity matrix from a Gram matrix; a zero vector has similarity 0 with everything
 * (scikit-learn's convention: normalising leaves it at zero). */
export function cosineFromGram(g: Float64Array, n: number): Float64Array {
  const norms = new Float64Array(n);
  for (let i = 0; i < n; i++) norms[i] = Math.sqrt(g[i * n + i]);
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const d = norms[i] * norms[j];
      out[i * n + j] = d === 0 ? 0 : Math.min(1, Math.max(-1, g[i * n + j] / d));
    }
  }
  return out;
}
