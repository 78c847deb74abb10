// The Gram (or squared-distance) matrix kernel in WebAssembly SIMD (AssemblyScript; `npm run
// build:wasm` builds src/kernels/gram.wasm). It must give the bits of the reference,
// pairwise() in src/core/aggregation/vectors.ts: for every pair (i, j) and every chunk of 512
// coordinates, one float64 accumulator starts at 0 and adds x_i[k]·x_j[k] (or (x_i[k] − x_j[k])²)
// for k in order; the chunk sums are then added in chunk order onto 0. So the vectorisation is
// across independent accumulators only: an f64x2 holds the same chunk of two pairs (rows i and
// i + 1 against one column), never two parts of one pair's sum. f64x2.mul and f64x2.add round
// each lane like the scalar ops (no fused multiply-add, no relaxed SIMD).
//
// Memory (imported, shared between threads): n vectors of dim float64, vector i at
// vecs + i·dim·8, n a multiple of 4 (the caller pads with zero vectors). Outputs are n×n
// float64 matrices, row-major; only blocks on or above the diagonal of 4×4 blocks are written
// (a diagonal block also gets its lower half, which equals the upper half: x·y = y·x).

const CHUNK: i32 = 512;

/**
 * Chunk `c` of every pair: writes (add = 0) or adds onto (add = 1) out[i·n + j] the chunk's sum.
 * kind 0: dot products; 1: squared distances.
 */
export function chunk(kind: i32, vecs: usize, n: i32, dim: i32, c: i32, out: usize, add: i32): void {
  const lo = c * CHUNK;
  const hi = min(dim, lo + CHUNK);
  const stride = <usize>dim << 3;
  for (let i = 0; i < n; i += 4) {
    const r0 = vecs + <usize>i * stride;
    for (let j = i; j < n; j += 4) {
      const c0 = vecs + <usize>j * stride;
      if (kind == 0) block4x4Dot(r0, c0, stride, lo, hi, out, n, i, j, add);
      else block4x4Sq(r0, c0, stride, lo, hi, out, n, i, j, add);
    }
  }
}

/** The lanes (rows i + l, col j + col) of a into out: stored or added. */
@inline function put(out: usize, n: i32, row: i32, col: i32, a: v128, add: i32): void {
  const p0 = out + ((<usize>row * n + col) << 3);
  const p1 = p0 + (<usize>n << 3);
  if (add) {
    store<f64>(p0, load<f64>(p0) + f64x2.extract_lane(a, 0));
    store<f64>(p1, load<f64>(p1) + f64x2.extract_lane(a, 1));
  } else {
    store<f64>(p0, f64x2.extract_lane(a, 0));
    store<f64>(p1, f64x2.extract_lane(a, 1));
  }
}

/** Rows r, r + 1 of the block at coordinate k as one f64x2. */
@inline function rows2(r: usize, stride: usize, k: usize): v128 {
  return v128.load64_lane(r + stride + k, v128.load64_zero(r + k), 1);
}

function block4x4Dot(r0: usize, c0: usize, stride: usize, lo: i32, hi: i32, out: usize, n: i32, i: i32, j: i32, add: i32): void {
  const r2 = r0 + 2 * stride;
  const c1 = c0 + stride;
  const c2 = c1 + stride;
  const c3 = c2 + stride;
  let a00 = f64x2.splat(0), a01 = f64x2.splat(0), a02 = f64x2.splat(0), a03 = f64x2.splat(0);
  let a20 = f64x2.splat(0), a21 = f64x2.splat(0), a22 = f64x2.splat(0), a23 = f64x2.splat(0);
  for (let k = <usize>lo << 3, end = <usize>hi << 3; k < end; k += 8) {
    const x01 = rows2(r0, stride, k);
    const x23 = rows2(r2, stride, k);
    const y0 = v128.load64_splat(c0 + k);
    const y1 = v128.load64_splat(c1 + k);
    const y2 = v128.load64_splat(c2 + k);
    const y3 = v128.load64_splat(c3 + k);
    a00 = f64x2.add(a00, f64x2.mul(x01, y0));
    a01 = f64x2.add(a01, f64x2.mul(x01, y1));
    a02 = f64x2.add(a02, f64x2.mul(x01, y2));
    a03 = f64x2.add(a03, f64x2.mul(x01, y3));
    a20 = f64x2.add(a20, f64x2.mul(x23, y0));
    a21 = f64x2.add(a21, f64x2.mul(x23, y1));
    a22 = f64x2.add(a22, f64x2.mul(x23, y2));
    a23 = f64x2.add(a23, f64x2.mul(x23, y3));
  }
  put(out, n, i, j, a00, add);
  put(out, n, i, j + 1, a01, add);
  put(out, n, i, j + 2, a02, add);
  put(out, n, i, j + 3, a03, add);
  put(out, n, i + 2, j, a20, add);
  put(out, n, i + 2, j + 1, a21, add);
  put(out, n, i + 2, j + 2, a22, add);
  put(out, n, i + 2, j + 3, a23, add);
}

function block4x4Sq(r0: usize, c0: usize, stride: usize, lo: i32, hi: i32, out: usize, n: i32, i: i32, j: i32, add: i32): void {
  const r2 = r0 + 2 * stride;
  const c1 = c0 + stride;
  const c2 = c1 + stride;
  const c3 = c2 + stride;
  let a00 = f64x2.splat(0), a01 = f64x2.splat(0), a02 = f64x2.splat(0), a03 = f64x2.splat(0);
  let a20 = f64x2.splat(0), a21 = f64x2.splat(0), a22 = f64x2.splat(0), a23 = f64x2.splat(0);
  for (let k = <usize>lo << 3, end = <usize>hi << 3; k < end; k += 8) {
    const x01 = rows2(r0, stride, k);
    const x23 = rows2(r2, stride, k);
    const y0 = v128.load64_splat(c0 + k);
    const y1 = v128.load64_splat(c1 + k);
    const y2 = v128.load64_splat(c2 + k);
    const y3 = v128.load64_splat(c3 + k);
    let d = f64x2.sub(x01, y0);
    a00 = f64x2.add(a00, f64x2.mul(d, d));
    d = f64x2.sub(x01, y1);
    a01 = f64x2.add(a01, f64x2.mul(d, d));
    d = f64x2.sub(x01, y2);
    a02 = f64x2.add(a02, f64x2.mul(d, d));
    d = f64x2.sub(x01, y3);
    a03 = f64x2.add(a03, f64x2.mul(d, d));
    d = f64x2.sub(x23, y0);
    a20 = f64x2.add(a20, f64x2.mul(d, d));
    d = f64x2.sub(x23, y1);
    a21 = f64x2.add(a21, f64x2.mul(d, d));
    d = f64x2.sub(x23, y2);
    a22 = f64x2.add(a22, f64x2.mul(d, d));
    d = f64x2.sub(x23, y3);
    a23 = f64x2.add(a23, f64x2.mul(d, d));
  }
  put(out, n, i, j, a00, add);
  put(out, n, i, j + 1, a01, add);
  put(out, n, i, j + 2, a02, add);
  put(out, n, i, j + 3, a03, add);
  put(out, n, i + 2, j, a20, add);
  put(out, n, i + 2, j + 1, a21, add);
  put(out, n, i + 2, j + 2, a22, add);
  put(out, n, i + 2, j + 3, a23, add);
}

/**
 * acc[e] += part_c[e] for c = 0 .. count − 1 in order, for every entry e < size: the chunk sums
 * of a wave of chunks (matrices of `size` float64 one after another from `parts`) added onto
 * the running matrix in chunk order. Chunk-outer keeps the reads streaming; each entry still
 * sees its chunks in order. Two entries per f64x2 (independent sums).
 */
export function reduce(acc: usize, parts: usize, count: i32, size: i32): void {
  const bytes = <usize>size << 3;
  const even = bytes & ~(<usize>15);
  for (let c = 0; c < count; c++) {
    const p = parts + <usize>c * bytes;
    for (let e: usize = 0; e < even; e += 16) v128.store(acc + e, f64x2.add(v128.load(acc + e), v128.load(p + e)));
    if (even < bytes) store<f64>(acc + even, load<f64>(acc + even) + load<f64>(p + even));
  }
}
