/**
 * Proof-of-work hash rate: one core (in-thread midstate search, the WebAssembly SIMD search and
 * the JS reference), the daemon's worker pool at 1..N workers, and a native reference measured
 * in the same run: `openssl speed` on inputs of the header's length when the openssl binary is
 * there, else node:crypto's one-shot hash (OpenSSL too, plus one native call per hash).
 * `bfl-node bench pow [--json]`. One-core rates are per second of CPU time (openssl's own
 * divisor), worker rates per second of wall-clock time; the 1-minute load average at the start
 * says whether the machine was busy with other work (then worker scaling means little).
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { hash } from 'node:crypto';
import { encodeHeader } from '../src/core/encoding.ts';
import type { BlockHeader } from '../src/core/types.ts';
import { WorkerMinerPool, powSearcher, type PowEngine } from '../src/mining/miner.ts';
import { wasmPowAvailable } from '../src/mining/pow-wasm.ts';

export interface PowBench {
  headerBytes: number;
  /** The engine the miners use: 'wasm', or 'js' where WebAssembly SIMD is missing. */
  engine: PowEngine;
  hashesPerSecondOneCore: number;
  hashesPerSecondOneCoreJs: number;
  hashesPerSecondAllWorkers: number;
  workers: number;
  /** The pool's rate at 1, 2, ... workers. */
  workerScaling: { workers: number; hashesPerSecond: number }[];
  nativeHashesPerSecondOneCore: number;
  nativeReference: string;
  nodeCryptoHashesPerSecondOneCore: number;
  ratioOneCoreToNative: number;
  ratioOneCoreJsToNative: number;
  scaling: number; // all workers / one worker
  loadAverage1m: number;
}

// A realistic header: 8-byte miner id, as `bfl-node init` names miners.
const HEADER: BlockHeader = {
  version: 1,
  height: 1000,
  prevHash: new Uint8Array(32).fill(0xab),
  merkleRoot: new Uint8Array(32).fill(0xcd),
  timestamp: 1_700_000_000_000,
  difficulty: 1n << 62n, // never solved during the measurement
  minerId: 'miner-01',
  nonce: 0,
};

/**
 * Hashes per second of this thread's user CPU time, the divisor `openssl speed` uses by default:
 * on a shared machine wall-clock rates measure the other work as much as ours.
 */
function oneCore(seconds: number, engine: PowEngine): number {
  const s = powSearcher(HEADER, engine);
  s.search(0, 200_000); // warm up the JIT
  let n = 0;
  const t0 = performance.now();
  const cpu0 = process.threadCpuUsage().user;
  const step = 1 << 16;
  while (performance.now() - t0 < seconds * 1000) {
    s.search(n, step);
    n += step;
  }
  return n / ((process.threadCpuUsage().user - cpu0) / 1e6);
}

function nodeCryptoRate(seconds: number): number {
  const buf = Buffer.from(encodeHeader(HEADER));
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    for (let i = 0; i < 10_000; i++) {
      buf.writeUInt32BE(n++ >>> 0, buf.length - 4);
      hash('sha256', buf, 'buffer');
    }
  }
  return n / ((performance.now() - t0) / 1000);
}

/** `openssl speed` for SHA-256 on inputs of `bytes` length: hashes per second of user CPU time on one core. */
function opensslRate(bytes: number, seconds: number): number | undefined {
  try {
    const out = execFileSync('openssl', ['speed', '-seconds', String(Math.max(1, Math.round(seconds))), '-bytes', String(bytes), '-evp', 'sha256'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    // last line: "sha256   538462.40k" (thousands of bytes per second)
    const m = /sha256\s+([\d.]+)k\s*$/m.exec(out.trim());
    return m ? (Number(m[1]) * 1000) / bytes : undefined;
  } catch {
    return undefined;
  }
}

async function allWorkers(workers: number, seconds: number, engine: PowEngine): Promise<number> {
  const pool = new WorkerMinerPool({ workers, engine });
  try {
    const ac = new AbortController();
    const job = pool.mine(HEADER, ac.signal);
    // Workers start and warm up. On a loaded machine starting a worker (loading the sources and the
    // wasm) can take seconds, so wait until the pool has counted work (bounded), then 300 ms more.
    const started = performance.now();
    while (pool.totalHashes() === 0 && performance.now() - started < 30_000) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    const h0 = pool.totalHashes();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const rate = (pool.totalHashes() - h0) / ((performance.now() - t0) / 1000);
    ac.abort();
    await job;
    return rate;
  } finally {
    await pool.close();
  }
}

export async function benchPow(opts: { seconds?: number; workers?: number } = {}): Promise<PowBench> {
  const loadAverage1m = loadavg()[0];
  const seconds = opts.seconds ?? 3;
  const workers = opts.workers ?? availableParallelism();
  const headerBytes = encodeHeader(HEADER).length;
  const engine: PowEngine = wasmPowAvailable() ? 'wasm' : 'js';
  // One-core figures: the best of (up to) three alternating windows each, so that other work on a
  // shared machine hits ours and openssl's alike and a burst of it does not decide the ratio.
  let one = 0;
  let oneJs = 0;
  let ssl: number | undefined;
  const rounds = Math.max(1, Math.min(3, Math.floor(seconds)));
  const window = seconds / rounds;
  for (let r = 0; r < rounds; r++) {
    one = Math.max(one, oneCore(window, engine));
    const s = opensslRate(headerBytes, window);
    if (s !== undefined) ssl = Math.max(ssl ?? 0, s);
    oneJs = Math.max(oneJs, oneCore(window, 'js'));
  }
  const workerScaling: PowBench['workerScaling'] = [];
  for (let w = 1; w <= workers; w++) workerScaling.push({ workers: w, hashesPerSecond: Math.round(await allWorkers(w, seconds, engine)) });
  const all = workerScaling[workerScaling.length - 1].hashesPerSecond;
  const nodeRate = nodeCryptoRate(Math.min(seconds, 2));
  const native = ssl ?? nodeRate;
  return {
    headerBytes,
    engine,
    hashesPerSecondOneCore: Math.round(one),
    hashesPerSecondOneCoreJs: Math.round(oneJs),
    hashesPerSecondAllWorkers: all,
    workers,
    workerScaling,
    nativeHashesPerSecondOneCore: Math.round(native),
    nativeReference: ssl !== undefined ? `openssl speed -evp sha256 -bytes ${headerBytes}` : 'node:crypto hash() per header',
    nodeCryptoHashesPerSecondOneCore: Math.round(nodeRate),
    ratioOneCoreToNative: Number((one / native).toFixed(3)),
    ratioOneCoreJsToNative: Number((oneJs / native).toFixed(3)),
    scaling: Number((all / workerScaling[0].hashesPerSecond).toFixed(2)),
    loadAverage1m: Number(loadAverage1m.toFixed(2)),
  };
}
