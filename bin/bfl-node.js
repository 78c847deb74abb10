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
// V8's background threads (concurrent marking and sweeping for every isolate of the process):
// Node starts 4 whatever the machine. On 2 cores they cost more CPU than they save (issue 12,
// `bench ingest`: 10-15 % less CPU per update with one, `bench pow` unchanged; docs/decisions.md,
// "Update ingestion", fifth pass). The pool is sized when the process starts, so Node is
// re-executed in place (same pid, signals and exit code) with the flag, unless the operator
// chose a size (NODE_OPTIONS or a node flag) or the machine has more cores.
const poolSizeSet = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) => a.startsWith('--v8-pool-size'));
if (!poolSizeSet && availableParallelism() <= 2 && typeof process.execve === 'function') {
  try {
    process.execve(process.execPath, [process.execPath, '--v8-pool-size=1', ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], process.env);
  } catch {
    // not replaced (a platform without execve): run with Node's default pool
  }
}
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
