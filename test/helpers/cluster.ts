/** A local network of real bfl-node processes for e2e tests (the testnet's topology). */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { InitResult } from '../../src/config/local-network.ts';
import { initLocalNetwork } from '../../src/node/testnet.ts';
import { availableParallelism } from 'node:os';
import { launchSettings } from '../../src/node/memory-settings.ts';
import { tmpDir } from './tmp.ts';

const BIN = new URL('../../bin/bfl-node.js', import.meta.url).pathname;

export type Status = Record<string, any>;

/**
 * Node flags for the nodes' processes, for diagnosis (flags such as --cpu-prof are not allowed in
 * NODE_OPTIONS): BFL_E2E_NODE_ARGS, space-separated; `{id}` becomes the node's id
 * (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof/{id}`).
 */
const nodeArgs = (id: string): string[] => (process.env.BFL_E2E_NODE_ARGS ?? '').split(' ').filter(Boolean).map((a) => a.replaceAll('{id}', id));

export class Cluster {
  readonly dir: string;
  readonly init: InitResult;
  private readonly procs = new Map<string, ChildProcess>();

  private constructor(dir: string, init: InitResult) {
    this.dir = dir;
    this.init = init;
  }

  static async create(o: { miners: number; clients: number; phi: number; difficulty?: number; learning?: Record<string, unknown>; chain?: Record<string, unknown>; p2p?: Record<string, unknown> }): Promise<Cluster> {
    const dir = await tmpDir('bfl-e2e-');
    const init = await initLocalNetwork({
      dir,
      miners: o.miners,
      clients: o.clients,
      networkId: 'bfl-e2e',
      // ~0.1 s of one core per block with the WebAssembly search (~10 M hashes per CPU second):
      // blocks much faster than a loaded machine passes them between the miners make them mine
      // apart from genesis and reorganise to depth 8 (seen at 20,000 and 150,000)
      chain: { difficulty: o.difficulty ?? 1_000_000, phi: o.phi, ...o.chain },
      learning: { rate: 100, lr: 0.05, N: 50, E: 2, ...o.learning },
      // clients upload up to twice a second here (100 samples/s, N = 50): above the default per-client limit
      p2p: { clientUpdatesPerMinute: 600, ...o.p2p },
    });
    return new Cluster(dir, init);
  }

  node(id: string) {
    return this.init.nodes.find((n) => n.id === id)!;
  }

  /** Start a node; `config` another network file of the same network (e.g. one that leaves some
   * members' addresses out); `nodeArgs` Node flags for this node alone, after BFL_E2E_NODE_ARGS's
   * (the soak's diagnostics: `--heapsnapshot-signal` on the miners only). */
  start(id: string, o: { config?: string; nodeArgs?: string[] } = {}): void {
    const n = this.node(id);
    const out = createWriteStream(join(this.dir, `${id}.log`), { flags: 'a' });
    const flags = [...nodeArgs(id), ...(o.nodeArgs ?? [])];
    const launch = launchSettings(flags, process.env, availableParallelism()); // as the launcher would (IPC: it does not re-execute)
    const child = spawn(process.execPath, [...launch.args, ...flags, BIN, '--role', n.role, '--config', o.config ?? this.init.config, '--identity', n.identity, '--datadir', n.datadir], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'], // a node whose test process dies stops too
      env: { ...process.env, ...launch.env, BFL_LOG_LEVEL: 'info' }, // as bfl-node testnet starts them
    });
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
    this.procs.set(id, child);
  }

  /** The pid of a node this cluster started and that still runs (for /proc and signals). */
  pid(id: string): number | undefined {
    const child = this.procs.get(id);
    return child && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
  }

  async stop(id: string, signal: NodeJS.Signals = 'SIGINT'): Promise<void> {
    const child = this.procs.get(id);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
    this.procs.delete(id);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.procs.keys()].map((id) => this.stop(id)));
  }

  async status(id: string): Promise<Status | undefined> {
    try {
      const res = await fetch(`${this.node(id).api}/status`, { signal: AbortSignal.timeout(2000) });
      return res.ok ? ((await res.json()) as Status) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Poll until `pred` holds (it gets the statuses of the given nodes). */
  async waitFor(ids: string[], pred: (s: Status[]) => boolean, timeoutMs: number, what: string): Promise<Status[]> {
    const until = Date.now() + timeoutMs;
    let last: Status[] = [];
    while (Date.now() < until) {
      const s = await Promise.all(ids.map((id) => this.status(id)));
      if (s.every(Boolean)) {
        last = s as Status[];
        if (pred(last)) return last;
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    throw new Error(`timed out waiting for ${what}; last statuses: ${JSON.stringify(last.map((x) => ({ id: x.id, height: x.height, aggregations: x.aggregations, tip: x.tip?.slice(0, 12), uploaded: x.uploaded, buffered: x.buffered })))}\nlogs in ${this.dir}`);
  }

  /** Like waitFor, but `pred` must keep holding (same statuses' keys) for `stableMs`. */
  async waitStable(ids: string[], pred: (s: Status[]) => boolean, timeoutMs: number, what: string, stableMs = 2000): Promise<Status[]> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const first = await this.waitFor(ids, pred, Math.max(1000, until - Date.now()), what);
      await new Promise((r) => setTimeout(r, stableMs));
      const again = await Promise.all(ids.map((id) => this.status(id)));
      if (again.every(Boolean) && pred(again as Status[]) && again.every((s, i) => s!.tip === first[i].tip)) return again as Status[];
      if (Date.now() > until) throw new Error(`${what}: never stable for ${stableMs} ms; logs in ${this.dir}`);
    }
  }

  async log(id: string): Promise<string> {
    return readFile(join(this.dir, `${id}.log`), 'utf8').catch(() => '');
  }

  /** Change the network config (before starting nodes). */
  async editConfig(f: (c: any) => void): Promise<void> {
    const c = JSON.parse(await readFile(this.init.config, 'utf8'));
    f(c);
    await writeFile(this.init.config, JSON.stringify(c, null, 2));
  }
}
