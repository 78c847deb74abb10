/**
 * The embedded default, as a whole network on this machine: M miners and K clients as separate
 * processes on loopback, on the bundled MNIST. Progress from each node's /status; stops when
 * every miner's chain holds A aggregations and the miners agree on the tip.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientStatus, MinerStatus, NodeStatus } from '../api/status.ts';
import { type InitOptions, type InitResult, initNetwork } from '../config/local-network.ts';
import { launchSettings } from './memory-settings.ts';

export interface TestnetOptions {
  miners: number;
  clients: number;
  aggregations: number;
  dir?: string;
  keep: boolean;
  timeoutSeconds: number;
  /** Config overrides (defaults below suit a 2-core laptop). */
  phi?: number;
  difficulty?: number;
  /** The last `attackers` clients run this attack (experiments/attacks.ts). */
  attackers?: number;
  attack?: string;
  /** learning.mode: "split" keeps heads on the clients and aggregates the miners' body updates. */
  mode?: 'federated' | 'split';
  learning?: Record<string, unknown>;
  aggregation?: Record<string, unknown>;
  p2p?: Record<string, unknown>;
  onProgress?: (p: Progress) => void;
  /** Told once every node process is spawned: where each node's dashboard is. */
  onStarted?: (nodes: { id: string; role: 'miner' | 'client'; dashboard: string }[]) => void;
  /** Stop early (a signal to the testnet): the nodes are stopped and the summary says why. */
  signal?: AbortSignal;
}

// Faster than the network defaults so that a run takes a minute or two on a laptop:
// ~0.1 s of one core per block (the WebAssembly search does ~10 M hashes per CPU second; at
// 200,000, the JS search's figure, blocks came so fast that the two miners forked all the
// time), 50 samples/s per client (an update every ~2 s), and a rate that moves the model
// visibly per round. Every value is written into the testnet's config. Federated mode shortens
// stale steps (aggregation.stalenessDamping, FedBuff's 1/√(1 + τ)): here four updates in five
// are 1-2 aggregations old when they are aggregated, and at full length the model fell 4-5
// points within two aggregations in some runs (docs/decisions.md, "Stale updates take a shorter step").
export const testnetDefaults = { difficulty: 1_000_000, rate: 50, lr: 0.05, stalenessDamping: 0.5 };


export interface Progress {
  seconds: number;
  height: number;
  aggregations: number;
  accuracy: number | null;
  flagged: string[];
  uploaded: number;
}

export interface TestnetSummary {
  aggregations: number;
  height: number;
  /** Federated: the global model on the first miner's test set. Split: the mean of the clients'
   * held-out accuracies (each its own head on the global body; a miner holds no head), read once
   * every client has trained a round after the target was reached (60 s at most). */
  finalAccuracy: number | null;
  /** The same measure at the first reading with no aggregation yet (the genesis model): a
   * network whose final accuracy is not above it did not learn, whatever its tip says. */
  initialAccuracy: number | null;
  mode: 'federated' | 'split';
  converged: boolean;
  reached: boolean;
  seconds: number;
  dir: string;
  config: string;
  miners: MinerStatus[];
  clients: ClientStatus[];
  error?: string;
}

const isMiner = (s: NodeStatus | undefined): s is MinerStatus => s?.role === 'miner';
const isClient = (s: NodeStatus | undefined): s is ClientStatus => s?.role === 'client';

/** The kernel's range of local ports for outgoing connections (Linux; else IANA's). */
export function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo > 0 && hi >= lo) return [lo, hi];
  } catch {
    // not Linux
  }
  return [49152, 65535];
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A TCP port free on loopback, outside the ephemeral range. Port 0 would hand out an ephemeral
 * port, and between our probe and the node's bind any outgoing connection on the machine (a
 * running node dials its peers) may take it as its local port: the testnet then failed beside
 * a running network with EADDRINUSE. Ports below the ephemeral range are only taken by
 * listeners, which the probe sees. `from`/`to` (exclusive) bound the search; a random start
 * keeps two testnets started together apart.
 */
export async function freePort(o: { from?: number; to?: number; exclude?: Set<number> } = {}): Promise<number> {
  const [lo, hi] = ephemeralRange();
  const [from, to] = o.from !== undefined ? [o.from, o.to ?? o.from + 1000] : lo > 21_024 ? [20_000, lo] : [hi + 1, 65_536];
  const n = to - from;
  const start = Math.floor(Math.random() * n);
  for (let i = 0; i < n && i < 2000; i++) {
    const port = from + ((start + i) % n);
    if (!o.exclude?.has(port) && (await canBind(port))) return port;
  }
  throw new Error(`no free TCP port on 127.0.0.1 in ${from}-${to - 1}`);
}

async function getStatus(api: string): Promise<NodeStatus | undefined> {
  // the node's own /status, typed by its contract (api/status.ts)
  try {
    const res = await fetch(`${api}/status`, { signal: AbortSignal.timeout(2000) });
    return res.ok ? ((await res.json()) as NodeStatus) : undefined;
  } catch {
    return undefined;
  }
}

/** A network on loopback with a free port per node (testnet and e2e tests). */
export async function initLocalNetwork(o: Omit<InitOptions, 'host' | 'basePort' | 'ports' | 'force'>): Promise<InitResult> {
  // A probed port stays free until its node binds it: keep this network's ports distinct.
  const taken = new Set<number>();
  const distinct = async () => {
    const p = await freePort({ exclude: taken });
    return taken.add(p), p;
  };
  const ports = [];
  for (let i = 0; i < o.miners + o.clients; i++) ports.push({ p2p: await distinct(), api: await distinct() });
  return initNetwork({ ...o, host: '127.0.0.1', basePort: 0, ports, force: true });
}

export async function runTestnet(o: TestnetOptions): Promise<TestnetSummary> {
  const dir = o.dir ?? (await mkdtemp(join(tmpdir(), 'bfl-testnet-')));
  const mode = o.mode ?? 'federated';
  const accuracyOf = (miners: MinerStatus[], clients: ClientStatus[]): number | null => {
    if (mode === 'federated') return miners[0]?.lastAccuracy ?? null;
    const known = clients.map((c) => c.lastAccuracy).filter((a): a is number => a !== null);
    return known.length ? known.reduce((x, y) => x + y, 0) / known.length : null;
  };
  await mkdir(join(dir, 'logs'), { recursive: true });
  const init = await initLocalNetwork({
    dir,
    miners: o.miners,
    clients: o.clients,
    networkId: 'bfl-testnet',
    // split: the miners make the updates, so ϕ = one body update per miner by default
    chain: { difficulty: o.difficulty ?? testnetDefaults.difficulty, phi: o.phi ?? (mode === 'split' ? o.miners : o.clients) },
    learning: { rate: testnetDefaults.rate, lr: testnetDefaults.lr, ...(mode === 'split' ? { mode } : {}), ...o.learning },
    aggregation: mode === 'split' ? o.aggregation : { stalenessDamping: testnetDefaults.stalenessDamping, ...o.aggregation },
    p2p: o.p2p,
  });
  const bin = new URL('../../bin/bfl-node.js', import.meta.url).pathname;
  const procs: { id: string; role: string; child: ChildProcess; log: string; exited?: number | null }[] = [];
  const t0 = Date.now();
  const summary: TestnetSummary = { aggregations: 0, height: 0, finalAccuracy: null, initialAccuracy: null, mode, converged: false, reached: false, seconds: 0, dir, config: init.config, miners: [], clients: [] };
  try {
    for (const n of init.nodes) {
      const log = join(dir, 'logs', `${n.id}.log`);
      const out = createWriteStream(log);
      const clientIndex = n.role === 'client' ? Number(n.id.split('-')[1]) : 0;
      const attacking = o.attack && o.attackers && clientIndex > o.clients - o.attackers;
      const args = [bin, '--role', n.role, '--config', init.config, '--identity', n.identity, '--datadir', n.datadir, ...(attacking ? ['--attack', o.attack!] : [])];
      // what the launcher would re-execute with (it does not here: the IPC channel would close)
      const launch = launchSettings([], process.env, availableParallelism());
      const child = spawn(process.execPath, [...launch.args, ...args], {
        // the IPC channel closes when this process exits, however it dies: the node then stops
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        env: { ...process.env, ...launch.env, BFL_LOG_LEVEL: process.env.BFL_LOG_LEVEL ?? 'info' },
      });
      child.stdout!.pipe(out);
      child.stderr!.pipe(out);
      const p = { id: n.id, role: n.role, child, log, exited: undefined as number | null | undefined };
      child.on('exit', (code) => (p.exited = code));
      procs.push(p);
    }
    const apis = init.nodes.map((n) => ({ id: n.id, role: n.role, api: n.api }));
    o.onStarted?.(apis.map((a) => ({ id: a.id, role: a.role, dashboard: `${a.api}/` })));
    // Target reached: stop the clients, let the miners record what they hold, then the miners
    // stop mining and must agree on one tip. Mining never pauses while updates arrive, so tips
    // compared mid-run differ by the block in flight.
    const quiesce = async () => {
      if (mode === 'split') await lastRounds();
      const clients = procs.filter((p) => p.role === 'client');
      for (const p of clients) p.child.kill('SIGINT');
      await Promise.all(clients.map((p) => (p.exited !== undefined ? undefined : new Promise((r) => p.child.once('exit', r)))));
      const until = Date.now() + 60_000;
      let agreed: string | undefined; // the tip the miners agreed on at the previous poll
      while (Date.now() < until && !o.signal?.aborted) {
        const miners = (await Promise.all(apis.filter((a) => a.role === 'miner').map((a) => getStatus(a.api)))).filter(isMiner);
        if (miners.length === o.miners) {
          summary.miners = miners;
          summary.aggregations = Math.min(...miners.map((m) => m.aggregations));
          summary.height = Math.max(...miners.map((m) => m.height));
          summary.finalAccuracy = accuracyOf(miners, summary.clients);
          const same = new Set(miners.map((m) => m.tip)).size === 1 && miners.every((m) => m.pool.unrecorded === 0);
          // stable across two polls: a reorg can make recorded updates unrecorded again
          summary.converged = same && agreed === miners[0].tip;
          if (summary.converged) return;
          agreed = same ? miners[0].tip : undefined;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
      summary.error = 'miners did not converge on one tip within 60 s of the clients stopping';
    };
    const deadline = t0 + o.timeoutSeconds * 1000;
    // Split: a client's accuracy is its own head after its latest round (node/client.ts), and
    // when the target is reached a client may not have finished a round on a recent body (before
    // its first, it shows the genesis model's ~0.1). The final figure is each client's after one
    // more round of its own: wait (60 s at most) until every client's `uploaded` has moved, which
    // /status counts only once that round's head is evaluated.
    const lastRounds = async () => {
      const from = new Map(summary.clients.map((c) => [c.id, c.uploaded]));
      const until = Math.min(Date.now() + 60_000, deadline);
      while (Date.now() < until && !o.signal?.aborted) {
        const clients = (await Promise.all(apis.filter((a) => a.role === 'client').map((a) => getStatus(a.api)))).filter(isClient);
        if (clients.length === o.clients) {
          summary.clients = clients;
          if (clients.every((c) => c.uploaded > (from.get(c.id) ?? -1))) return;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    };
    for (;;) {
      await new Promise((r) => setTimeout(r, 1000));
      if (o.signal?.aborted) throw new Error(`stopped: ${o.signal.reason ?? 'aborted'}`);
      const dead = procs.find((p) => p.exited !== undefined);
      if (dead) {
        const tail = (await readFile(dead.log, 'utf8')).split('\n').slice(-8).join('\n');
        throw new Error(`${dead.id} exited (code ${dead.exited}); the end of its log:\n${tail}`);
      }
      const statuses = await Promise.all(apis.map((a) => getStatus(a.api)));
      const miners = statuses.filter(isMiner);
      const clients = statuses.filter(isClient);
      summary.miners = miners;
      summary.clients = clients;
      if (miners.length === o.miners) {
        summary.aggregations = Math.min(...miners.map((m) => m.aggregations));
        summary.height = Math.max(...miners.map((m) => m.height));
        summary.finalAccuracy = accuracyOf(miners, clients);
        if (summary.initialAccuracy === null && summary.aggregations === 0) summary.initialAccuracy = summary.finalAccuracy;
        summary.converged = new Set(miners.map((m) => m.tip)).size === 1;
        o.onProgress?.({
          seconds: (Date.now() - t0) / 1000,
          height: summary.height,
          aggregations: summary.aggregations,
          accuracy: summary.finalAccuracy,
          flagged: [...new Set(miners.flatMap((m) => m.flagged))],
          uploaded: clients.reduce((s, c) => s + c.uploaded, 0),
        });
        summary.reached = summary.aggregations >= o.aggregations;
        if (summary.reached) break;
      }
      if (Date.now() > deadline) {
        summary.error = `timed out after ${o.timeoutSeconds} s with ${summary.aggregations} aggregations`;
        break;
      }
    }
    if (summary.reached) await quiesce();
  } catch (e) {
    summary.error = (e as Error).message;
  } finally {
    for (const p of procs) if (p.exited === undefined) p.child.kill('SIGINT');
    await Promise.all(procs.map((p) => (p.exited !== undefined ? undefined : new Promise((r) => p.child.once('exit', r)))));
    summary.seconds = Number(((Date.now() - t0) / 1000).toFixed(1));
    if (!o.keep && !o.dir && !summary.error) await rm(dir, { recursive: true, force: true });
  }
  return summary;
}
