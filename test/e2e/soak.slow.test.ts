/**
 * The soak of issue 13: a 2-miner, 6-client network of real processes under a mixed outsider
 * flood. Honest aggregations during the flood must stay within 20 % of the unflooded rate, and
 * each miner's RSS must come back within 10 % of its baseline after the flood: read right after a
 * full collection of the miner (asked through its inspector, `--inspect=127.0.0.1:0`, loopback),
 * at the baseline and 60 s after the flood (`rssRetainedMB`), so that it measures what the miner
 * holds, not where V8's collection cycle is (the plain medians are reported beside it).
 *
 *   SOAK_FLOOD_MS (default 600000) flooded time; SOAK_BASE_MS (default the same) unflooded
 *   time; SOAK_SLICE_MS (default 60000) the two alternate in slices of this length, in the
 *   order U F F U (0: one unflooded window, then one flooded); SOAK_GAP_MS (default 10000) after each
 *   flooded slice, counted in neither; SOAK_SETTLE_MS (default 60000) wait after the last slice
 *   before the RSS is read. Every memory figure is the median of 5 readings 2 s apart (between
 *   slices, counted in neither); the first reading is reported too (`rssMB`, as before the medians).
 *   Figures go to out/soak/soak.json. Run: npx vitest run --config vitest.slow.config.ts test/e2e/soak.slow.test.ts
 *
 * Why slices: the rates are compared between two windows of the same run. Measured one after the
 * other (10 min unflooded, then 10 min flooded), every change of the machine between them (on a
 * shared machine, other jobs starting: load 4 in the first window and 22 in the second in the
 * lead's run of 18:52) and every cost that grows with the chain counted against the flood (the
 * ratio went 1.83, 1.01, 0.68, 0.18 over four runs). Slices in the order U F F U put both windows
 * under the same conditions on average. The gap after a flooded slice keeps its aftermath (stalled
 * connections closed up to the hello timeout later) out of the unflooded count.
 *
 * The flood runs in this process, from 127.0.0.2-127.0.0.250 (all of 127/8 is loopback), so the
 * outsiders' addresses differ from the honest nodes' 127.0.0.1 as on a real network:
 * - churners: fresh keys that connect and stall the hello (they hold slots until closed);
 * - pullers: fresh keys pulling global models over `chain` in a loop (the 4.3 GB);
 * - junk: garbage hellos and 1 MiB garbage uploads.
 * Its own CPU is bounded (a few workers, pauses between requests): on a real network the
 * attacker pays for its own machine.
 *
 * Diagnostics (off by default; docs/decisions.md "A miner's memory: what bounds it", ninth look):
 * SOAK_SNAPSHOT_DIR=dir starts the miners with `--heapsnapshot-signal=SIGUSR2` and
 * `--diagnostic-dir=dir/<miner>`, and at two points, right after the baseline reading and right
 * after the final one, sends each miner the signal (a heap snapshot collects all garbage first,
 * and blocks the miner's main thread while it is written: seconds) and reads its memory again,
 * at once and 5 s later (what a full collection leaves: heap used and committed, external memory,
 * RSS, bfl_memory_bytes); /proc/<pid>/smaps and smaps_rollup are saved before and after the
 * snapshot. The snapshots (dir/<miner>/<point>.heapsnapshot) compare with
 * scripts/heapsnapshot-diff.ts, the smaps with scripts/smaps-summary.ts; the JSON's
 * `diagnostics` has the readings and the smaps grouped ([heap], glibc's arenas, other anonymous
 * mappings by size, files). The snapshots stall the miners and allocate (a snapshot's own
 * native memory: ~96 MB of glibc's main heap kept, and V8's object-id map, ~20 MB): a diagnostic
 * run's RSS target and rates are not the soak's figures.
 * Without SOAK_SNAPSHOT_DIR (and unless SOAK_GC=0) the same points take a full collection alone,
 * asked through the inspector (`--inspect=127.0.0.1:0`, `HeapProfiler.collectGarbage`: no
 * snapshot, none of its residue), the smaps only summarised: the target's retained readings.
 */
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { Libp2p } from '@libp2p/interface';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { median } from '../../bench/stats.ts';
import { encodeChainRequest } from '../../src/net/messages.ts';
import { protocols } from '../../src/net/protocols.ts';
import { RemoteError, request } from '../../src/net/reqres.ts';
import { Cluster, type Status } from '../helpers/cluster.ts';
import { type SmapsGroup, smapsDiff, smapsSummary } from '../../scripts/smaps-summary.ts';

const FLOOD_MS = Number(process.env.SOAK_FLOOD_MS ?? 600_000);
const BASE_MS = Number(process.env.SOAK_BASE_MS ?? FLOOD_MS);
const SETTLE_MS = Number(process.env.SOAK_SETTLE_MS ?? 60_000);
const SLICE_MS = Number(process.env.SOAK_SLICE_MS ?? 60_000);
const GAP_MS = Number(process.env.SOAK_GAP_MS ?? 10_000);
const MINERS = ['miner-1', 'miner-2'];
const SNAPSHOT_DIR = process.env.SOAK_SNAPSHOT_DIR;
/** The retained figures (a full collection of each miner at the baseline and after: the target's
 * reading) are on unless SOAK_GC=0; SOAK_SNAPSHOT_DIR takes snapshots instead (figures void). */
const DIAGNOSE = Boolean(SNAPSHOT_DIR) || process.env.SOAK_GC !== '0';

let cluster: Cluster | undefined;
afterAll(async () => {
  await cluster?.stopAll();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function metric(c: Cluster, id: string, name: string): Promise<number> {
  const text = await (await fetch(`${c.node(id).api}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

/** A miner's resident memory by kind (bfl_memory_bytes: rss_anon, rss_file, array_buffers), in MB. */
async function memoryMB(c: Cluster, id: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${c.node(id).api}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^bfl_memory_bytes\{[^}]*kind="(\w+)"[^}]*\} ([0-9.e+-]+)$/gm)) out[m[1]] = Number(m[2]) / 2 ** 20;
  return out;
}

/** /status latencies (ms) sampled every second for `ms`. */
async function statusLatencies(c: Cluster, ms: number): Promise<number[]> {
  const out: number[] = [];
  for (const until = Date.now() + ms; Date.now() < until; await sleep(1000)) {
    const t = performance.now();
    if (await c.status('miner-1')) out.push(performance.now() - t);
  }
  return out;
}

const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

/**
 * One reading of the miners' memory: RSS and JS heap used (bytes) and bfl_memory_bytes by kind (MB).
 * Taken READINGS times READING_GAP_MS apart and reduced to the median, field by field: a single
 * reading swings by tens of MB with the ArrayBuffers awaiting V8's next collection (decisions.md,
 * "A miner's memory", eighth wave), and one reading made the baseline or the end of a slice. The
 * first of the readings is reported too (the figures of runs before the medians).
 */
interface MemoryReading {
  rss: number[];
  /** process RSS read right after the miner's latest full collection (bfl_memory_after_gc_bytes): what it holds, without the garbage awaiting V8 */
  rssAfterGc: number[];
  heap: number[];
  memory: Record<string, number>[];
}
const READINGS = 5;
const READING_GAP_MS = 2000;

async function readMemory(c: Cluster): Promise<{ first: MemoryReading; median: MemoryReading; spreadMB: number[]; spreadAfterGcMB: number[] }> {
  const one = async (): Promise<MemoryReading> => ({
    rss: await Promise.all(MINERS.map((id) => metric(c, id, 'process_resident_memory_bytes'))),
    rssAfterGc: await Promise.all(MINERS.map((id) => metric(c, id, 'bfl_memory_after_gc_bytes\\{[^}]*kind="rss"[^}]*\\}'))),
    heap: await Promise.all(MINERS.map((id) => metric(c, id, 'nodejs_heap_size_used_bytes'))),
    memory: await Promise.all(MINERS.map((id) => memoryMB(c, id))),
  });
  const rs: MemoryReading[] = [];
  for (let i = 0; i < READINGS; i++) {
    if (i > 0) await sleep(READING_GAP_MS);
    rs.push(await one());
  }
  const medians: MemoryReading = {
    rss: MINERS.map((_, m) => median(rs.map((r) => r.rss[m]))),
    rssAfterGc: MINERS.map((_, m) => median(rs.map((r) => r.rssAfterGc[m]))),
    heap: MINERS.map((_, m) => median(rs.map((r) => r.heap[m]))),
    memory: MINERS.map((_, m) => Object.fromEntries(Object.keys(rs[0].memory[m]).map((k) => [k, median(rs.map((r) => r.memory[m][k]))]))),
  };
  // the swing of one reading: max - min of the RSS readings, per miner
  const spreadOf = (f: (r: MemoryReading) => number[]) => MINERS.map((_, m) => (Math.max(...rs.map((r) => f(r)[m])) - Math.min(...rs.map((r) => f(r)[m]))) / 2 ** 20);
  return { first: rs[0], median: medians, spreadMB: spreadOf((r) => r.rss), spreadAfterGcMB: spreadOf((r) => r.rssAfterGc) };
}

/** One reading of a miner's memory in full (bytes, except `kinds`: bfl_memory_bytes in MB). */
async function fullReading(c: Cluster, id: string) {
  // retried: while a snapshot blocks the miner its HTTP server's idle connections time out, and
  // fetch may send on one as it is closed ("fetch failed")
  let text = '';
  for (const until = Date.now() + 180_000; ; await sleep(500)) {
    try {
      text = await (await fetch(`${c.node(id).api}/metrics`, { signal: AbortSignal.timeout(Math.max(1000, until - Date.now())) })).text();
      break;
    } catch (e) {
      if (Date.now() > until) throw e;
    }
  }
  const one = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  const bySpace = (name: string) => Object.fromEntries([...text.matchAll(new RegExp(`^${name}\\{space="(\\w+)"[^}]*\\} ([0-9.e+-]+)$`, 'gm'))].map((m) => [m[1], Number(m[2])]));
  return {
    at: new Date().toISOString(),
    rss: one('process_resident_memory_bytes'),
    heapUsed: one('nodejs_heap_size_used_bytes'),
    heapTotal: one('nodejs_heap_size_total_bytes'),
    external: one('nodejs_external_memory_bytes'),
    spaceUsed: bySpace('nodejs_heap_space_size_used_bytes'),
    spaceTotal: bySpace('nodejs_heap_space_size_total_bytes'),
    kinds: await memoryMB(c, id),
    // the worker isolates' heaps (bfl_worker_memory_bytes, MB): the inspector's collection is the
    // main isolate's only, so what the workers hold stays in the retained RSS
    workersMB: Object.fromEntries([...text.matchAll(/^bfl_worker_memory_bytes\{[^}]*worker="(\w+)"[^}]*kind="(\w+)"[^}]*\} ([0-9.e+-]+)$/gm)].map((m) => [`${m[1]}.${m[2]}`, Number(m[3]) / 2 ** 20])),
  };
}

/** /proc/<pid>/smaps (saved as `<name>.smaps`, with smaps_rollup) grouped by scripts/smaps-summary.ts. */
async function smapsOf(pid: number, dir: string | undefined, name: string) {
  const text = await readFile(`/proc/${pid}/smaps`, 'utf8');
  if (dir) {
    await writeFile(join(dir, `${name}.smaps`), text);
    await writeFile(join(dir, `${name}.smaps_rollup`), await readFile(`/proc/${pid}/smaps_rollup`, 'utf8'));
  }
  return smapsSummary(text);
}

/** SOAK_GC: a full collection of a miner through its inspector (the address Node logs at start). */
async function collectGarbage(c: Cluster, id: string): Promise<void> {
  const url = /ws:\/\/127\.0\.0\.1:\d+\/[\w-]+/.exec(await c.log(id))?.[0];
  if (!url) throw new Error(`no inspector address in ${id}'s log`);
  const ws = new WebSocket(url);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer to HeapProfiler.collectGarbage within 120 s')), 120_000);
      ws.onerror = () => reject(new Error(`inspector ${url}: connection failed`));
      ws.onopen = () => ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }));
      ws.onmessage = (m) => {
        const r = JSON.parse(String(m.data));
        if (r.id !== 1) return;
        clearTimeout(timer);
        if (r.error) reject(new Error(`HeapProfiler.collectGarbage: ${r.error.message}`));
        else resolve();
      };
    });
  } finally {
    ws.close();
  }
}

/**
 * The diagnostic at one point (see the header): per miner, a reading and its smaps, a heap
 * snapshot (SOAK_SNAPSHOT_DIR: a full collection first) or a full collection alone (SOAK_GC),
 * then the readings and smaps of what it left.
 * Only the pids of this test's own miners are signalled. A failure is reported, not thrown:
 * the soak's own figures are taken either way.
 */
async function diagnose(c: Cluster, point: string) {
  return Object.fromEntries(
    await Promise.all(
      MINERS.map(async (id) => {
        const pid = c.pid(id);
        const dir = SNAPSHOT_DIR ? join(SNAPSHOT_DIR, id) : undefined;
        try {
          if (pid === undefined) throw new Error(`${id} is not running`);
          const beforeGc = await fullReading(c, id);
          const smapsBefore = await smapsOf(pid, dir, `${point}-before-gc`);
          const t0 = performance.now();
          if (dir) {
            const had = new Set(await readdir(dir));
            process.kill(pid, 'SIGUSR2');
            let file: string | undefined;
            for (const until = Date.now() + 120_000; !file && Date.now() < until; await sleep(250)) file = (await readdir(dir)).find((f) => f.endsWith('.heapsnapshot') && !had.has(f));
            if (!file) throw new Error('no heap snapshot within 120 s');
            // the snapshot is written on the main thread, synchronously: /metrics answers once it is whole
            await fullReading(c, id);
            await rename(join(dir, file), join(dir, `${point}.heapsnapshot`));
          } else await collectGarbage(c, id);
          const stallMs = performance.now() - t0;
          const afterGc = await fullReading(c, id);
          const smapsAfter = await smapsOf(pid, dir, `${point}-after-gc`);
          await sleep(5000); // ArrayBuffers' backing stores are freed by V8's sweeper after the collection
          const afterGc5s = await fullReading(c, id);
          return [id, { pid, stallMs, beforeGc, afterGc, afterGc5s, smapsBefore, smapsAfter }] as const;
        } catch (e) {
          return [id, { pid, error: String((e as Error)?.message ?? e) }] as const;
        }
      }),
    ),
  );
}

/** Aggregations on miner-1's chain and the statuses, over a window. */
async function window(c: Cluster, ms: number) {
  const [a] = await c.waitFor(['miner-1'], () => true, 30_000, 'miner-1');
  const lat = await statusLatencies(c, ms);
  const [b] = await c.waitFor(['miner-1'], () => true, 30_000, 'miner-1');
  return { aggregations: b.aggregations - a.aggregations, perMinute: ((b.aggregations - a.aggregations) * 60_000) / ms, statusP50Ms: p50(lat), latencies: lat, end: b as Status };
}

/**
 * Unflooded (U) and flooded (F) slices in the order U F F U, repeated (one of each when `slice`
 * is 0): a rate that drifts linearly over the run (the machine's load, the chain's length)
 * weighs the same on both sides, which plain alternation (U F U F) would not.
 */
function schedule(baseMs: number, floodMs: number, slice: number): { flooded: boolean; ms: number }[] {
  if (!(slice > 0)) return [{ flooded: false, ms: baseMs }, { flooded: true, ms: floodMs }];
  const out: { flooded: boolean; ms: number }[] = [];
  const left = { u: baseMs, f: floodMs };
  for (let i = 0; left.u > 0 || left.f > 0; i++) {
    // U F F U: flooded at positions 1 and 2 of every four; whatever is left of one kind at the end
    const flooded = left.u <= 0 || (left.f > 0 && (i % 4 === 1 || i % 4 === 2));
    const k = flooded ? 'f' : 'u';
    out.push({ flooded, ms: Math.min(slice, left[k]) });
    left[k] -= slice;
  }
  return out;
}

async function outsiderNode(ip: string): Promise<Libp2p> {
  return createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    transports: [tcp({ dialOpts: { localAddress: ip } as never })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: 1000 },
  });
}

/** The outsiders' next address: one sequence over all flooded slices, as one long flood would use them. */
let ipNext = 0;

/** The flood: returns counts of what the outsiders got, by kind and result. */
async function flood(c: Cluster, ms: number): Promise<Record<string, number>> {
  const networkId = c.init.nodes.length ? JSON.parse(await (await import('node:fs/promises')).readFile(c.init.config, 'utf8')).networkId : '';
  const proto = protocols(networkId);
  const targets = MINERS.map((id) => multiaddr(`${c.node(id).listen}/p2p/${c.node(id).peerId}`));
  const counts: Record<string, number> = {};
  const count = (k: string) => (counts[k] = (counts[k] ?? 0) + 1);
  const until = Date.now() + ms;
  const nextIp = () => `127.0.0.${2 + (ipNext++ % 249)}`;
  const codeOf = (e: unknown) => (e instanceof RemoteError ? e.code : String((e as Error)?.name ?? e));

  const churner = async (w: number) => {
    for (let i = 0; Date.now() < until; i++) {
      const n = await outsiderNode(nextIp());
      await n.handle(proto.hello, () => new Promise(() => undefined)); // stall the hello
      try {
        await n.dial(targets[(w + i) % 2], { signal: AbortSignal.timeout(5000) });
        count('churn:connected');
        for (const t = Date.now() + 10_000; Date.now() < t && n.getConnections().length > 0; ) await sleep(250);
        count(n.getConnections().length > 0 ? 'churn:held 10 s' : 'churn:closed by miner');
      } catch (e) {
        count(`churn:${codeOf(e)}`);
        await sleep(200);
      } finally {
        await n.stop();
      }
    }
  };
  const puller = async (w: number) => {
    while (Date.now() < until) {
      const n = await outsiderNode(nextIp());
      let failures = 0;
      for (let i = 0; Date.now() < until && failures < 5; i++) {
        try {
          await request(n, targets[(w + i) % 2], proto.chain, encodeChainRequest({ kind: 'model-after', anchor: new Uint8Array(32) }), { maxResponseBytes: 8 << 20, timeoutMs: 5000 });
          count('pull:served');
        } catch (e) {
          count(`pull:${codeOf(e)}`);
          if (!(e instanceof RemoteError)) failures++; // refused at the gate or hung up: a new address
        }
        await sleep(20);
      }
      await n.stop();
    }
  };
  const junk = async (w: number) => {
    const garbage = new Uint8Array(1 << 20).map((_, i) => (i * 31 + w) & 0xff);
    while (Date.now() < until) {
      const n = await outsiderNode(nextIp());
      for (let i = 0; i < 12 && Date.now() < until; i++) {
        const [p, body] = i % 2 === 0 ? [proto.hello, garbage.subarray(0, 600)] : [proto.submit, garbage];
        await request(n, targets[(w + i) % 2], p, body, { maxResponseBytes: 8192, timeoutMs: 5000 }).then(
          () => count('junk:accepted'),
          (e) => count(`junk:${codeOf(e)}`),
        );
        await sleep(100);
      }
      await n.stop();
    }
  };
  await Promise.all([...Array.from({ length: 6 }, (_, w) => churner(w)), ...Array.from({ length: 3 }, (_, w) => puller(w)), ...Array.from({ length: 2 }, (_, w) => junk(w))]);
  return counts;
}

/** The diagnostics' headline figures per miner, in MB: baseline → after, of what a full collection left. */
function retainedSummary(d: Record<string, Awaited<ReturnType<typeof diagnose>>>) {
  const mb = (x: number) => x / 2 ** 20;
  return Object.fromEntries(
    MINERS.map((id) => {
      const [b, a] = [d.baseline?.[id], d.after?.[id]];
      if (!b || !a || 'error' in b || 'error' in a) return [id, { error: (b as { error?: string })?.error ?? (a as { error?: string })?.error ?? 'missing' }];
      const pair = (f: (x: typeof b.afterGc) => number) => ({ beforeGc: [mb(f(b.beforeGc)), mb(f(a.beforeGc))], afterGc: [mb(f(b.afterGc)), mb(f(a.afterGc))], afterGc5s: [mb(f(b.afterGc5s)), mb(f(a.afterGc5s))] });
      const groupsMB = (g: Record<string, SmapsGroup>) => Object.fromEntries(Object.entries(g).map(([k, v]) => [k, { count: v.count, rssMB: v.rssKB / 1024 }]));
      return [
        id,
        {
          rss: pair((x) => x.rss),
          heapUsed: pair((x) => x.heapUsed),
          heapTotal: pair((x) => x.heapTotal),
          external: pair((x) => x.external),
          rssAnon: pair((x) => x.kinds.rss_anon * 2 ** 20),
          arrayBuffers: pair((x) => x.kinds.array_buffers * 2 ** 20),
          stallMs: [b.stallMs, a.stallMs],
          // after the collection, baseline → after, by mapping group
          smapsGrowthMB: groupsMB(smapsDiff(b.smapsAfter.groups, a.smapsAfter.groups)),
        },
      ];
    }),
  );
}

it('a mixed outsider flood keeps honest aggregations within 20 % of the unflooded rate; RSS comes back within 10 %', async () => {
  const c = (cluster = await Cluster.create({ miners: 2, clients: 6, phi: 3 }));
  if (SNAPSHOT_DIR) for (const id of MINERS) await mkdir(join(SNAPSHOT_DIR, id), { recursive: true });
  const diagnosticArgs = (id: string) => (!MINERS.includes(id) ? [] : SNAPSHOT_DIR ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${join(SNAPSHOT_DIR, id)}`] : DIAGNOSE ? ['--inspect=127.0.0.1:0'] : []);
  for (const n of c.init.nodes) c.start(n.id, { nodeArgs: diagnosticArgs(n.id) });
  const diagnostics: Record<string, Awaited<ReturnType<typeof diagnose>>> = {};
  await c.waitFor(MINERS, (s) => s.every((x) => x.aggregations >= 3), 300_000, 'the network to warm up (3 aggregations)');

  const lag = () => Promise.all(MINERS.map((id) => metric(c, id, 'nodejs_eventloop_lag_p50_seconds')));
  // every memory figure is READINGS readings READING_GAP_MS apart (readMemory), taken between
  // the slices (counted in neither): `first` as the soak read them before, `median` what the target uses
  type Readings = Awaited<ReturnType<typeof readMemory>>;
  const start = await readMemory(c);
  let base: Readings | undefined;
  let tBase = 0;
  const spreads: number[][] = [start.spreadMB];
  const spreadsAfterGc: number[][] = [start.spreadAfterGcMB];
  // the RSS growth of the unflooded slices (a miner's RSS grows with its chain), per ms: of the first readings and of the medians
  const unfloodedGrowth = { first: MINERS.map(() => 0), median: MINERS.map(() => 0), afterGc: MINERS.map(() => 0) };
  const totals = { unflooded: { ms: 0, aggregations: 0, latencies: [] as number[], lag: [] as number[][] }, flooded: { ms: 0, aggregations: 0, latencies: [] as number[], lag: [] as number[][] } };
  const slices: { flooded: boolean; ms: number; perMinute: number; loadavg1: number; cpuSecondsPerMinute: { testProcess: number; miners: number; clients: number } }[] = [];
  // where the 2 cores go per slice: the flood's outsiders run in this test process, so the
  // attacker's own CPU on this shared machine can be told apart from what the flood costs the miners
  const CLIENTS = c.init.nodes.filter((n) => n.role === 'client').map((n) => n.id);
  const cpuOf = async (ids: string[]) => (await Promise.all(ids.map((id) => metric(c, id, 'process_cpu_seconds_total').catch(() => Number.NaN)))).reduce((a, x) => a + x, 0);
  const counts: Record<string, number> = {};
  let last: Readings | undefined = start;
  for (const slice of schedule(BASE_MS, FLOOD_MS, SLICE_MS)) {
    // only the unflooded slices' growth is used: read before them (or reuse the reading that just ended the previous slice)
    const before = slice.flooded ? undefined : (last ?? (await readMemory(c)));
    if (before && before !== last) {
      spreads.push(before.spreadMB);
      spreadsAfterGc.push(before.spreadAfterGcMB);
    }
    const cpu0 = { test: process.cpuUsage(), miners: await cpuOf(MINERS), clients: await cpuOf(CLIENTS) };
    const w = slice.flooded ? (await Promise.all([window(c, slice.ms), flood(c, slice.ms).then((k) => Object.entries(k).forEach(([n, v]) => (counts[n] = (counts[n] ?? 0) + v)))]))[0] : await window(c, slice.ms);
    const t = slice.flooded ? totals.flooded : totals.unflooded;
    t.ms += slice.ms;
    t.aggregations += w.aggregations;
    t.latencies.push(...w.latencies);
    t.lag.push(await lag());
    const perMinute = (x: number) => (x * 60_000) / slice.ms;
    const testCpu = process.cpuUsage(cpu0.test);
    const cpuSecondsPerMinute = {
      testProcess: perMinute((testCpu.user + testCpu.system) / 1e6),
      miners: perMinute((await cpuOf(MINERS)) - cpu0.miners),
      clients: perMinute((await cpuOf(CLIENTS)) - cpu0.clients),
    };
    slices.push({ flooded: slice.flooded, ms: slice.ms, perMinute: w.perMinute, loadavg1: (await import('node:os')).loadavg()[0], cpuSecondsPerMinute });
    // read at the end of an unflooded slice (its growth; the first one is the baseline); a flooded slice's end is not used
    last = slice.flooded ? undefined : await readMemory(c);
    if (last) {
      spreads.push(last.spreadMB);
      spreadsAfterGc.push(last.spreadAfterGcMB);
      for (const k of ['first', 'median'] as const) last[k].rss.forEach((x, i) => (unfloodedGrowth[k][i] += x - before![k].rss[i]));
      last.median.rssAfterGc.forEach((x, i) => (unfloodedGrowth.afterGc[i] += x - before!.median.rssAfterGc[i]));
    }
    if (!base && last) {
      // the baseline: after the first unflooded slice, before any flood
      base = last;
      tBase = Date.now();
      if (DIAGNOSE) diagnostics.baseline = await diagnose(c, 'baseline');
    }
    if (slice.flooded && GAP_MS > 0) await sleep(GAP_MS);
  }
  const peak = await readMemory(c);
  await sleep(SETTLE_MS);
  const after = await readMemory(c);
  spreads.push(peak.spreadMB, after.spreadMB);
  spreadsAfterGc.push(peak.spreadAfterGcMB, after.spreadAfterGcMB);
  if (DIAGNOSE) diagnostics.after = await diagnose(c, 'after');
  const baseline = base ?? start;
  // a miner's RSS grows with its chain even unflooded (blocks, states, caches): that growth,
  // measured over the unflooded slices and extended from the baseline to the last reading, is
  // not the flood's
  const rssFigures = (k: 'first' | 'median', field: 'rss' | 'rssAfterGc' = 'rss') => {
    const drift = unfloodedGrowth[field === 'rss' ? k : 'afterGc'].map((g) => (g / totals.unflooded.ms) * (Date.now() - tBase));
    const b = baseline[k][field];
    return {
      start: start[k][field].map((x) => x / 2 ** 20),
      baseline: b.map((x) => x / 2 ** 20),
      endOfSlices: peak[k][field].map((x) => x / 2 ** 20),
      after: after[k][field].map((x) => x / 2 ** 20),
      ratio: after[k][field].map((x, i) => x / b[i]),
      unfloodedDriftSinceBaseline: drift.map((x) => x / 2 ** 20),
      ratioToBaselinePlusDrift: after[k][field].map((x, i) => x / (b[i] + Math.max(0, drift[i]))),
    };
  };
  const heapFigures = (k: 'first' | 'median') => ({ baseline: baseline[k].heap.map((x) => x / 2 ** 20), endOfSlices: peak[k].heap.map((x) => x / 2 ** 20), after: after[k].heap.map((x) => x / 2 ** 20) });
  const ratesOf = { perMinute: (totals.unflooded.aggregations * 60_000) / totals.unflooded.ms, statusP50Ms: p50(totals.unflooded.latencies) };
  const during = { perMinute: (totals.flooded.aggregations * 60_000) / totals.flooded.ms, statusP50Ms: p50(totals.flooded.latencies) };
  const meanLag = (xs: number[][]) => MINERS.map((_, i) => (xs.reduce((a, x) => a + x[i], 0) / xs.length) * 1000);
  const statuses = await Promise.all(MINERS.map((id) => c.status(id)));
  const clients = await Promise.all(c.init.nodes.filter((n) => n.role === 'client').map((n) => c.status(n.id)));

  const retained = DIAGNOSE ? retainedSummary(diagnostics) : {};
  const report = {
    floodMs: FLOOD_MS,
    baseMs: BASE_MS,
    settleMs: SETTLE_MS,
    sliceMs: SLICE_MS,
    gapMs: GAP_MS,
    aggregationsPerMinute: { unflooded: ratesOf.perMinute, flooded: during.perMinute, ratio: during.perMinute / ratesOf.perMinute },
    slices,
    statusP50Ms: { unflooded: ratesOf.statusP50Ms, flooded: during.statusP50Ms },
    eventLoopLagP50Ms: { unflooded: meanLag(totals.unflooded.lag), flooded: meanLag(totals.flooded.lag) },
    // the first of each point's readings (what the soak reported before the medians)
    rssMB: rssFigures('first'),
    heapUsedMB: heapFigures('first'),
    // what the RSS above is made of (anonymous, file-backed, ArrayBuffers), at the baseline and after
    memoryMB: { baseline: baseline.first.memory, after: after.first.memory },
    // the medians of READINGS readings READING_GAP_MS apart: what the target is checked on
    rssMedianMB: rssFigures('median'),
    // the same medians of the RSS read right after each miner's latest full collection (bfl_memory_after_gc_bytes)
    rssAfterGcMedianMB: rssFigures('median', 'rssAfterGc'),
    heapUsedMedianMB: heapFigures('median'),
    memoryMedianMB: { baseline: baseline.median.memory, after: after.median.memory },
    // max - min of the RSS readings at each reading point, per miner: the swing of one reading
    rssSpreadMB: { max: MINERS.map((_, m) => Math.max(...spreads.map((x) => x[m]))), median: MINERS.map((_, m) => median(spreads.map((x) => x[m]))) },
    rssAfterGcSpreadMB: { max: MINERS.map((_, m) => Math.max(...spreadsAfterGc.map((x) => x[m]))), median: MINERS.map((_, m) => median(spreadsAfterGc.map((x) => x[m]))) },
    flood: counts,
    penalties: statuses.map((s) => s?.penalties),
    clientsUploaded: clients.map((s) => s?.uploaded),
    loadavg: (await import('node:os')).loadavg(),
    // SOAK_SNAPSHOT_DIR or SOAK_GC only: what a full collection leaves at the baseline and after, and its smaps
    ...(DIAGNOSE ? { diagnostics: { points: diagnostics, retained } } : {}),
  };
  // the target's figure: each miner's RSS right after a full collection, at the baseline and 60 s after the flood
  const rssRetained = MINERS.map((id) => (retained[id] as { rss?: { afterGc: number[] } })?.rss?.afterGc);
  const rssRetainedMB = { baseline: rssRetained.map((x) => x?.[0] ?? Number.NaN), after: rssRetained.map((x) => x?.[1] ?? Number.NaN), ratio: rssRetained.map((x) => (x ? x[1] / x[0] : Number.NaN)) };
  Object.assign(report, { rssRetainedMB });
  await mkdir('out/soak', { recursive: true });
  await writeFile('out/soak/soak.json', `${JSON.stringify(report, null, 2)}\n`);
  console.log(JSON.stringify(report, null, 2));

  // honest members were never penalised; the flood met the defences
  for (const p of report.penalties) for (const id of c.init.nodes.map((n) => n.id)) expect(p?.[id]).toBeUndefined();
  expect(counts['pull:served'] ?? 0).toBe(0);
  expect(report.aggregationsPerMinute.ratio).toBeGreaterThanOrEqual(0.8);
  // the RSS target on what each miner holds: its RSS right after a full collection (through
  // the inspector), 60 s after the flood against the baseline. A plain reading is the moment of
  // V8's collection cycle it falls on: with no flood at all the medians moved -4 %/+17 % (the
  // control, docs/decisions.md "A miner's memory", ninth look); they stay in the report
  // (rssMedianMB, rssMB) beside this one. A snapshot run (SOAK_SNAPSHOT_DIR) keeps the snapshots'
  // own memory: no RSS verdict there.
  if (!SNAPSHOT_DIR) {
    expect(DIAGNOSE, 'the RSS target needs the retained readings (SOAK_GC is not 0)').toBe(true);
    for (const r of rssRetainedMB.ratio) expect(r).toBeLessThanOrEqual(1.1);
  }
});
