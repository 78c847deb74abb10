/** The aggregation worker thread (aggregation-engine.ts): bytes in, bytes out. */
import { parentPort, workerData } from 'node:worker_threads';
import type { AggregationConfig } from '../config/network.ts';
import { ThreadedGramKernel, WasmGramKernel } from '../kernels/gram.ts';
import { type PackedJob, aggregatorOf, runAggregation, unpackJob } from './aggregation-engine.ts';

// The pairwise matrix (the O(n²·D) part) in WebAssembly SIMD on every core, with the reference's
// bits; where the engine has no SIMD, the reference. Its helper threads start once, here.
const kernel = (await ThreadedGramKernel.create()) ?? WasmGramKernel.create() ?? undefined;
const aggregator = aggregatorOf((workerData as { config: AggregationConfig }).config, kernel);

/**
 * The job's input buffers go back to the main thread with the answer (issue 13, a miner's
 * memory). Each isolate frees its garbage ArrayBuffers only at its own collections, and V8 starts
 * one when their total has grown some 64 MB since the last: kept here, a job's ~2-64 MB of
 * updates stayed resident until this thread collected, a second sawtooth of up to that size in the
 * miner's RSS beside the main thread's (40 transferred 1 MB buffers left 45 MB of external memory
 * in a worker that dropped them; handed back, 3 MB). Sent back, they join the main thread's
 * garbage, whose collections run often (it allocates most), and the worker holds no job's memory
 * between jobs. Transferring back copies nothing. (The main thread ignores them.)
 */
function inputsOf(msg: PackedJob, keep: ArrayBuffer): ArrayBuffer[] {
  const all = new Set([msg.previous, ...msg.payloads, ...(msg.previousGlobalUpdate ? [msg.previousGlobalUpdate] : [])]);
  all.delete(keep);
  return [...all].filter((b) => b.byteLength > 0); // a detached (or empty) buffer cannot be transferred again
}

parentPort!.on('message', (msg: PackedJob) => {
  let model: ArrayBuffer | undefined;
  let answer: Record<string, unknown>;
  try {
    const out = runAggregation(aggregator, unpackJob(msg));
    // The model is a fresh Float32Array of its own: hand its buffer over instead of copying it.
    model = out.model.byteOffset === 0 && out.model.byteLength === out.model.buffer.byteLength ? (out.model.buffer as ArrayBuffer) : out.model.slice().buffer;
    answer = { id: msg.id, model, entries: out.entries, rewards: out.rewards, state: out.state };
  } catch (e) {
    answer = { id: msg.id, error: (e as Error).message };
  }
  const inputs = inputsOf(msg, model ?? new ArrayBuffer(0));
  parentPort!.postMessage({ ...answer, inputs }, model ? [model, ...inputs] : inputs);
});
