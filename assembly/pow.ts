// Proof-of-work nonce search in WebAssembly SIMD (AssemblyScript; `npm run build:wasm` builds
// src/mining/pow.wasm). The reference is PowSearcher in src/core/pow.ts: the same SHA-256
// midstate search, one compression per attempt. Here four nonces run at once, one per i32x4
// lane: a compression is ~3,000 128-bit operations for four hashes instead of ~2,000 scalar
// ones for one, and the JIT-compiled JS pays two shifts and an or for every rotation.
//
// Layout of the parameter block (`params()`, 32-bit words, filled by src/mining/pow-wasm.ts):
//   [0..8)   midstate: SHA-256 state after the header's whole 64-byte blocks
//   [8..24)  the last (padded) block as 16 big-endian words, nonce bytes zeroed
//   [24..32) out: the state of the candidate `search` found
// The nonce is 8 big-endian bytes at byte offset `nonceOffset` of the last block.

const PARAMS = memory.data(32 * 4, 16);
// Message schedule of the current four lanes: 64 v128.
const W = memory.data(64 * 16, 16);
const K = memory.data<u32>([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
  0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
  0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
  0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
  0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

export function params(): usize {
  return PARAMS;
}

@inline function vrotr(x: v128, n: i32): v128 {
  return v128.or(i32x4.shr_u(x, n), i32x4.shl(x, 32 - n));
}

/** K[t] + W[t] of the four lanes. */
@inline function KW(t: i32): v128 {
  return i32x4.add(v128.load32_splat(K + (t << 2)), v128.load(W + (t << 4)));
}

/** h + Σ1(e) + Ch(e, f, g) + K[t] + W[t]. */
@inline function T1(e: v128, f: v128, g: v128, h: v128, kw: v128): v128 {
  const s1 = v128.xor(v128.xor(vrotr(e, 6), vrotr(e, 11)), vrotr(e, 25));
  return i32x4.add(i32x4.add(h, s1), i32x4.add(v128.bitselect(f, g, e), kw));
}

/** Σ0(a) + Maj(a, b, c); where a and b differ the majority is c, else a. */
@inline function T2(a: v128, b: v128, c: v128): v128 {
  const s0 = v128.xor(v128.xor(vrotr(a, 2), vrotr(a, 13)), vrotr(a, 22));
  return i32x4.add(s0, v128.bitselect(c, a, v128.xor(a, b)));
}

@inline function word(i: i32): u32 {
  return load<u32>(PARAMS + (i << 2));
}

/**
 * Try nonces hi·2^32 + lo + i for i in [0, count) (the caller keeps lo + count ≤ 2^32). Returns
 * the first i whose hash's first word is ≤ t0, with that hash's state in out, or -1. The caller
 * compares the whole hash with the target: ≤ t0 on the first word is necessary, and a false
 * candidate needs the first word to equal t0 exactly (probability 2^-32).
 */
export function search(hi: u32, lo: u32, count: i32, nonceOffset: i32, t0: u32): i32 {
  const f = nonceOffset >>> 2; // first word the nonce touches
  const r = (nonceOffset & 3) << 3; // its bit offset inside that word
  // The nonce words of lane l: with r = 0, words f (hi) and f + 1 (lo + l); otherwise
  // w[f] = template | hi >>> r, w[f+1] = hi << (32 - r) | (lo + l) >>> r,
  // w[f+2] = (lo + l) << (32 - r) | template. Only the words holding lo differ between lanes.
  let wf: u32 = r == 0 ? hi : word(8 + f) | (hi >>> r);
  for (let i = 0; i < 16; i++) v128.store(W + (i << 4), i32x4.splat(word(8 + i)));
  v128.store(W + (f << 4), i32x4.splat(wf));
  const t0v = i32x4.splat(t0);
  // Rounds 0..f see only fixed words: run them once, in scalar.
  let sa = word(0), sb = word(1), sc = word(2), sd = word(3);
  let se = word(4), sf = word(5), sg = word(6), sh = word(7);
  for (let t = 0; t <= f; t++) {
    const wt: u32 = t == f ? wf : word(8 + t);
    const s1 = rotr<u32>(se, 6) ^ rotr<u32>(se, 11) ^ rotr<u32>(se, 25);
    const ch = (se & sf) ^ (~se & sg);
    const t1 = sh + s1 + ch + load<u32>(K + (t << 2)) + wt;
    const s0 = rotr<u32>(sa, 2) ^ rotr<u32>(sa, 13) ^ rotr<u32>(sa, 22);
    const maj = (sa & sb) ^ (sa & sc) ^ (sb & sc);
    sh = sg;
    sg = sf;
    sf = se;
    se = sd + t1;
    sd = sc;
    sc = sb;
    sb = sa;
    sa = t1 + s0 + maj;
  }
  const pa = i32x4.splat(sa), pb = i32x4.splat(sb), pc = i32x4.splat(sc), pd = i32x4.splat(sd);
  const pe = i32x4.splat(se), pf = i32x4.splat(sf), pg = i32x4.splat(sg), ph = i32x4.splat(sh);
  const hiTail = r == 0 ? i32x4.splat(0) : i32x4.splat(hi << (32 - r));
  const tail2 = i32x4.splat(word(8 + f + 2));
  const lanes = i32x4(0, 1, 2, 3);

  for (let base = 0; base < count; base += 4) {
    const lov = i32x4.add(i32x4.splat(lo + base), lanes);
    if (r == 0) {
      v128.store(W + ((f + 1) << 4), lov);
    } else {
      v128.store(W + ((f + 1) << 4), v128.or(hiTail, i32x4.shr_u(lov, r)));
      v128.store(W + ((f + 2) << 4), v128.or(tail2, i32x4.shl(lov, 32 - r)));
    }
    for (let t = 16; t < 64; t++) {
      const x = v128.load(W + ((t - 15) << 4));
      const y = v128.load(W + ((t - 2) << 4));
      const s0 = v128.xor(v128.xor(vrotr(x, 7), vrotr(x, 18)), i32x4.shr_u(x, 3));
      const s1 = v128.xor(v128.xor(vrotr(y, 17), vrotr(y, 19)), i32x4.shr_u(y, 10));
      const w16 = v128.load(W + ((t - 16) << 4));
      const w7 = v128.load(W + ((t - 7) << 4));
      v128.store(W + (t << 4), i32x4.add(i32x4.add(w16, s0), i32x4.add(w7, s1)));
    }
    let a = pa, b = pb, c = pc, d = pd, e = pe, ff = pf, g = pg, h = ph;
    // Rounds f + 1 .. 15 one at a time (f depends on the miner id's length), then 16 .. 63
    // eight per pass with the variables renamed instead of moved.
    for (let t = f + 1; t < 16; t++) {
      const t1 = T1(e, ff, g, h, KW(t));
      const t2 = T2(a, b, c);
      h = g;
      g = ff;
      ff = e;
      e = i32x4.add(d, t1);
      d = c;
      c = b;
      b = a;
      a = i32x4.add(t1, t2);
    }
    for (let t = 16; t < 64; t += 8) {
      let t1 = T1(e, ff, g, h, KW(t));
      d = i32x4.add(d, t1);
      h = i32x4.add(t1, T2(a, b, c));
      t1 = T1(d, e, ff, g, KW(t + 1));
      c = i32x4.add(c, t1);
      g = i32x4.add(t1, T2(h, a, b));
      t1 = T1(c, d, e, ff, KW(t + 2));
      b = i32x4.add(b, t1);
      ff = i32x4.add(t1, T2(g, h, a));
      t1 = T1(b, c, d, e, KW(t + 3));
      a = i32x4.add(a, t1);
      e = i32x4.add(t1, T2(ff, g, h));
      t1 = T1(a, b, c, d, KW(t + 4));
      h = i32x4.add(h, t1);
      d = i32x4.add(t1, T2(e, ff, g));
      t1 = T1(h, a, b, c, KW(t + 5));
      g = i32x4.add(g, t1);
      c = i32x4.add(t1, T2(d, e, ff));
      t1 = T1(g, h, a, b, KW(t + 6));
      ff = i32x4.add(ff, t1);
      b = i32x4.add(t1, T2(c, d, e));
      t1 = T1(ff, g, h, a, KW(t + 7));
      e = i32x4.add(e, t1);
      a = i32x4.add(t1, T2(b, c, d));
    }
    const h0 = i32x4.add(a, i32x4.splat(word(0)));
    const hit = i32x4.le_u(h0, t0v);
    const mask = i32x4.bitmask(hit);
    if (mask != 0) {
      // lanes hold increasing nonces: the lowest set bit is the first candidate
      const lane = ctz(mask);
      if (base + lane >= count) return -1;
      return found(base, lane, a, b, c, d, e, ff, g, h);
    }
  }
  return -1;
}

const LANES = memory.data(8 * 16, 16);

function found(base: i32, lane: i32, a: v128, b: v128, c: v128, d: v128, e: v128, f: v128, g: v128, h: v128): i32 {
  const v = LANES;
  v128.store(v, a);
  v128.store(v + 16, b);
  v128.store(v + 32, c);
  v128.store(v + 48, d);
  v128.store(v + 64, e);
  v128.store(v + 80, f);
  v128.store(v + 96, g);
  v128.store(v + 112, h);
  for (let i = 0; i < 8; i++) store<u32>(PARAMS + ((24 + i) << 2), word(i) + load<u32>(v + (i << 4) + (lane << 2)));
  return base + lane;
}
