/**
 * Proof-of-work hash rate: one core (in-thread midstate search), all workers (the daemon's
 * pool), and a native reference measured in the same run: `openssl speed` on inputs of the
 * header's length when the openssl binary is there, else node:crypto's one-shot hash (OpenSSL
 * too, plus one native call per hash). `bfl-node bench pow [--json]`.
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { hash } from 'node:crypto';
import { encodeHeader } from '../src/core/encoding.ts';
import { PowSearcher } from '../src/core/pow.ts';
import type { BlockHeader } from '../src/core/types.ts';
import { WorkerMinerPool } from '../src/mining/miner.ts';

export interface PowBench {
  headerBytes: number;
  hashesPerSecondOneCore: number;
  hashesPerSecondAllWorkers: number;
  workers: number;
  nativeHashesPerSecondOneCore: number;
  nativeReference: string;
  nodeCryptoHashesPerSecondOneCore: number;
  ratioOneCoreToNative: number;
  scaling: number; // all workers / one core
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

function oneCore(seconds: number): number {
  const s = PowSearcher.forHeader(HEADER);
  s.search(0, 200_000); // warm up the JIT
  let n = 0;
  const t0 = performance.now();
  const step = 1 << 18;
  while (performance.now() - t0 < seconds * 1000) {
    s.search(n, step);
    n += step;
  }
  return n / ((performance.now() - t0) / 1000);
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

/** `openssl speed` for SHA-256 on inputs of `bytes` length: hashes per second on one core. */
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

async function allWorkers(workers: number, seconds: number): Promise<number> {
  const pool = new WorkerMinerPool({ workers });
  try {
    const ac = new AbortController();
    const job = pool.mine(HEADER, ac.signal);
    await new Promise((r) => setTimeout(r, 300)); // workers start and warm up
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
  const seconds = opts.seconds ?? 3;
  const workers = opts.workers ?? availableParallelism();
  const headerBytes = encodeHeader(HEADER).length;
  const one = oneCore(seconds);
  const all = await allWorkers(workers, seconds);
  const nodeRate = nodeCryptoRate(Math.min(seconds, 2));
  const ssl = opensslRate(headerBytes, seconds);
  const native = ssl ?? nodeRate;
  return {
    headerBytes,
    hashesPerSecondOneCore: Math.round(one),
    hashesPerSecondAllWorkers: Math.round(all),
    workers,
    nativeHashesPerSecondOneCore: Math.round(native),
    nativeReference: ssl !== undefined ? `openssl speed -evp sha256 -bytes ${headerBytes}` : 'node:crypto hash() per header',
    nodeCryptoHashesPerSecondOneCore: Math.round(nodeRate),
    ratioOneCoreToNative: Number((one / native).toFixed(3)),
    scaling: Number((all / one).toFixed(2)),
  };
}
