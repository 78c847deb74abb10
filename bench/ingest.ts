/**
 * Update ingestion (`bfl-node bench ingest`): one miner daemon (the real one: libp2p, signature
 * check, update pool on LevelDB, gossip announcements, mining) and C flooding clients on
 * loopback libp2p. Each client sends signed updates of the network's model size one after
 * another (an update differs from the last in one parameter: every digest is new) for S seconds.
 * Reported: accepted updates per second, their MB/s, p50/p99 submit latency, and the ceiling
 * measured in the same run: raw libp2p stream throughput between two nodes of this process
 * (same transport, encryption and muxer, no protocol logic).
 *
 * The senders (the clients; the raw stream's writer) run in a thread of their own
 * (bench/ingest-worker.ts), the receivers (the miner; the raw stream's reader) in this one: a
 * client's hashing, signing, sealing and encryption happen on its own device, and in one thread
 * they were charged to the miner (issue 12: a third of the main thread's time was the clients').
 * Both sides of the comparison are alike: one receiving thread, one sending thread. By default
 * the clients also sign and seal their updates before the window (`prepare: 'before'`), so that
 * in it they only send, as the raw stream's sender does: on the bench's two shared cores, the
 * signing and sealing of live clients (`prepare: 'live'`) took CPU from the miner that on a
 * real network belongs to the clients' devices. The raw stream is measured just before and just
 * after the intake, and the mean taken: the load of a shared machine moves between the two.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { loadNetworkConfig } from '../src/config/network.ts';
import { type P2PNode, createP2P } from '../src/net/p2p.ts';
import { initialModelOf, startNode } from '../src/node/daemon.ts';
import { initLocalNetwork } from '../src/node/testnet.ts';
import { silentLogger } from '../src/util/logger.ts';
import { median } from './stats.ts';
import type { IngestWorkerJob, IngestWorkerResult, PrepareMode, UploadMode } from './ingest-worker.ts';

export interface IngestBench {
  clients: number;
  upload: UploadMode;
  prepare: PrepareMode;
  /** Updates built before the window (`prepare: before`), and whether a client's stock ran out before `seconds` (the window ended there). */
  prepared: number;
  ranOut: boolean;
  seconds: number;
  updateBytes: number;
  submitted: number;
  accepted: number;
  /** Refusals and failures by error code (none expected). */
  errors: Record<string, number>;
  acceptedPerSecond: number;
  mbPerSecond: number; // accepted payload MB (10^6 bytes) per second
  p50Ms: number;
  p99Ms: number;
  /** The mean of the raw stream measured just before and just after the intake (`rawStreamRuns`): on a shared machine the load moves between the two. */
  rawStreamMbPerSecond: number;
  rawStreamRuns: number[];
  ratioToRawStream: number;
  /**
   * CPU time of the receiving thread (the miner's event loop; the raw stream's reader) per
   * update of `updateBytes`, and their ratio: what the intake costs beside what the bytes alone
   * cost, a figure that a loaded machine changes far less than the throughputs (which are
   * shares of contended cores). The clients' thread beside them (what a sender pays).
   */
  mainThreadCpuMsPerUpdate: number;
  rawThreadCpuMsPerUpdate: number;
  cpuRatioToRawStream: number;
  clientThreadCpuMsPerUpdate: number;
  /**
   * CPU of the whole process (every thread: the miner's event loop, its verifier, libuv's and
   * LevelDB's threads, V8's GC helpers, the senders) per update, intake and raw stream, and
   * their ratio: when the machine is shared, the throughputs divide this process's share of the
   * cores by these.
   */
  processCpuMsPerUpdate: number;
  rawProcessCpuMsPerUpdate: number;
  processCpuRatioToRawStream: number;
  /**
   * Where the process's CPU goes during the intake, per update, by thread (Linux: /proc/self/task;
   * absent elsewhere): `main` the miner's event loop, the others by thread name (`verifier`, V8's
   * `V8Worker` helpers, `libuv-worker`, ...), user and system (kernel: socket and file copies)
   * ms apart. Threads that ended within the window (the senders' thread) are not in it.
   */
  threadsCpuMsPerUpdate?: Record<string, { user: number; system: number }>;
  /** The same for the raw stream (per 636 kB), both its runs. */
  rawThreadsCpuMsPerUpdate?: Record<string, { user: number; system: number }>;
  loadAverage1m: number;
}

export interface IngestOptions {
  clients?: number;
  seconds?: number;
  /** ϕ of the bench network: default the highest allowed, so that the miner takes updates in and
   * mines, but never aggregates during the measurement (that is `bench aggregate`). */
  phi?: number;
  /** Default `stream` (pipelined frames, net/frames.ts); `request` is one request-response stream per update, as before. */
  upload?: UploadMode;
  /** Default `before`: the clients' updates are signed and sealed before the window (ingest-worker.ts, PrepareMode). */
  prepare?: PrepareMode;
}

const RAW_PROTOCOL = '/bfl-bench/raw/1';

async function p2pNode(networkId: string): Promise<P2PNode> {
  return createP2P({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], networkId, gossip: false, mdns: false, ipColocationPenalty: false, maxMessageBytes: 64 * 1024 });
}

/** CPU ms of the whole process (all threads). */
function processCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** CPU ms of the calling thread. */
function threadCpuMs(): number {
  const u = process.threadCpuUsage();
  return (u.user + u.system) / 1000;
}

/** Per thread of this process (Linux), its name and user and system CPU ms; empty where /proc is missing. */
function threadsCpu(): Map<string, { name: string; user: number; system: number }> {
  const out = new Map<string, { name: string; user: number; system: number }>();
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  const tick = 1000 / 100; // USER_HZ: 100 on every Linux ABI Node supports
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      // fields after the parenthesised name: state is field 3, utime 14, stime 15
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const name = Number(tid) === process.pid ? 'main' : readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      out.set(tid, { name, user: Number(f[11]) * tick, system: Number(f[12]) * tick });
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

/** CPU ms per `per` by thread name between two `threadsCpu()` snapshots (threads present in both), added into `into`. */
function threadsDelta(before: ReturnType<typeof threadsCpu>, after: ReturnType<typeof threadsCpu>, per: number, into: Record<string, { user: number; system: number }> = {}): Record<string, { user: number; system: number }> {
  for (const [tid, a] of after) {
    const b = before.get(tid);
    if (!b) continue;
    const t = (into[a.name] ??= { user: 0, system: 0 });
    t.user += (a.user - b.user) / per;
    t.system += (a.system - b.system) / per;
  }
  return into;
}

/** The mean of two per-MB breakdowns, times `mb`. */
function meanThreads(a: Record<string, { user: number; system: number }>, b: Record<string, { user: number; system: number }>, mb: number): Record<string, { user: number; system: number }> {
  const out: Record<string, { user: number; system: number }> = {};
  for (const t of [a, b])
    for (const [k, v] of Object.entries(t)) {
      const o = (out[k] ??= { user: 0, system: 0 });
      o.user += (v.user * mb) / 2;
      o.system += (v.system * mb) / 2;
    }
  return out;
}

function roundThreads(t: Record<string, { user: number; system: number }>): Record<string, { user: number; system: number }> | undefined {
  const r = (x: number) => Number(x.toFixed(2));
  const entries = Object.entries(t).filter(([, v]) => v.user + v.system > 0);
  return entries.length ? Object.fromEntries(entries.sort((a, b) => b[1].user + b[1].system - (a[1].user + a[1].system)).map(([k, v]) => [k, { user: r(v.user), system: r(v.system) }])) : undefined;
}

/** Run one sender job in a thread of its own; resolves with its result. `started` is called when its senders begin. */
function inWorker(job: IngestWorkerJob, started?: () => void): Promise<IngestWorkerResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./ingest-worker.ts', import.meta.url), { workerData: job, name: 'ingest-senders' });
    let result: IngestWorkerResult | undefined;
    w.on('message', (m: IngestWorkerResult | { kind: 'started' }) => (m.kind === 'started' ? started?.() : (result = m)));
    w.once('error', reject);
    w.once('exit', (code) => (result ? resolve(result) : reject(new Error(`ingest sender thread exited (${code}) without a result`))));
  });
}

/**
 * MB/s of one stream between two libp2p nodes of this process, written in `chunk`-byte pieces by
 * a sender in another thread (as the clients are): the receiving thread's bytes between its first
 * and its last piece.
 */
export async function rawStreamMbPerSecond(seconds: number, chunk: number): Promise<{ mbPerSecond: number; cpuMsPerMb: number; processCpuMsPerMb: number; threads: Record<string, { user: number; system: number }> }> {
  const b = await p2pNode('bench');
  try {
    let received = 0;
    let first = 0;
    let last = 0;
    let firstCpu = 0;
    let lastCpu = 0;
    let firstProcessCpu = 0;
    let lastProcessCpu = 0;
    let firstThreads: ReturnType<typeof threadsCpu> = new Map();
    await b.handle(RAW_PROTOCOL, async (stream) => {
      for await (const piece of stream) {
        if (received === 0) {
          first = performance.now();
          firstCpu = threadCpuMs();
          firstProcessCpu = processCpuMs();
          firstThreads = threadsCpu();
        }
        received += piece.byteLength;
        last = performance.now();
        lastCpu = threadCpuMs();
        lastProcessCpu = processCpuMs();
      }
    });
    await inWorker({ kind: 'raw', to: b.getMultiaddrs()[0].toString(), protocol: RAW_PROTOCOL, seconds, chunk });
    // the last pieces may still be in flight when the sender's thread ends
    for (let quiet = 0; quiet < 5 && performance.now() - last < 200; quiet++) await new Promise((r) => setTimeout(r, 50));
    const mb = received / 1e6;
    const threads = threadsDelta(firstThreads, threadsCpu(), mb); // per MB; the sender's thread has ended
    return { mbPerSecond: mb / ((last - first) / 1000), cpuMsPerMb: (lastCpu - firstCpu) / mb, processCpuMsPerMb: (lastProcessCpu - firstProcessCpu) / mb, threads };
  } finally {
    await b.stop();
  }
}

export async function benchIngest(opts: IngestOptions = {}): Promise<IngestBench> {
  const loadAverage1m = loadavg()[0];
  const clients = opts.clients ?? 4;
  const seconds = opts.seconds ?? 10;
  const upload = opts.upload ?? 'stream';
  const prepare = opts.prepare ?? 'before';
  const dir = await mkdtemp(join(tmpdir(), 'bfl-ingest-'));
  const closers: (() => unknown)[] = [];
  try {
    // the per-client upload limit off: the bench measures what the intake can take, flooding by design
    const init = await initLocalNetwork({ dir, miners: 1, clients, networkId: 'bench-ingest', chain: { phi: opts.phi ?? 100_000 }, p2p: { clientUpdatesPerMinute: 0, requestsPerSecond: 1_000_000 } }); // intake speed, not the per-client and per-member limits
    const cfg = await loadNetworkConfig(init.config);
    const minerNode = init.nodes.find((n) => n.role === 'miner')!;
    const miner = await startNode({ role: 'miner', config: init.config, identity: minerNode.identity, datadir: minerNode.datadir, logger: silentLogger, miningWorkers: 1 });
    closers.push(() => miner.stop());
    const addr = cfg.addresses.get(minerNode.id)!;
    const updateBytes = initialModelOf(cfg).length * 4;

    const rawSeconds = Math.min(seconds, 5);
    const rawBefore = await rawStreamMbPerSecond(rawSeconds, updateBytes);

    let cpu0 = 0;
    let processCpu0 = 0;
    let threads0: ReturnType<typeof threadsCpu> = new Map();
    const r = await inWorker(
      {
        kind: 'clients',
        config: init.config,
        clients: init.nodes.filter((n) => n.role === 'client').map((n) => ({ id: n.id, identity: n.identity })),
        miner: { id: minerNode.id, addr: `${addr.listen}/p2p/${addr.peerId}`, peerId: addr.peerId! },
        seconds,
        upload,
        prepare,
        // no more than the raw stream could carry in the window, with room (a loaded machine moves it)
        maxPrepared: Math.ceil((1.5 * rawBefore.mbPerSecond * 1e6 * seconds) / updateBytes),
      },
      () => {
        cpu0 = threadCpuMs();
        processCpu0 = processCpuMs();
        threads0 = threadsCpu();
      },
    );
    const mainCpu = threadCpuMs() - cpu0;
    const processCpu = processCpuMs() - processCpu0;
    const threads1 = threadsCpu();
    const rawAfter = await rawStreamMbPerSecond(rawSeconds, updateBytes);
    const mean = (f: (x: typeof rawBefore) => number) => (f(rawBefore) + f(rawAfter)) / 2;
    const raw = { mbPerSecond: mean((x) => x.mbPerSecond), cpuMsPerMb: mean((x) => x.cpuMsPerMb), processCpuMsPerMb: mean((x) => x.processCpuMsPerMb) };
    if (r.kind !== 'clients') throw new Error('unexpected result from the clients thread');
    const { accepted, errors } = r;
    const latencies = r.latencies.sort((a, b) => a - b);
    const elapsed = r.ms / 1000;
    const mbPerSecond = (accepted * updateBytes) / 1e6 / elapsed;
    const round = (x: number, d = 1) => Number(x.toFixed(d));
    return {
      clients,
      upload,
      prepare,
      prepared: r.prepared,
      ranOut: r.ranOut,
      seconds: round(elapsed, 2),
      updateBytes,
      submitted: accepted + Object.values(errors).reduce((s, x) => s + x, 0),
      accepted,
      errors,
      acceptedPerSecond: round(accepted / elapsed),
      mbPerSecond: round(mbPerSecond),
      p50Ms: round(latencies.length ? median(latencies) : 0),
      p99Ms: round(latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] : 0),
      rawStreamMbPerSecond: round(raw.mbPerSecond),
      rawStreamRuns: [round(rawBefore.mbPerSecond), round(rawAfter.mbPerSecond)],
      ratioToRawStream: round(mbPerSecond / raw.mbPerSecond, 3),
      mainThreadCpuMsPerUpdate: round(mainCpu / Math.max(1, accepted), 2),
      rawThreadCpuMsPerUpdate: round((raw.cpuMsPerMb * updateBytes) / 1e6, 2),
      cpuRatioToRawStream: round((raw.cpuMsPerMb * updateBytes) / 1e6 / (mainCpu / Math.max(1, accepted)), 3),
      clientThreadCpuMsPerUpdate: round(r.cpuMs / Math.max(1, accepted), 2),
      processCpuMsPerUpdate: round(processCpu / Math.max(1, accepted), 2),
      rawProcessCpuMsPerUpdate: round((raw.processCpuMsPerMb * updateBytes) / 1e6, 2),
      processCpuRatioToRawStream: round((raw.processCpuMsPerMb * updateBytes) / 1e6 / (processCpu / Math.max(1, accepted)), 3),
      threadsCpuMsPerUpdate: roundThreads(threadsDelta(threads0, threads1, Math.max(1, accepted))),
      // the mean of the two raw runs, per update's bytes
      rawThreadsCpuMsPerUpdate: roundThreads(meanThreads(rawBefore.threads, rawAfter.threads, updateBytes / 1e6)),
      loadAverage1m: round(loadAverage1m, 2),
    };
  } finally {
    for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}
