import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ChainStore } from '../../src/chain/store.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { makeNetwork, mineBlock, nextAggregation, signedRecord } from '../helpers/network.ts';
import { tmpDir } from '../helpers/tmp.ts';

const BIN = new URL('../../bin/bfl-node.js', import.meta.url).pathname;
/** The checkout, as the launcher names it (with its trailing slash). */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('bfl-node CLI', () => {
  it('--help works on every command; no command is a usage error', () => {
    for (const args of [['--help'], ['keygen', '--help'], ['chain', '--help'], ['chain', 'verify', '--help'], ['chain', 'show', '--help'], ['bench', 'pow', '--help'], ['bench', 'signatures', '--help']]) {
      const r = run(...args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.out).toMatch(/Usage: bfl-node/);
    }
    expect(run().code).toBe(2);
  });

  it("keeps Node's compile cache in the user's cache directory, not the shared temp directory; none with NODE_DISABLE_COMPILE_CACHE=1", async () => {
    const entries = (dir: string) => (existsSync(dir) ? readdirSync(dir, { recursive: true }).length : 0);
    for (const disable of [false, true]) {
      const cache = await tmpDir('bfl-ncc-');
      const tmp = await tmpDir('bfl-ncc-tmp-');
      const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: cache, TMPDIR: tmp };
      delete env.NODE_COMPILE_CACHE;
      delete env.NODE_DISABLE_COMPILE_CACHE;
      if (disable) env.NODE_DISABLE_COMPILE_CACHE = '1';
      const r = spawnSync(process.execPath, [BIN, '--help'], { env, encoding: 'utf8', timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(entries(join(tmp, 'node-compile-cache'))).toBe(0); // never Node's default place
      const base = join(cache, 'bfl-node', 'compile-cache');
      if (disable) {
        expect(entries(base)).toBe(0);
        continue;
      }
      // one directory for this checkout, which names it
      const dir = join(base, createHash('sha256').update(ROOT).digest('hex').slice(0, 16));
      expect(readdirSync(base)).toEqual([dir.slice(base.length + 1)]);
      expect(readFileSync(join(dir, 'root'), 'utf8')).toBe(ROOT);
      const afterHelp = entries(dir);
      expect(afterHelp).toBeGreaterThan(10); // the CLI's modules
      // a command the launcher re-executes writes there too (its chain modules)
      const chain = spawnSync(process.execPath, [BIN, 'chain', 'show', '--datadir', join(tmp, 'none')], { env, encoding: 'utf8', timeout: 120_000 });
      expect(chain.status, chain.stderr).toBe(1);
      expect(readdirSync(base)).toEqual([dir.slice(base.length + 1)]);
      expect(entries(dir)).toBeGreaterThan(afterHelp);
    }
  });

  it('bad flags exit 2 with a clear message', () => {
    const unknown = run('chain', 'show', '--datadir', '/tmp/x', '--frobnicate');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/unknown option '--frobnicate'/);
    const role = run('keygen', '--out', '/tmp/x.json', '--role', 'king');
    expect(role.code).toBe(2);
    expect(role.err).toMatch(/--role.*miner, client/s);
    const count = run('chain', 'show', '--datadir', '/tmp/x', '--count', '-3');
    expect(count.code).toBe(2);
    expect(count.err).toMatch(/--count must be an integer/);
  });

  it('keygen writes a 0600 key file and refuses to overwrite it (exit 1) unless --force', async () => {
    const dir = await tmpDir('bfl-cli-');
    const file = join(dir, 'edge-7.json');
    const r = run('keygen', '--out', file, '--role', 'miner', '--json');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.out);
    expect(summary).toMatchObject({ id: 'edge-7', role: 'miner', algorithm: 'ML-DSA-44' });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8')).publicKey).toBe(summary.publicKey);
    const again = run('keygen', '--out', file);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already exists.*--force/);
    expect(run('keygen', '--out', file, '--force', '--id', 'phone-1').code).toBe(0);
    expect(JSON.parse(await readFile(file, 'utf8')).id).toBe('phone-1');
  });

  it('chain verify and chain show on a stored chain; verify exits 1 on damage', async () => {
    const datadir = join(await tmpDir('bfl-cli-'), 'chain');
    const net = makeNetwork({ phi: 2, now: Date.now() - 100_000 });
    const store = await ChainStore.open({ datadir, params: net.params, signatures: new InThreadVerifier() });
    for (let i = 0; i < 3; i++) {
      const p = store.tip;
      const r = [signedRecord(net, net.clients[i], net.miners[0].id, p.modelHash)];
      await store.addBlock(mineBlock(net, p, net.miners[0], { records: r, aggregation: nextAggregation(net, p, r), timestamp: Date.now() - 50_000 + i }));
    }
    await store.close();

    const v = run('chain', 'verify', '--datadir', datadir, '--json');
    expect(v.code).toBe(0);
    expect(JSON.parse(v.out)).toMatchObject({ valid: true, height: 3, blocks: 4, records: 3, aggregations: 2, networkId: 'test-net' });

    const s = run('chain', 'show', '--datadir', datadir, '--json', '--count', '2');
    expect(s.code).toBe(0);
    const shown = JSON.parse(s.out);
    expect(shown.head).toMatchObject({ height: 3, rounds: 2, pending: 1 });
    expect(shown.blocks.map((b: { height: number }) => b.height)).toEqual([3, 2]);
    expect(run('chain', 'show', '--datadir', datadir).out).toMatch(/height 3/);

    const { Level } = await import('level');
    const db = new Level<string, string>(datadir);
    await db.put('tip', 'ff'.repeat(32));
    await db.close();
    const bad = run('chain', 'verify', '--datadir', datadir, '--json');
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.out)).toMatchObject({ valid: false, error: { code: 'STORE_CORRUPT' } });
    const human = run('chain', 'verify', '--datadir', datadir);
    expect(human.code).toBe(1);
    expect(human.out).toMatch(/INVALID/);
  });

  it('init --json writes a config and key files and prints {config, nodes}', async () => {
    const dir = await tmpDir('bfl-init-');
    const r = run('init', '--dir', dir, '--miners', '2', '--clients', '3', '--json');
    expect(r.code, r.err).toBe(0);
    const out = JSON.parse(r.out);
    expect(out.config).toBe(join(dir, 'network.json'));
    expect(out.nodes.map((n: { id: string; role: string }) => `${n.id}/${n.role}`)).toEqual(['miner-1/miner', 'miner-2/miner', 'client-1/client', 'client-2/client', 'client-3/client']);
    for (const n of out.nodes) {
      expect(Object.keys(n).sort()).toEqual(['api', 'datadir', 'id', 'identity', 'role']);
      expect(n.api).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await stat(n.identity)).mode & 0o777).toBe(0o600);
    }
    expect(JSON.parse(await readFile(out.config, 'utf8')).members).toHaveLength(5);
    // refuses to overwrite keys, unless --if-absent makes it a no-op
    expect(run('init', '--dir', dir).code).toBe(1);
    expect(run('init', '--dir', dir, '--if-absent').code).toBe(0);
  });

  it('chain verify on a directory with no chain exits 1 and says why', async () => {
    const r = run('chain', 'verify', '--datadir', await tmpDir('bfl-none-'), '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out).error.message).toMatch(/holds no chain/);
  });

  it('bench aggregate --json reports the kernel, the reference and bit identity', () => {
    const r = run('bench', 'aggregate', '--json', '--clients', '9', '--dim', '3000', '--runs', '1');
    expect(r.code).toBe(0);
    const a = JSON.parse(r.out);
    for (const k of ['ms', 'pairwiseMs', 'msReference', 'pairwiseReferenceMs', 'pairwiseWasmOneThreadMs']) expect(a[k], k).toBeGreaterThan(0);
    expect(a.kernel).toMatch(/^wasm-simd/);
    expect(a.bitIdentical).toBe(true);
  });

  it('bench ingest --json: a miner takes the flood in, beside the raw stream', () => {
    const r = run('bench', 'ingest', '--json', '--clients', '1', '--seconds', '1');
    expect(r.code).toBe(0);
    const a = JSON.parse(r.out);
    for (const k of ['accepted', 'acceptedPerSecond', 'mbPerSecond', 'p50Ms', 'p99Ms', 'rawStreamMbPerSecond', 'ratioToRawStream', 'mainThreadCpuMsPerUpdate', 'rawThreadCpuMsPerUpdate', 'cpuRatioToRawStream', 'clientThreadCpuMsPerUpdate', 'processCpuMsPerUpdate', 'rawProcessCpuMsPerUpdate', 'processCpuRatioToRawStream', 'prepared']) expect(a[k], k).toBeGreaterThan(0);
    expect(a.errors).toEqual({});
    expect(a.updateBytes).toBe(159_010 * 4);
    expect(a.upload).toBe('stream');
    expect(a.prepare).toBe('before');
    expect(a.rawStreamRuns).toHaveLength(2);
    expect(a.accepted).toBeLessThanOrEqual(a.prepared);
    if (process.platform === 'linux') {
      // per thread from /proc: the miner's event loop and the verifier's worker did the intake's work
      for (const t of ['main', 'verifier']) expect(a.threadsCpuMsPerUpdate[t].user + a.threadsCpuMsPerUpdate[t].system, t).toBeGreaterThan(0);
      expect(a.rawThreadsCpuMsPerUpdate.main.user + a.rawThreadsCpuMsPerUpdate.main.system).toBeGreaterThan(0);
    }
    const badPrepare = run('bench', 'ingest', '--prepare', 'never');
    expect(badPrepare.code).not.toBe(0);
    expect(badPrepare.err.trim()).toMatch(/^error: option '--prepare <when>' argument 'never' is invalid\. Allowed choices are before, live\.$/);
    const bad = run('bench', 'ingest', '--upload', 'udp');
    expect(bad.code).not.toBe(0);
    expect(bad.err.trim()).toMatch(/^error: option '--upload <mode>' argument 'udp' is invalid\. Allowed choices are stream, request\.$/);
  });

  it('bench pow --json and bench signatures --json print the documented fields', () => {
    const pow = run('bench', 'pow', '--json', '--seconds', '0.3', '--workers', '1');
    expect(pow.code).toBe(0);
    const p = JSON.parse(pow.out);
    for (const k of ['hashesPerSecondOneCore', 'hashesPerSecondOneCoreJs', 'hashesPerSecondAllWorkers', 'workers', 'nativeHashesPerSecondOneCore', 'ratioOneCoreToNative']) expect(p[k], k).toBeGreaterThan(0);
    expect(p.workers).toBe(1);
    expect(p.engine).toBe('wasm');
    expect(p.workerScaling.map((w: { workers: number }) => w.workers)).toEqual([1]);
    const sig = run('bench', 'signatures', '--json', '--runs', '3', '--filter', '^(ML-DSA-44|Ed25519) ');
    expect(sig.code).toBe(0);
    const rows = JSON.parse(sig.out);
    expect(rows.map((r: { scheme: string; implementation: string }) => `${r.scheme}/${r.implementation}`)).toEqual(['ML-DSA-44/native', 'ML-DSA-44/noble', 'Ed25519/native']);
    for (const r of rows) for (const k of ['keygenMs', 'signMs', 'verifyMs', 'publicKeyBytes', 'signatureBytes']) expect(r[k], `${r.scheme} ${k}`).toBeGreaterThan(0);
    expect(rows[0]).toMatchObject({ publicKeyBytes: 1312, signatureBytes: 2420 });
  });
});
