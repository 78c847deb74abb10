/** The aggregation worker thread (aggregation-engine.ts): bytes in, bytes out. */
import { parentPort, workerData } from 'node:worker_threads';
import type { AggregationConfig } from '../config/network.ts';
import { ThreadedGramKernel, WasmGramKernel } from '../kernels/gram.ts';
import { type PackedJob, aggregatorOf, runAggregation, unpackJob } from './aggregation-engine.ts';

// The pairwise matrix (the O(n²·D) part) in WebAssembly SIMD on every core, with the reference's
// bits; where the engine has no SIMD, the reference. Its helper threads start once, here.
const kernel = (await ThreadedGramKernel.create()) ?? WasmGramKernel.create() ?? undefined;
const aggregator = aggregatorOf((workerData as { config: AggregationConfig }).config, kernel);

parentPort!.on('message', (msg: PackedJob) => {
  try {
    const out = runAggregation(aggregator, unpackJob(msg));
    // The model is a fresh Float32Array of its own: hand its buffer over instead of copying it.
    const model = out.model.byteOffset === 0 && out.model.byteLength === out.model.buffer.byteLength ? (out.model.buffer as ArrayBuffer) : out.model.slice().buffer;
    parentPort!.postMessage({ id: msg.id, model, entries: out.entries, rewards: out.rewards, state: out.state }, [model]);
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, error: (e as Error).message });
  }
});
