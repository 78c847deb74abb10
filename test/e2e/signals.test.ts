/**
 * A supervisor stops what it started (issue 14): a node run through `npx bfl-node` stops on a
 * SIGTERM to npx (npm's `sh -c` wrapper does not pass it on) and when npx is killed outright;
 * `bfl-node testnet` stops its miners and clients on SIGINT and SIGTERM, and they stop by
 * themselves when the testnet is killed with SIGKILL. Every check is on the pids: none is left.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initLocalNetwork } from '../../src/node/testnet.ts';
import { tmpDir } from '../helpers/tmp.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/bfl-node.js');
const started: ChildProcess[] = [];
const nodePids: number[] = [];

/** Running (a zombie that nobody reaped counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The pid a started node records in its datadir. */
async function nodePid(datadir: string): Promise<number> {
  const file = join(datadir, 'node.pid');
  await until(() => existsSync(file), 60_000, `${file}`);
  const pid = Number(readFileSync(file, 'utf8'));
  nodePids.push(pid);
  return pid;
}

afterAll(() => {
  // nothing may be left; if a check failed, do not leave the processes running either
  for (const pid of nodePids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

describe('no orphans', () => {
  it('npx bfl-node: SIGTERM to npx stops the node; so does npx killed with SIGKILL', { timeout: 120_000 }, async () => {
    const dir = await tmpDir('bfl-sig-');
    const init = await initLocalNetwork({ dir, miners: 2, clients: 1, networkId: 'bfl-sig', chain: { difficulty: 1000, phi: 1 } });
    const npx = (id: string) => {
      const n = init.nodes.find((x) => x.id === id)!;
      // as an operator types it; the test's environment is an npm one already, start clean of it
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')));
      const c = spawn('npx', ['bfl-node', '--role', 'miner', '--config', init.config, '--identity', n.identity, '--datadir', n.datadir], { cwd: ROOT, stdio: 'ignore', env });
      started.push(c);
      return { c, datadir: n.datadir };
    };
    const [a, b] = [npx('miner-1'), npx('miner-2')];
    const [pa, pb] = [await nodePid(a.datadir), await nodePid(b.datadir)];
    expect(pa).not.toBe(a.c.pid); // npx runs the node under npm and a shell
    a.c.kill('SIGTERM');
    b.c.kill('SIGKILL');
    await until(() => !alive(pa), 30_000, `the node ${pa} to stop after SIGTERM to npx`);
    await until(() => !alive(pb), 30_000, `the node ${pb} to stop after npx was killed`);
    expect(existsSync(join(a.datadir, 'node.pid'))).toBe(false); // a graceful stop
    expect(existsSync(join(b.datadir, 'node.pid'))).toBe(false);
  });

  for (const signal of ['SIGINT', 'SIGTERM', 'SIGKILL'] as const) {
    it(`bfl-node testnet: ${signal} to it leaves none of its nodes running`, { timeout: 120_000 }, async () => {
      const dir = await tmpDir('bfl-sig-');
      const t = spawn(process.execPath, [BIN, 'testnet', '--miners', '1', '--clients', '1', '--dir', dir, '--timeout', '600'], { stdio: ['ignore', 'pipe', 'pipe'] });
      started.push(t);
      let out = '';
      t.stdout!.on('data', (d) => (out += d));
      t.stderr!.on('data', (d) => (out += d));
      const exited = new Promise<[number | null, string | null]>((r) => t.once('exit', (code, sig) => r([code, sig])));
      const pids = [await nodePid(join(dir, 'data', 'miner-1')), await nodePid(join(dir, 'data', 'client-1'))];
      expect(pids.every(alive), `${pids.map((p) => `${p}: ${alive(p) ? 'running' : 'gone'}`).join(', ')}\n${out}`).toBe(true);
      t.kill(signal);
      const [code, sig] = await exited;
      if (signal === 'SIGKILL') expect(sig).toBe('SIGKILL');
      else {
        // the testnet stopped its nodes before it exited, and said so
        expect(code, out).toBe(130);
        expect(pids.filter(alive)).toEqual([]);
        expect(out).toMatch(new RegExp(`${signal}: stopping the nodes`));
      }
      await until(() => !pids.some(alive), 30_000, `the nodes ${pids} to stop`);
    });
  }
});
