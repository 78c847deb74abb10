/**
 * The embedded MNIST's split, cached in the user's cache directory (src/learn/data.ts): the same
 * bits as the parser's, read back (the test half alone for a miner), and a damaged, short or
 * unwritable cache never changes what is loaded. Each case loads data.ts afresh (its
 * per-process memo reset) with XDG_CACHE_HOME in a temporary directory.
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, readdirSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { tmpDir } from '../helpers/tmp.ts';

type DataModule = typeof import('../../src/learn/data.ts');
const fresh = async (): Promise<DataModule> => {
  vi.resetModules();
  return import('../../src/learn/data.ts');
};
const bits = (a: Float32Array | Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

let saved: NodeJS.ProcessEnv;
let cacheDir: string;
beforeEach(async () => {
  saved = { ...process.env };
  process.env.XDG_CACHE_HOME = await tmpDir('bfl-cache-');
  delete process.env.BFL_DATA_CACHE;
  cacheDir = join(process.env.XDG_CACHE_HOME, 'bfl-node', 'data');
});
afterEach(() => {
  process.env = saved;
});

const cacheFiles = () => readdirSync(cacheDir).filter((f) => f.endsWith('.bin'));

// The format as data.ts writes it: magic (16 bytes), per half (train, test) its sample count
// (uint32 LE) and the SHA-256 of its labels then pixels; then each half's labels and pixels.
const HEADER = 16 + 2 * 36;
const testHalf = (file: Buffer) => {
  const nTrain = file.readUInt32LE(16);
  const nTest = file.readUInt32LE(52);
  const y = HEADER + nTrain * 3137;
  return { y, x: y + nTest, n: nTest, hashAt: 56 };
};

it('the cache gives the parser\'s bits; read back, it serves the whole split and the test half alone', async () => {
  process.env.BFL_DATA_CACHE = '0';
  const parsed = (await fresh()).loadEmbeddedMnist();
  expect(() => readdirSync(cacheDir)).toThrow(); // off: nothing written
  delete process.env.BFL_DATA_CACHE;
  const first = (await fresh()).loadEmbeddedMnist(); // parses and writes the cache
  expect(cacheFiles()).toHaveLength(1);
  const file = join(cacheDir, cacheFiles()[0]);
  for (const half of ['train', 'test'] as const) {
    expect(bits(first[half].x).equals(bits(parsed[half].x)), half).toBe(true);
    expect(bits(first[half].y).equals(bits(parsed[half].y)), half).toBe(true);
  }
  // plant a valid cache whose first test pixel differs: what is loaded now comes from the file
  const raw = readFileSync(file);
  const t = testHalf(raw);
  expect(raw.readFloatLE(t.x)).toBe(parsed.test.x[0]);
  raw.writeFloatLE(0.5, t.x);
  createHash('sha256').update(raw.subarray(t.y, t.y + t.n)).update(raw.subarray(t.x)).digest().copy(raw, t.hashAt);
  writeFileSync(file, raw);
  const twoDaysAgo = Date.now() / 1000 - 2 * 86_400;
  utimesSync(file, twoDaysAgo, twoDaysAgo);
  // in a directory others may write, a cache is neither read nor written
  chmodSync(cacheDir, 0o777);
  expect((await fresh()).loadTestSet('mnist').x[0]).toBe(parsed.test.x[0]);
  expect(readFileSync(file).equals(raw)).toBe(true);
  chmodSync(cacheDir, 0o700);
  const m = await fresh();
  const test = m.loadTestSet('mnist');
  expect(test.x[0]).toBe(0.5);
  expect(statSync(file).mtimeMs / 1000).toBeGreaterThan(twoDaysAgo + 86_400); // a read marks it used (pruning keeps the newest)
  expect(bits(test.y).equals(bits(parsed.test.y))).toBe(true);
  expect(bits(test.x.subarray(1)).equals(bits(parsed.test.x.subarray(1)))).toBe(true);
  const whole = (await fresh()).loadEmbeddedMnist();
  expect(whole.test.x[0]).toBe(0.5);
  expect(bits(whole.train.x).equals(bits(parsed.train.x))).toBe(true);
  expect(whole.test.image).toEqual({ height: 28, width: 28 });
}, 60_000);

it('a damaged or short cache is parsed again and replaced; one that cannot be written is no error', async () => {
  process.env.BFL_DATA_CACHE = '0';
  const parsed = (await fresh()).loadEmbeddedMnist();
  delete process.env.BFL_DATA_CACHE;
  (await fresh()).loadEmbeddedMnist();
  const file = join(cacheDir, cacheFiles()[0]);
  const good = readFileSync(file);
  // one flipped bit in the test half's pixels: its SHA-256 no longer matches
  const damaged = Buffer.from(good);
  damaged[testHalf(good).x + 5] ^= 0x10;
  writeFileSync(file, damaged);
  expect(bits((await fresh()).loadTestSet('mnist').x).equals(bits(parsed.test.x))).toBe(true);
  expect(readFileSync(file).equals(good)).toBe(true);
  // cut short
  truncateSync(file, good.length >> 1);
  expect(bits((await fresh()).loadEmbeddedMnist().train.x).equals(bits(parsed.train.x))).toBe(true);
  expect(readFileSync(file).equals(good)).toBe(true);
  // the cache directory is a file: loading works, nothing thrown
  const blocked = await tmpDir('bfl-cache-');
  writeFileSync(join(blocked, 'bfl-node'), 'not a directory');
  process.env.XDG_CACHE_HOME = blocked;
  expect(bits((await fresh()).loadTestSet('mnist').x).equals(bits(parsed.test.x))).toBe(true);
}, 60_000);

it('writing a cache keeps the newest few of the directory\'s split caches and nothing else is touched', async () => {
  mkdirSync(cacheDir, { recursive: true });
  const now = Date.now() / 1000;
  const old = Array.from({ length: 5 }, (_, i) => `mnist-${String(i).repeat(32)}.bin`);
  old.forEach((f, i) => {
    writeFileSync(join(cacheDir, f), 'an older install');
    utimesSync(join(cacheDir, f), now - 86_400 * (i + 1), now - 86_400 * (i + 1)); // i + 1 days old
  });
  writeFileSync(join(cacheDir, 'notes.txt'), 'not a cache');
  // a writer killed mid-write two hours ago left its temporary file; one writing now has its own
  const stale = `${old[0]}.4242.0.0a0b0c0d0e0f.tmp`;
  const busy = `${old[1]}.4343.0.0a0b0c0d0e0f.tmp`;
  writeFileSync(join(cacheDir, stale), 'half');
  utimesSync(join(cacheDir, stale), now - 7200, now - 7200);
  writeFileSync(join(cacheDir, busy), 'half');
  (await fresh()).loadTestSet('mnist'); // parses and writes its own cache
  const left = readdirSync(cacheDir).sort();
  expect(left).toContain('notes.txt');
  expect(left).toContain(busy);
  expect(left).not.toContain(stale);
  const caches = left.filter((f) => f.endsWith('.bin'));
  expect(caches).toHaveLength(4);
  expect(caches.filter((f) => !old.includes(f))).toHaveLength(1); // the new one
  expect(caches.filter((f) => old.includes(f)).sort()).toEqual(old.slice(0, 3).sort()); // the 3 newest of the older ones
}, 60_000);
