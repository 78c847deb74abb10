/** A split client whose data set's images are not square refuses to start when its network
 * augments (learning.split.augment), even where the count of values is a square: 16 × 36 or,
 * here, 1 × 4 pass the config's check on learning.layers[0] and would be distorted as 2 × 2. */
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { freePort } from '../../src/node/testnet.ts';
import { writeIdxImages } from '../helpers/idx.ts';
import { tmpDir } from '../helpers/tmp.ts';

const BIN = new URL('../../bin/bfl-node.js', import.meta.url).pathname;
/** bfl-node with `args`; SIGINT after `stopAfterMs` (a node that started runs until stopped). */
const run = (args: string[], stopAfterMs = 120_000) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: stopAfterMs, killSignal: 'SIGINT', env: { ...process.env, BFL_LOG_LEVEL: 'info' } });
/** bfl-node with `args`, stopped with SIGINT as soon as its output matches `until` (or after
 * `stopAfterMs`): its exit code and output. */
const runUntil = (args: string[], until: RegExp, stopAfterMs: number) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, BFL_LOG_LEVEL: 'info' } });
    const out = { stdout: '', stderr: '' };
    let signalled = false; // once: a second SIGINT is the operator's "exit now" (130)
    const stop = () => {
      if (!signalled) child.kill('SIGINT');
      signalled = true;
    };
    const timer = setTimeout(stop, stopAfterMs);
    const seen = (k: 'stdout' | 'stderr') => (b: Buffer) => {
      out[k] += b.toString();
      if (until.test(out.stdout + out.stderr)) stop();
    };
    child.stdout.on('data', seen('stdout'));
    child.stderr.on('data', seen('stderr'));
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, ...out });
    });
  });

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
  const start = async (augment: string) => {
    config.learning = { ...config.learning, dataset: `idx:${data}`, layers: [4, 8, 10], mode: 'split', split: { ...config.learning.split, augment } };
    await writeFile(configFile, JSON.stringify(config));
    // a client that started runs until stopped: SIGINT once it says so (30 s at most)
    return runUntil(['--role', 'client', '--config', configFile, '--identity', join(dir, 'keys', 'client-1.json'), '--datadir', join(dir, `data-${augment}`)], /"msg":"node started"/, 30_000);
  };
  const r = await start('shift:1');
  expect(r.status, r.stderr).toBe(1);
  expect(r.stderr.trim()).toMatch(/^error: learning\.split\.augment: "shift:1" needs square images, but idx:.*'s samples are 1×4 images: set it to "none" \(BAD_CONFIG\)$/);
  // the same network with augment "none": the client starts (stopped here with SIGINT)
  const ok = await start('none');
  expect(ok.stderr + ok.stdout).not.toMatch(/needs square images/);
  expect(ok.stderr, ok.stderr).toMatch(/"msg":"node started"/);
  expect(ok.status).toBe(0); // stopped by the signal, cleanly
});
