/**
 * An operator's mistakes (issue 14): each gives one line on stderr that says what and how to
 * fix it, never a stack trace; the chain tools read a node's datadir without creating anything
 * and name the running node that holds it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { type Server, createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pathError } from '../../src/cli/datadir.ts';
import { cli } from '../helpers/cli.ts';
import { initLocalNetwork } from '../../src/node/testnet.ts';
import { tmpDir } from '../helpers/tmp.ts';

const BIN = new URL('../../bin/bfl-node.js', import.meta.url).pathname;

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}


/** One line of error, no stack trace. */
function oneLine(err: string): string {
  const lines = err.trim().split('\n').filter((l) => !l.startsWith('(run with --help'));
  expect(lines, err).toHaveLength(1);
  expect(err).not.toMatch(/^\s+at /m);
  return lines[0];
}

describe('usage errors', () => {
  it('an unknown top-level command says so, on stderr, exit 2', () => {
    const r = run(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(oneLine(r.err)).toMatch(/^error: unknown command 'frobnicate'.*testnet/);
  });

  it('no arguments, or a command group without its subcommand: the usage goes to stderr, exit 2', async () => {
    for (const args of [[], ['chain']]) {
      const r = await cli(args, { BFL_ROLE: '' });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toMatch(/Usage: bfl-node/);
    }
  });

  it('an invalid BFL_LOG_LEVEL or --log-level is a usage error naming the allowed values', async () => {
    const env = await cli(['--role', 'miner', '--config', 'c', '--identity', 'i', '--datadir', 'd'], { BFL_LOG_LEVEL: 'loud' });
    expect(env.code).toBe(2);
    expect(oneLine(env.err)).toMatch(/'loud' from env 'BFL_LOG_LEVEL' is invalid.*trace.*silent/);
    const flag = await cli(['--role', 'miner', '--log-level', 'chatty']);
    expect(flag.code).toBe(2);
    expect(oneLine(flag.err)).toMatch(/'chatty' is invalid/);
    expect((await cli(['--role', 'miner', '--log-format', 'xml'])).err).toMatch(/json, pretty/);
  });

  it('every daemon flag has an environment variable, shown in --help', async () => {
    const help = (await cli(['--help'])).out.replace(/\s+/g, ' ');
    for (const v of ['BFL_ROLE', 'BFL_CONFIG', 'BFL_IDENTITY', 'BFL_DATADIR', 'BFL_API', 'BFL_LISTEN', 'BFL_MINING_WORKERS', 'BFL_ATTACK', 'BFL_LOG_LEVEL', 'BFL_LOG_FORMAT']) expect(help).toContain(`env: ${v}`);
    const bad = await cli(['--role', 'miner'], { BFL_MINING_WORKERS: '0' });
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--mining-workers must be an integer from 1/);
  });
});

describe('paths', () => {
  it('keygen --out into a missing directory names it and how to create it', async () => {
    const dir = await tmpDir('bfl-op-');
    const r = await cli(['keygen', '--out', join(dir, 'nope', 'k.json')]);
    expect(r.code).toBe(1);
    expect(oneLine(r.err)).toMatch(new RegExp(`${join(dir, 'nope')} does not exist; create it.*--out.*\\(BAD_PATH\\)$`));
  });

  it('init --dir on a file, and a daemon --datadir that is a file, are one-line BAD_PATH errors', async () => {
    const file = join(await tmpDir('bfl-op-'), 'f');
    await writeFile(file, 'x');
    const init = await cli(['init', '--dir', file]);
    expect(init.code).toBe(1);
    expect(oneLine(init.err)).toMatch(/directory .*\/f is a file or lies under one; pass --dir a directory \(BAD_PATH\)/);
    const node = await cli(['--role', 'miner', '--config', 'c.json', '--identity', 'k.json', '--datadir', join(file, 'sub')]);
    expect(node.code).toBe(1);
    expect(oneLine(node.err)).toMatch(/datadir .*\/f\/sub is a file or lies under one; pass --datadir a directory/);
  });

  it('an unwritable datadir says so', async (ctx) => {
    const dir = await tmpDir('bfl-op-');
    const args = [BIN, '--role', 'miner', '--config', 'c.json', '--identity', 'k.json', '--datadir', join(dir, 'sub')];
    // root may write anywhere: run as nobody then; otherwise take our own write permission away
    const asRoot = process.getuid?.() === 0;
    // nobody must be able to run the CLI from this checkout (a clone under a 0700 directory, as
    // mktemp -d makes, is closed to it): otherwise there is nothing to observe here
    if (asRoot && spawnSync(process.execPath, [BIN, '--version'], { timeout: 60_000, uid: 65534, gid: 65534 }).status !== 0) {
      ctx.skip('running as root in a checkout that user nobody cannot read: no unprivileged user to observe an unwritable datadir with');
    }
    if (asRoot) await chmod(dir, 0o755);
    else await chmod(dir, 0o555);
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60_000, ...(asRoot ? { uid: 65534, gid: 65534 } : {}) });
    await chmod(dir, 0o755);
    expect(r.status).toBe(1);
    expect(oneLine(r.stderr)).toMatch(/^error: datadir .*\/sub is not writable by this user \(uid \d+\); fix its permissions or pass --datadir another directory \(BAD_PATH\)$/);
    const e = pathError(Object.assign(new Error('EROFS'), { code: 'EROFS' }), '/ro', '--datadir', 'datadir');
    expect(e.message).toMatch(/not writable/);
  });

  it('chain verify and chain show on a missing or empty directory create nothing', async () => {
    const dir = await tmpDir('bfl-op-');
    const missing = join(dir, 'missing');
    const v = await cli(['chain', 'verify', '--datadir', missing, '--json']);
    expect(v.code).toBe(1);
    expect(JSON.parse(v.out).error.message).toMatch(/does not exist/);
    expect(existsSync(missing)).toBe(false);
    const empty = join(dir, 'empty');
    await mkdir(empty);
    expect(oneLine((await cli(['chain', 'verify', '--datadir', empty])).err)).toMatch(/holds no chain/);
    expect(oneLine((await cli(['chain', 'show', '--datadir', empty])).err)).toMatch(/holds no chain/);
    expect(readdirSync(empty)).toEqual([]);
    // a datadir of a node that never ran a chain: neither chain/ nor a LevelDB appears
    await mkdir(join(empty, 'client'));
    await cli(['chain', 'show', '--datadir', empty]);
    expect(readdirSync(empty)).toEqual(['client']);
  });
});

describe('a running node', () => {
  const children: ChildProcess[] = [];
  const servers: Server[] = [];
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const s of servers) s.close();
  });

  it('holds its datadir: a second node and the chain tools name its pid; ports in use name the flag that moves them', { timeout: 120_000 }, async () => {
    const dir = await tmpDir('bfl-op-');
    const init = await initLocalNetwork({ dir, miners: 1, clients: 1, networkId: 'bfl-op', chain: { difficulty: 1000, phi: 1 } });
    const m = init.nodes[0];
    const args = ['--role', 'miner', '--config', init.config, '--identity', m.identity, '--datadir', m.datadir];
    const child = spawn(process.execPath, [BIN, ...args, '--log-format', 'pretty'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, BFL_LOG_LEVEL: 'info' } });
    children.push(child);
    let log = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr!.on('data', (d) => {
        log += d;
      });
      const poll = setInterval(() => existsSync(join(m.datadir, 'node.pid')) && (clearInterval(poll), resolve()), 100);
      child.once('exit', (code) => reject(new Error(`node exited ${code}: ${log}`)));
    });
    expect(log).toMatch(/INFO.*node started/); // --log-format pretty: a line for people, not JSON
    expect(log.trimStart()).not.toMatch(/^\{/);

    // a second node on the same datadir (other ports)
    const second = await cli([...args, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0']);
    expect(second.code).toBe(1);
    expect(oneLine(second.err)).toMatch(new RegExp(`${m.datadir} is locked by a running node \\(pid ${child.pid}\\); stop it first.*\\(STORE_LOCKED\\)$`));
    // the chain tools take the node's datadir and say who holds it
    const verify = await cli(['chain', 'verify', '--datadir', m.datadir]);
    expect(verify.code).toBe(1);
    expect(oneLine(verify.err)).toMatch(new RegExp(`locked by a running node \\(pid ${child.pid}\\); stop the node first`));
    const show = await cli(['chain', 'show', '--datadir', m.datadir]);
    expect(show.code).toBe(1);
    expect(oneLine(show.err)).toMatch(new RegExp(`locked by a running node \\(pid ${child.pid}\\)`));

    // ports in use: the listen port of the running node, and an API port held by a plain server
    const other = await tmpDir('bfl-op-');
    const p2pBusy = await cli(['--role', 'miner', '--config', init.config, '--identity', m.identity, '--datadir', other, '--api', '127.0.0.1:0']);
    expect(p2pBusy.code).toBe(1);
    expect(oneLine(p2pBusy.err)).toMatch(new RegExp(`the libp2p listen address ${m.listen} is in use by another process; stop it, or pass --listen MULTIADDR \\(env BFL_LISTEN\\) \\(PORT_IN_USE\\)`));
    const server = createServer();
    servers.push(server);
    const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as { port: number }).port)));
    const apiBusy = await cli(['--role', 'miner', '--config', init.config, '--identity', m.identity, '--datadir', await tmpDir('bfl-op-'), '--listen', '/ip4/127.0.0.1/tcp/0', '--api', `127.0.0.1:${port}`]);
    expect(apiBusy.code).toBe(1);
    expect(oneLine(apiBusy.err)).toMatch(new RegExp(`the HTTP API address 127.0.0.1:${port} is in use by another process; stop it, or pass --api HOST:PORT`));

    // stopped, the node leaves no pid file and its datadir reads as a chain
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(join(m.datadir, 'node.pid'))).toBe(false);
    const ok = await cli(['chain', 'verify', '--datadir', m.datadir, '--json']);
    expect(ok.code, ok.err).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({ valid: true, networkId: 'bfl-op' });
    expect((await cli(['chain', 'show', '--datadir', m.datadir])).out).toMatch(/network bfl-op/);
  });
});
