/** The CLI side of ML-KEM keys: keygen writes one for miners, --rotate-kem adds one, and a miner
 * without a KEM key valid now refuses to start on a network that seals updates. */
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { tmpDir } from '../helpers/tmp.ts';

const BIN = new URL('../../bin/bfl-node.js', import.meta.url).pathname;

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

it('keygen writes an ML-KEM-768 key for a miner; --rotate-kem adds one; a client has none to rotate', { timeout: 120_000 }, async () => {
  const dir = await tmpDir('bfl-kem-cli-');
  const miner = join(dir, 'm.json');
  expect(run('keygen', '--out', miner, '--role', 'miner').code).toBe(0);
  expect(JSON.parse(await readFile(miner, 'utf8')).kem).toHaveLength(1);
  const r = run('keygen', '--out', miner, '--rotate-kem', '--kem-valid-days', '30', '--kem-overlap-min', '5', '--json');
  expect(r.code, r.err).toBe(0);
  const out = JSON.parse(r.out);
  const kem = JSON.parse(await readFile(miner, 'utf8')).kem;
  expect(kem).toHaveLength(2);
  expect(kem[1].publicKey).toBe(out.kemPublicKey);
  expect(out.notAfter - out.notBefore).toBe(30 * 86_400_000);
  expect(kem[0].notAfter).toBe(out.notBefore + 5 * 60_000);
  const client = join(dir, 'c.json');
  expect(run('keygen', '--out', client, '--role', 'client').code).toBe(0);
  const bad = run('keygen', '--out', client, '--rotate-kem');
  expect(bad.code).toBe(1);
  expect(bad.err).toMatch(/only miners hold ML-KEM keys/);
});

it('a miner whose key file has no ML-KEM key refuses to start on a sealing network, saying how to fix it', { timeout: 120_000 }, async () => {
  const dir = await tmpDir('bfl-kem-cli-');
  const init = run('init', '--dir', dir, '--miners', '1', '--clients', '1', '--json');
  expect(init.code, init.err).toBe(0);
  const file = join(dir, 'keys', 'miner-1.json');
  const json = JSON.parse(await readFile(file, 'utf8'));
  delete json.kem;
  await writeFile(file, JSON.stringify(json), { mode: 0o600 });
  const r = run('--role', 'miner', '--config', join(dir, 'network.json'), '--identity', file, '--datadir', join(dir, 'data'));
  expect(r.code).toBe(1);
  expect(r.err).toMatch(/no ML-KEM key valid now.*keygen --rotate-kem/);
});
