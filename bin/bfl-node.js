#!/usr/bin/env node
// Entry point. The sources are TypeScript run directly by Node's type stripping (Node >= 22.18,
// we require 24 for libp2p 3 and OpenSSL 3.5's native ML-DSA). `npm ci` installs Node 24 into
// node_modules/.bin, which npm scripts and npx put first on PATH.
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(
    `bfl-node needs Node.js 24 or later (this is ${process.version}).\n` +
      `Run it through npm so the project's Node is used: npx bfl-node ... or npm run bfl-node -- ...\n`,
  );
  process.exit(3);
}
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
