/**
 * SHA-256 proof of work (docs/architecture.md, "The path of a block"). A header is valid when SHA-256(header) read as a
 * 256-bit big-endian integer is below `target = TARGET1 / difficulty`, with TARGET1 = 2^256, so
 * `difficulty` is exactly the expected number of hashes per block and also the block's work.
 * Difficulty is fixed per network (the paper's setting); fork choice sums it.
 */
import { encodeHeaderPrefix } from './encoding.ts';
import { SHA256_IV, compress, pad, stateToBytes } from './sha256.ts';
import type { BlockHeader } from './types.ts';

export const TARGET1 = 1n << 256n;

export function targetFromDifficulty(difficulty: bigint): bigint {
  if (difficulty < 1n) throw new RangeError(`difficulty must be >= 1, got ${difficulty}`);
  return TARGET1 / difficulty;
}

export function blockWork(difficulty: bigint): bigint {
  return difficulty;
}

export function hashToBigInt(hash: Uint8Array): bigint {
  return BigInt('0x' + Buffer.from(hash).toString('hex'));
}

export function meetsTarget(hash: Uint8Array, difficulty: bigint): boolean {
  return hashToBigInt(hash) < targetFromDifficulty(difficulty);
}

/** Target as 8 unsigned 32-bit words (big-endian order), saturated at 2^256 - 1. */
function targetWords(difficulty: bigint): Uint32Array {
  let t = targetFromDifficulty(difficulty);
  const allOnes = TARGET1 - 1n;
  // target 2^256 (difficulty 1) means "every hash"; "< 2^256" is "<= 2^256 - 1".
  const inclusive = t > allOnes;
  if (inclusive) t = allOnes;
  const out = new Uint32Array(9);
  for (let i = 7; i >= 0; i--) {
    out[i] = Number(t & 0xffffffffn);
    t >>= 32n;
  }
  out[8] = inclusive ? 1 : 0;
  return out;
}

export interface PowSolution {
  nonce: number;
  hash: Uint8Array;
}

/**
 * Nonce search over one header prefix. The SHA-256 state after every 64-byte block that lies
 * wholly before the nonce is computed once (the midstate); each attempt compresses only the
 * block(s) holding the nonce and the padding. With ids of at most 24 bytes that is one block.
 */
export class PowSearcher {
  readonly blocksPerAttempt: number;
  // Read by the WebAssembly search (src/mining/pow-wasm.ts), which starts from the same state.
  readonly midstate: Int32Array;
  private readonly tail: Uint8Array;
  /** The padded tail after the midstate as big-endian words (nonce bytes as last tried). */
  readonly tailWords: Int32Array;
  readonly nonceOffset: number; // offset of the nonce within `tail`
  /** Target words, big-endian order; [8] = 1 when the target is 2^256 (every hash). */
  readonly target: Uint32Array;
  private readonly state = new Int32Array(8);
  private readonly w = new Int32Array(64);

  constructor(prefix: Uint8Array, difficulty: bigint) {
    const padded = pad(new Uint8Array([...prefix, 0, 0, 0, 0, 0, 0, 0, 0]));
    const fixedBlocks = Math.floor(prefix.length / 64);
    this.midstate = SHA256_IV.slice();
    const w = new Int32Array(64);
    for (let b = 0; b < fixedBlocks; b++) {
      loadWords(padded, b * 64, w, 16);
      compress(this.midstate, w);
    }
    this.tail = padded.slice(fixedBlocks * 64);
    this.blocksPerAttempt = this.tail.length / 64;
    this.tailWords = new Int32Array(this.tail.length / 4);
    loadWords(this.tail, 0, this.tailWords, this.tailWords.length);
    this.nonceOffset = prefix.length - fixedBlocks * 64;
    this.target = targetWords(difficulty);
  }

  static forHeader(header: BlockHeader): PowSearcher {
    return new PowSearcher(encodeHeaderPrefix(header), header.difficulty);
  }

  /** SHA-256(prefix || nonce) through the midstate. */
  hash(nonce: number): Uint8Array {
    this.attempt(nonce);
    return stateToBytes(this.state);
  }

  /** Try nonces [start, start + count); the first one whose hash meets the target, or null. */
  search(start: number, count: number): PowSolution | null {
    const end = start + count;
    for (let nonce = start; nonce < end; nonce++) {
      this.attempt(nonce);
      if (this.belowTarget()) return { nonce, hash: stateToBytes(this.state) };
    }
    return null;
  }

  private attempt(nonce: number): void {
    const hi = Math.floor(nonce / 0x100000000);
    const lo = nonce >>> 0;
    const t = this.tail;
    const o = this.nonceOffset;
    t[o] = hi >>> 24;
    t[o + 1] = hi >>> 16;
    t[o + 2] = hi >>> 8;
    t[o + 3] = hi;
    t[o + 4] = lo >>> 24;
    t[o + 5] = lo >>> 16;
    t[o + 6] = lo >>> 8;
    t[o + 7] = lo;
    // Reload only the (at most three) words the nonce touches.
    const first = o >> 2;
    const last = (o + 7) >> 2;
    for (let i = first; i <= last; i++) {
      const p = i * 4;
      this.tailWords[i] = (t[p] << 24) | (t[p + 1] << 16) | (t[p + 2] << 8) | t[p + 3];
    }
    const s = this.state;
    s.set(this.midstate);
    for (let b = 0; b < this.blocksPerAttempt; b++) {
      this.w.set(this.tailWords.subarray(b * 16, b * 16 + 16));
      compress(s, this.w);
    }
  }

  private belowTarget(): boolean {
    return stateBelowTarget(this.state, this.target);
  }
}

/** A hash's state words (as SHA-256 leaves them) compared with target words from targetWords. */
export function stateBelowTarget(s: Int32Array, t: Uint32Array): boolean {
  for (let i = 0; i < 8; i++) {
    const h = s[i] >>> 0;
    if (h < t[i]) return true;
    if (h > t[i]) return false;
  }
  return t[8] === 1; // equal to 2^256 - 1: valid only when the target is 2^256
}

function loadWords(bytes: Uint8Array, off: number, out: Int32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const p = off + i * 4;
    out[i] = (bytes[p] << 24) | (bytes[p + 1] << 16) | (bytes[p + 2] << 8) | bytes[p + 3];
  }
}

/** Mine in this thread (tests, genesis tooling). The daemon uses the worker pool (mining/miner.ts). */
export function mineHeaderSync(header: BlockHeader, maxAttempts = Number.MAX_SAFE_INTEGER): BlockHeader | null {
  const searcher = PowSearcher.forHeader(header);
  const sol = searcher.search(header.nonce, maxAttempts);
  return sol ? { ...header, nonce: sol.nonce } : null;
}
