/**
 * Metrics of the whole node that no single subsystem owns: what build is running, who we are
 * connected to, and how long signature checks take (the verifier pool is shared by the peer
 * book, the miner and the chain store, so it is timed where it is built).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import type { AggregationEngine } from '../chain/aggregation-engine.ts';
import type { SignatureVerifier } from '../crypto/verifier.ts';
import { type Metrics, durationBuckets } from '../util/metrics.ts';
import type { WorkerHeap } from '../util/worker-heap.ts';

export interface BuildInfo {
  version: string;
  commit: string;
}

const root = new URL('../../', import.meta.url).pathname;
let build: BuildInfo | undefined;

/**
 * The package version, and the commit from `BFL_COMMIT` (set by the Docker build, which has no
 * .git) or else from git in the source tree; "unknown" where neither is there.
 */
export function buildInfo(): BuildInfo {
  if (build) return build;
  const version = (JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { version: string }).version;
  let commit = process.env.BFL_COMMIT || 'unknown';
  if (!process.env.BFL_COMMIT) {
    try {
      commit = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 2000 }).trim() || 'unknown';
    } catch {
      // no git or no repository (an npm install): the version alone identifies the build
    }
  }
  return (build = { version, commit });
}

/** `bfl_build_info{version, commit} 1`, the Prometheus convention for joining build labels. */
export function registerBuildInfo(m: Metrics): void {
  const b = buildInfo();
  m.gauge('bfl_build_info', 'the running build: version and commit (value 1)', ['version', 'commit']).set({ version: b.version, commit: b.commit }, 1);
}

/** `bfl_peers{role}`: connected peers by their admitted role ("unknown" until identified). */
export function registerPeersGauge(m: Metrics, peers: () => { role?: string }[]): void {
  m.gauge('bfl_peers', 'connected libp2p peers, by admitted role', ['role'], (g) => {
    const n: Record<string, number> = { miner: 0, client: 0, unknown: 0 };
    for (const p of peers()) n[p.role ?? 'unknown']++;
    for (const [role, v] of Object.entries(n)) g.set({ role }, v);
  });
}

/** RssAnon, RssFile and RssShmem of /proc/self/status, in bytes (Linux; undefined elsewhere or
 * when a field is missing). */
export function parseProcStatus(text: string): { anon: number; file: number; shmem: number } | undefined {
  const kb = (k: string) => {
    const m = new RegExp(`^${k}:\\s+(\\d+) kB$`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const anon = kb('RssAnon');
  const file = kb('RssFile');
  const shmem = kb('RssShmem');
  return anon === undefined || file === undefined || shmem === undefined ? undefined : { anon, file, shmem };
}

/** This process's resident split (parseProcStatus), or undefined where there is no /proc (not Linux). */
function ownProcStatus(): ReturnType<typeof parseProcStatus> {
  try {
    return parseProcStatus(readFileSync('/proc/self/status', 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * `bfl_memory_bytes{kind}` (issue 13, a miner's memory): what process_resident_memory_bytes and
 * the nodejs_* heap gauges do not split. `rss_anon` is what a leak or the allocators grow;
 * `rss_file` is mapped files (LevelDB's tables, the binaries), reclaimable by the kernel;
 * `array_buffers` is the ArrayBuffers' backing stores (models, updates, blocks in flight),
 * part of nodejs_external_memory_bytes and, once garbage, freed only by V8's next collection.
 */
export function registerMemoryGauge(m: Metrics): void {
  m.gauge('bfl_memory_bytes', "this process's memory by kind: rss_anon, rss_file, rss_shmem (Linux), array_buffers", ['kind'], (g) => {
    g.set({ kind: 'array_buffers' }, process.memoryUsage().arrayBuffers);
    const status = ownProcStatus();
    if (status) {
      g.set({ kind: 'rss_anon' }, status.anon);
      g.set({ kind: 'rss_file' }, status.file);
      g.set({ kind: 'rss_shmem' }, status.shmem);
    }
  });
}

/**
 * `bfl_memory_after_gc_bytes{kind}` and `bfl_memory_after_gc_timestamp_seconds` (issue 13, the
 * soak): the process's memory read right after V8's latest full (mark-compact) collection: rss,
 * rss_anon (Linux), heap_used and array_buffers. A reading at a random moment includes whatever
 * garbage awaits the next collection; on a miner that is mostly ArrayBuffers (models, updates,
 * blocks: ~10 MB per aggregation read, sent, verified), which V8 frees only when a collection
 * runs, and it collects when their total has grown by some 64 MB since the last one. So the
 * plain RSS saws up and down by that much within seconds (the soak's 5 readings 2 s apart spanned
 * up to 151 MB with no flood at all), while right after a collection it is what the process
 * holds: the figure a leak grows, as "heap after GC" is in the JVM's tooling. The observer is the
 * one prom-client's nodejs_gc_duration_seconds already uses (an entry per collection, delivered
 * after it, so freed ArrayBuffers are unmapped by then). Returns the observer's disconnect.
 */
export function registerMemoryAfterGcGauge(m: Metrics): () => void {
  let last: { at: number; rss: number; heapUsed: number; arrayBuffers: number; anon?: number } | undefined;
  const observer = new PerformanceObserver((list) => {
    if (!list.getEntries().some((e) => (e as { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR)) return;
    const u = process.memoryUsage();
    last = { at: Date.now() / 1000, rss: u.rss, heapUsed: u.heapUsed, arrayBuffers: u.arrayBuffers, anon: ownProcStatus()?.anon };
  });
  observer.observe({ entryTypes: ['gc'] });
  m.gauge('bfl_memory_after_gc_bytes', "this process's memory right after V8's latest full collection, by kind: rss, rss_anon (Linux), heap_used, array_buffers", ['kind'], (g) => {
    if (!last) return; // no full collection yet
    g.set({ kind: 'rss' }, last.rss);
    g.set({ kind: 'heap_used' }, last.heapUsed);
    g.set({ kind: 'array_buffers' }, last.arrayBuffers);
    if (last.anon !== undefined) g.set({ kind: 'rss_anon' }, last.anon);
  });
  m.gauge('bfl_memory_after_gc_timestamp_seconds', 'when bfl_memory_after_gc_bytes was read (unix seconds; absent before the first full collection)', [], (g) => {
    if (last) g.set(last.at);
  });
  return () => observer.disconnect();
}

/** The worker sources of each registry's bfl_worker_memory_bytes (one gauge, any number of registrations). */
const workerSources = new WeakMap<Metrics, Map<string, () => Promise<WorkerHeap | undefined>>>();

/** `bfl_worker_memory_bytes{worker, kind}`: a worker thread's own V8 heap (heap_used) and external
 * memory (its ArrayBuffers), which process-wide RSS includes and the nodejs_* gauges (the main
 * thread's isolate) do not. Read at each scrape; each call adds one worker (or pool) by name. */
export function registerWorkerMemoryGauge(m: Metrics, worker: string, stats: () => Promise<WorkerHeap | undefined>): void {
  let sources = workerSources.get(m);
  if (!sources) {
    const all = (sources = new Map());
    workerSources.set(m, all);
    m.gauge('bfl_worker_memory_bytes', "a worker thread's V8 heap used and external memory (ArrayBuffers), by worker and kind", ['worker', 'kind'], async (g) => {
      g.reset(); // a worker gone since the last scrape leaves no stale value
      await Promise.all(
        [...all].map(async ([name, read]) => {
          const s = await read().catch(() => undefined);
          if (!s) return;
          g.set({ worker: name, kind: 'heap_used' }, s.heapUsed);
          g.set({ worker: name, kind: 'external' }, s.external);
        }),
      );
    });
  }
  sources.set(worker, stats);
}

/** Buckets for one verify call (a batch): ML-DSA-44 verifies in ~0.15 ms natively, a block's
 * batch of 64 records in ~10 ms, plus the worker round trip. */
const verifyBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** The same verifier, with the duration of every batch and the count of signatures by result. */
export function timedVerifier(v: SignatureVerifier, m: Metrics): SignatureVerifier {
  const seconds = m.histogram('bfl_signature_verification_seconds', 'duration of one signature verification batch (worker pool round trip included)', verifyBuckets);
  const count = m.counter('bfl_signatures_verified_total', 'signatures verified, by result', ['result']);
  return {
    async verify(jobs) {
      const end = seconds.startTimer();
      const ok = await v.verify(jobs).finally(end);
      for (const x of ok) count.inc({ result: x ? 'valid' : 'invalid' });
      return ok;
    },
    close: () => v.close(),
  };
}

/** The same engine, with the duration of every aggregation it computes (scoring and weighting of
 * one round's updates, worker round trip included; building a block or checking a received one). */
export function timedEngine(e: AggregationEngine, m: Metrics): AggregationEngine {
  const seconds = m.histogram('bfl_aggregation_seconds', "time to score and aggregate one round's updates (building or verifying a block)", durationBuckets);
  return {
    get stateless() {
      return e.stateless;
    },
    initialState: () => e.initialState(),
    aggregate: (job) => {
      const end = seconds.startTimer();
      return e.aggregate(job).finally(end);
    },
    close: () => e.close(),
  };
}
