/** A split client whose data set's images are not square refuses to start when its network
 * augments (learning.split.augment), even where the count of values is a square: 16 × 36 or,
 * here, 1 × 4 pass the config's check on learning.layers[0] and would be distorted as 2 × 2. */
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { freePort } from '../../src/node/testnet.ts';
import { writeIdxImages } from '../helpers/idx.ts';
import { tmpDir } from '../helpers/tmp.ts';

const BIN = new URL('../../bin/bfl-node.js', import.meta.url).pathname;
/** bfl-node with `args`; SIGINT after `stopAfterMs` (a node that started runs until stopped). */
const run = (args: string[], stopAfterMs = 120_000) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: stopAfterMs, killSignal: 'SIGINT', env: { ...process.env, BFL_LOG_LEVEL: 'info' } });

it('a split client on 1 × 4 images refuses to start while the network augments, saying what to set; with augment "none" the check passes', { timeout: 120_000 }, async () => {
  const dir = await tmpDir('bfl-split-augment-');
  const data = join(dir, 'idx');
  await mkdir(data);
  await writeIdxImages(data, { height: 1, width: 4, train: 200, test: 20 });
  // ports free on loopback (a client listens on base + 1 and base + 1001)
  const base = (await freePort({ from: 20_000, to: 28_000 })) - 1;
  const init = run(['init', '--dir', dir, '--miners', '1', '--clients', '1', '--base-port', String(base), '--json']);
  expect(init.status, init.stderr).toBe(0);
  const configFile = join(dir, 'network.json');
  const config = JSON.parse(await readFile(configFile, 'utf8'));
  const start = async (augment: string, stopAfterMs?: number) => {
    config.learning = { ...config.learning, dataset: `idx:${data}`, layers: [4, 8, 10], mode: 'split', split: { ...config.learning.split, augment } };
    await writeFile(configFile, JSON.stringify(config));
    return run(['--role', 'client', '--config', configFile, '--identity', join(dir, 'keys', 'client-1.json'), '--datadir', join(dir, `data-${augment}`)], stopAfterMs);
  };
  const r = await start('shift:1', 30_000);
  expect(r.status, r.stderr).toBe(1);
  expect(r.stderr.trim()).toMatch(/^error: learning\.split\.augment: "shift:1" needs square images, but idx:.*'s samples are 1×4 images: set it to "none" \(BAD_CONFIG\)$/);
  // the same network with augment "none": the client starts (stopped here with SIGINT)
  const ok = await start('none', 15_000);
  expect(ok.stderr + ok.stdout).not.toMatch(/needs square images/);
  expect(ok.stderr, ok.stderr).toMatch(/"msg":"node started"/);
  expect(ok.status).toBe(0); // stopped by the signal, cleanly
});
