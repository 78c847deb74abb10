/**
 * Does a miner answer /status while it scores updates? The node's real HTTP API (api/server.ts)
 * is polled over loopback, from the same process, while an aggregation engine scores n updates
 * of dimension D with BFL-MEC: on the worker engine (what the daemon uses) and, for reference,
 * in-thread (what a blocked event loop looks like). The job goes through the engine as the
 * chain's aggregation sends it (payloads packed and transferred).
 *
 *   npx node bench/status.ts [clients] [dimension]     (default: 100 updates of the default MLP)
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { startApi, stopApi } from '../src/api/server.ts';
import type { MinerStatus } from '../src/api/status.ts';
import { type AggregationEngine, type AggregationJob, InThreadAggregationEngine, WorkerAggregationEngine, aggregatorOf } from '../src/chain/aggregation-engine.ts';
import { defaultAggregationConfig } from '../src/config/network.ts';
import { Rng } from '../src/core/random.ts';
import { Metrics } from '../src/util/metrics.ts';
import { DEFAULT_MLP_PARAMS } from './aggregate.ts';
import { median } from './stats.ts';

export interface StatusBench {
  engine: 'worker' | 'in-thread';
  clients: number;
  dimension: number;
  /** Wall time of the aggregation as the caller sees it. */
  aggregationMs: number;
  /** /status answers completed while it ran, and their latency. */
  polls: number;
  statusMedianMs: number;
  statusP99Ms: number;
  statusMaxMs: number;
}

export function statusJob(clients: number, dim: number, seed = 1): AggregationJob {
  const rng = new Rng(seed);
  const dir = Float32Array.from({ length: dim }, () => rng.normal());
  const bytes = (f: Float32Array) => new Uint8Array(f.buffer);
  return {
    previous: bytes(new Float32Array(dim)),
    updates: Array.from({ length: clients }, (_, i) => ({
      clientId: `client-${i}`,
      digest: createHash('sha256').update(`${seed}/${i}`).digest(),
      payload: bytes(Float32Array.from(dir, (x) => (i % 10 < 8 ? x : -x) * 0.01 + rng.normal() * 0.005)),
      sampleCount: 100,
      staleness: 0,
    })),
    baseReward: 100_000_000n,
    state: new Uint8Array(0), // the aggregator's initial state: benchStatus puts the engine's
    context: { round: 2, parentHash: new Uint8Array(32) },
  };
}

const status = (): MinerStatus => ({
  role: 'miner', id: 'miner-1', peerId: 'bench', height: 1, tip: '00', work: '1', aggregations: 0, pending: 0, peers: 0, miners: [],
  pool: { unrecorded: 0, total: 0 }, lastAccuracy: null, flagged: [], hashRate: 0, penalties: {}, orphans: 0,
});

/** Score one job on `engine` while polling /status every `everyMs`. */
export async function benchStatus(kind: 'worker' | 'in-thread', clients: number, dim: number, everyMs = 5): Promise<StatusBench> {
  const engine: AggregationEngine = kind === 'worker' ? new WorkerAggregationEngine(defaultAggregationConfig) : new InThreadAggregationEngine(aggregatorOf(defaultAggregationConfig));
  const api = await startApi({ host: '127.0.0.1', port: 0, status, metrics: new Metrics() });
  const url = `http://127.0.0.1:${(api.address() as { port: number }).port}/status`;
  try {
    // warm up: worker start-up, JIT, the HTTP connection
    await engine.aggregate({ ...statusJob(12, 1000), state: engine.initialState() });
    await (await fetch(url)).json();
    const job = { ...statusJob(clients, dim), state: engine.initialState() };
    const latencies: number[] = [];
    let done = false;
    const t0 = performance.now();
    // the aggregation starts after a first poll is in flight, as a request would arrive any time
    const poller = (async () => {
      while (!done) {
        const t = performance.now();
        await (await fetch(url)).json();
        if (!done) latencies.push(performance.now() - t);
        await sleep(everyMs);
      }
    })();
    await sleep(0);
    await engine.aggregate(job);
    const aggregationMs = performance.now() - t0;
    done = true;
    await poller;
    return { engine: kind, clients, dimension: dim, aggregationMs, polls: latencies.length, statusMedianMs: latencies.length ? median(latencies) : Number.NaN, statusP99Ms: latencies.length ? [...latencies].sort((a, b) => a - b)[Math.floor(latencies.length * 0.99)] : Number.NaN, statusMaxMs: latencies.length ? Math.max(...latencies) : aggregationMs };
  } finally {
    await stopApi(api);
    await engine.close();
  }
}

if (import.meta.main) {
  const clients = Number(process.argv[2] ?? 100);
  const dim = Number(process.argv[3] ?? DEFAULT_MLP_PARAMS);
  for (const kind of ['worker', 'in-thread'] as const) {
    const r = await benchStatus(kind, clients, dim);
    console.log(
      `${kind.padEnd(9)}  ${clients} updates × ${dim}: aggregation ${r.aggregationMs.toFixed(0)} ms; /status answered ${r.polls} times meanwhile, median ${r.statusMedianMs.toFixed(1)} ms, p99 ${r.statusP99Ms.toFixed(1)} ms, max ${r.statusMaxMs.toFixed(1)} ms`,
    );
  }
}
