/**
 * The proof-of-work search in WebAssembly SIMD: assembly/pow.ts, built into pow.wasm beside
 * this file by `npm run build:wasm`. It runs the same midstate search as PowSearcher
 * (src/core/pow.ts, the reference: one compression per attempt) on four nonces at once, and
 * finds the same first nonce; test/unit/pow-wasm.test.ts checks both on random headers and
 * targets. The module is compiled synchronously once per thread (1.5 kB), so a mining worker
 * can use it from its first job.
 */
import { readFileSync } from 'node:fs';
import { PowSearcher, stateBelowTarget, type PowSolution } from '../core/pow.ts';
import { stateToBytes } from '../core/sha256.ts';

interface PowExports {
  memory: WebAssembly.Memory;
  params(): number;
  search(hi: number, lo: number, count: number, nonceOffset: number, t0: number): number;
}

let instance: PowExports | null | undefined;

/** This thread's instance, or null when the engine cannot run it (no WebAssembly SIMD). */
function powInstance(): PowExports | null {
  if (instance === undefined) {
    try {
      const module = new WebAssembly.Module(readFileSync(new URL('./pow.wasm', import.meta.url)));
      instance = new WebAssembly.Instance(module, {}).exports as unknown as PowExports;
    } catch {
      instance = null;
    }
  }
  return instance;
}

/** Whether this engine runs the WebAssembly search (it needs SIMD). */
export function wasmPowAvailable(): boolean {
  return powInstance() !== null;
}

/** Nonces per call into WebAssembly: keeps `lo + count` inside 32 bits and the count an i32. */
const MAX_CALL = 2 ** 30;

export class WasmPowSearcher {
  private readonly ref: PowSearcher;
  private readonly ex: PowExports;

  private constructor(ref: PowSearcher, ex: PowExports) {
    this.ref = ref;
    this.ex = ex;
  }

  /**
   * A searcher for this prefix, or null when the WebAssembly search does not apply: no SIMD in
   * this engine, or a header of 120 bytes or more (the nonce would not sit in one last block).
   */
  static create(prefix: Uint8Array, difficulty: bigint): WasmPowSearcher | null {
    const ex = powInstance();
    if (!ex) return null;
    const ref = new PowSearcher(prefix, difficulty);
    return ref.blocksPerAttempt === 1 ? new WasmPowSearcher(ref, ex) : null;
  }

  /** Try nonces [start, start + count); the first one whose hash meets the target, or null. */
  search(start: number, count: number): PowSolution | null {
    const { ex, ref } = this;
    const words = new Int32Array(ex.memory.buffer, ex.params(), 32);
    words.set(ref.midstate, 0);
    words.set(ref.tailWords, 8);
    // The nonce bytes of the template are whatever the reference tried last: clear them.
    const o = ref.nonceOffset;
    for (let i = o >> 2; i <= (o + 7) >> 2; i++) {
      const lo = Math.max(o, i * 4) - i * 4;
      const hi = Math.min(o + 8, i * 4 + 4) - i * 4;
      const mask = (0xffffffff >>> (lo * 8)) & ~(hi === 4 ? 0 : 0xffffffff >>> (hi * 8));
      words[8 + i] &= ~mask;
    }
    const end = start + count;
    for (let nonce = start; nonce < end; ) {
      const hi = Math.floor(nonce / 0x100000000);
      const lo = nonce >>> 0;
      const n = Math.min(end - nonce, 0x100000000 - lo, MAX_CALL);
      const i = ex.search(hi, lo, n, o, ref.target[0]);
      if (i < 0) {
        nonce += n;
        continue;
      }
      const state = words.slice(24, 32);
      if (stateBelowTarget(state, ref.target)) return { nonce: nonce + i, hash: stateToBytes(state) };
      nonce += i + 1; // the first word equalled the target's: look on
    }
    return null;
  }
}
