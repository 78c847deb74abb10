#!/usr/bin/env node
// Entry point. The sources are TypeScript run directly by Node's type stripping (Node >= 22.18,
// we require 24 for libp2p 3 and OpenSSL 3.5's native ML-DSA). `npm ci` installs Node 24 into
// node_modules/.bin, which npm scripts and npx put first on PATH.
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(
    `bfl-node needs Node.js 24 or later (this is ${process.version}).\n` +
      `Run it through npm so the project's Node is used: npx bfl-node ... or npm run bfl-node -- ...\n`,
  );
  process.exit(3);
}
// Node's compile cache: the V8 code of every module (TypeScript already stripped), keyed by the
// source's hash, so a warm miner starts in 2.5-3.9 s instead of 3.6-5.6 s, and a testnet's 8
// nodes are up in 14-15 s instead of 22 on 2 cores (docs/decisions.md). In the user's own cache directory
// ($XDG_CACHE_HOME or ~/.cache, then bfl-node/compile-cache/<this checkout>, the caches of
// checkouts that are gone removed: src/util/cache-dir.ts), not Node's default under the shared
// temp directory: whoever writes the cache chooses the code that runs. Set in the environment so
// that the re-executed process below, its worker threads and the nodes a testnet starts use it
// from their first module on. NODE_COMPILE_CACHE chooses another directory,
// NODE_DISABLE_COMPILE_CACHE=1 turns it off; without either directory there is none.
if (process.env.NODE_COMPILE_CACHE === undefined && process.env.NODE_DISABLE_COMPILE_CACHE === undefined) {
  const compileCache = (await import('../src/util/cache-dir.ts')).compileCacheDir(fileURLToPath(new URL('..', import.meta.url)));
  if (compileCache) process.env.NODE_COMPILE_CACHE = compileCache;
}
if (process.env.NODE_COMPILE_CACHE !== undefined) (await import('node:module')).enableCompileCache?.(); // this process, if not re-executed below
// ONNX Runtime's telemetry off for the whole process, worker threads included (their process.env
// is a copy that the native library does not read): src/learn/ort.ts says why.
process.env.ORT_DISABLE_TELEMETRY ??= '1';
// Settings that only take effect when a process starts (V8's thread pool on 2 cores, its young
// generation, glibc's mmap threshold: src/node/memory-settings.ts): Node is re-executed in place
// (same pid, signals and exit code) with those the operator has not set. Not when a parent
// talks to us over IPC: the channel's descriptor closes on exec, so such a parent (bfl-node
// testnet, the e2e cluster) passes them itself. Nor for a short command (help, the version, a
// status query, a config check, a key or a network config written; its word first): the settings
// are for the processes that run long, and a second start of Node would double such a command's time.
const args = process.argv.slice(2);
const short = ['status', 'config', 'keygen', 'init'].includes(args[0]) || args.some((a) => ['--help', '-h', '--version', '-V'].includes(a));
const { launchSettings } = await import('../src/node/memory-settings.ts');
const launch = launchSettings(process.execArgv, process.env, availableParallelism());
if (!short && (launch.args.length > 0 || Object.keys(launch.env).length > 0) && process.env.NODE_CHANNEL_FD === undefined && typeof process.execve === 'function') {
  try {
    process.execve(process.execPath, [process.execPath, ...launch.args, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { ...process.env, ...launch.env });
  } catch {
    // not replaced (a platform without execve): run with Node's defaults
  }
}
const { main } = await import('../src/cli/main.ts');
const code = await main(process.argv.slice(2));
process.exitCode = code;
// a node that has stopped exits now, not when a library's last timer fires (src/cli/daemon/index.ts)
if ((await import('../src/cli/daemon/index.ts')).nodeStopped()) process.exit(code);
