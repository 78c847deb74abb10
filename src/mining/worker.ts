import { parentPort, workerData } from 'node:worker_threads';
import { PowSearcher } from '../core/pow.ts';
import { SLICE, type PowEngine } from './miner.ts';
import { WasmPowSearcher } from './pow-wasm.ts';

const { index, ctrl, counters, engine } = workerData as { index: number; ctrl: Int32Array; counters: Float64Array; engine: PowEngine };

parentPort!.on('message', (job: { jobId: number; prefix: Uint8Array; difficulty: string; start: number }) => {
  const difficulty = BigInt(job.difficulty);
  const searcher = (engine === 'wasm' && WasmPowSearcher.create(job.prefix, difficulty)) || new PowSearcher(job.prefix, difficulty);
  // The main thread moves ctrl[0] off this job to abort; we look between slices.
  for (let start = job.start; Atomics.load(ctrl, 0) === job.jobId; start += SLICE) {
    const sol = searcher.search(start, SLICE);
    counters[index] += sol ? sol.nonce - start + 1 : SLICE;
    if (sol) {
      parentPort!.postMessage({ jobId: job.jobId, nonce: sol.nonce });
      return;
    }
  }
});
