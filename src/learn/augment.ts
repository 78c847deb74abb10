/**
 * Data augmentation of a client's training images (issue 19, the 2-point target's fifth look):
 * every time a sample enters a minibatch it is moved by a random whole-pixel translation of at
 * most `shift` pixels in x and y (and, if `rotate` > 0, turned by a random angle of at most
 * `rotate` degrees about the image centre, bilinear), the standard remedy for a model that
 * overfits a few hundred digits (Simard, Steinkraus & Platt 2003, "Best practices for CNNs
 * applied to visual document analysis": distortions of the training set; LeCun et al. 1998's
 * MNIST tables use shifted copies too). Labels are unchanged. Pixels moved in from outside the
 * image are 0 (MNIST's background).
 *
 * Hand-written, not a library: the npm image libraries work on 8-bit RGBA canvases (they would
 * quantise our float pixels, as for SSIM in the inversion check), and a translation is a copy.
 * Draws are keyed by (seed, client, round, position in the round), not by a running stream, so
 * every run of an experiment (split, FedAvg, centralized) sees the very same augmented images
 * whatever order it visits them in.
 */
import { BflError, ErrorCode } from '../core/errors.ts';
import { Rng } from '../core/random.ts';
import type { Dataset, ImageShape } from './data.ts';

export interface AugmentSpec {
  /** Largest translation in pixels, along x and along y (each uniform in −shift..shift). */
  shift: number;
  /** Largest rotation in degrees (uniform in ±rotate); 0: none. */
  rotate: number;
}

export const NO_AUGMENT: AugmentSpec = { shift: 0, rotate: 0 };

export const augments = (a: AugmentSpec): boolean => a.shift > 0 || a.rotate > 0;

/** "none", "shift:K", "rotate:D" or "shift:K,rotate:D" (K whole pixels 0-10, D degrees 0-45). */
export function parseAugment(s: string): AugmentSpec {
  const out: AugmentSpec = { ...NO_AUGMENT };
  if (s === 'none' || s === '') return out;
  const bad = () => new BflError(ErrorCode.BAD_CONFIG, `augment "${s}": use none, shift:K (whole pixels, 0-10), rotate:D (degrees, 0-45) or shift:K,rotate:D`);
  for (const part of s.split(',')) {
    const m = /^(shift|rotate):(\d+(?:\.\d+)?)$/.exec(part.trim());
    if (!m) throw bad();
    const v = Number(m[2]);
    if (m[1] === 'shift') {
      if (!Number.isInteger(v) || v > 10) throw bad();
      out.shift = v;
    } else {
      if (v > 45) throw bad();
      out.rotate = v;
    }
  }
  return out;
}

/** parseAugment's spec, or null where it refuses `s`. */
export function augmentOrNull(s: string): AugmentSpec | null {
  try {
    return parseAugment(s);
  } catch (e) {
    if (e instanceof BflError) return null;
    throw e;
  }
}

/** The spec as parseAugment reads it: "none", "shift:K", "rotate:D" or "shift:K,rotate:D". */
export function formatAugment(a: AugmentSpec): string {
  const parts = [...(a.shift > 0 ? [`shift:${a.shift}`] : []), ...(a.rotate > 0 ? [`rotate:${a.rotate}`] : [])];
  return parts.length ? parts.join(',') : 'none';
}

/** `src` (side × side, row-major) translated by (dx, dy) whole pixels into `out`: out(x, y) = src(x − dx, y − dy), 0 outside. */
export function translate(src: Float32Array, side: number, dx: number, dy: number, out: Float32Array): void {
  out.fill(0, 0, side * side);
  const x0 = Math.max(0, dx);
  const x1 = Math.min(side, side + dx);
  if (x1 <= x0) return;
  for (let y = Math.max(0, dy); y < Math.min(side, side + dy); y++) {
    const from = (y - dy) * side + (x0 - dx);
    out.set(src.subarray(from, from + (x1 - x0)), y * side + x0);
  }
}

/** `src` turned by `angle` radians about the centre, then translated by (dx, dy); bilinear, 0 outside. */
export function rotateTranslate(src: Float32Array, side: number, angle: number, dx: number, dy: number, out: Float32Array): void {
  const c = (side - 1) / 2;
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const at = (x: number, y: number) => (x >= 0 && x < side && y >= 0 && y < side ? src[y * side + x] : 0);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      // the inverse map: where the output pixel comes from in the source
      const u = x - dx - c;
      const v = y - dy - c;
      const sx = cos * u + sin * v + c;
      const sy = -sin * u + cos * v + c;
      const fx = Math.floor(sx);
      const fy = Math.floor(sy);
      const ax = sx - fx;
      const ay = sy - fy;
      out[y * side + x] = (1 - ay) * ((1 - ax) * at(fx, fy) + ax * at(fx + 1, fy)) + ay * ((1 - ax) * at(fx, fy + 1) + ax * at(fx + 1, fy + 1));
    }
  }
}

/** A 32-bit key of several integers (splitmix32 steps): the seed of one sample's draw. */
export function drawKey(...parts: number[]): number {
  let h = 0x2545f491;
  for (const p of parts) {
    h = (h + Math.imul((p >>> 0) ^ 0x9e3779b9, 0x85ebca6b)) | 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** One sample's transform: a translation of whole pixels and an angle in radians. */
export interface Draw {
  dx: number;
  dy: number;
  angle: number;
}

/** The transform of the sample keyed by `key` (drawKey of seed, client, round, position). */
export function drawOf(spec: AugmentSpec, key: number): Draw {
  const rng = new Rng(key);
  const dx = rng.int(2 * spec.shift + 1) - spec.shift;
  const dy = rng.int(2 * spec.shift + 1) - spec.shift;
  const angle = spec.rotate > 0 ? ((2 * rng.float() - 1) * spec.rotate * Math.PI) / 180 : 0;
  return { dx, dy, angle };
}

/**
 * The image `src` (one row of side² pixels) under draw `d`, into `out`. A pure translation is an
 * exact copy of pixels (no interpolation).
 */
export function augmentImage(src: Float32Array, side: number, d: Draw, out: Float32Array): void {
  if (d.angle === 0) translate(src, side, d.dx, d.dy, out);
  else rotateTranslate(src, side, d.angle, d.dx, d.dy, out);
}

/** Are samples of `dim` values square images (what augmentation needs)? */
export const isSquare = (dim: number): boolean => Math.round(Math.sqrt(dim)) ** 2 === dim;

/** Are a data set's samples square images? Its image shape decides where it has one (16 × 36
 * has as many values as 24 × 24); else the count of values. */
export const isSquareImage = (d: Pick<Dataset, 'dim' | 'image'>): boolean => (d.image ? d.image.height === d.image.width : isSquare(d.dim));

/** What a data set's samples are, for an error that refuses augmenting them. */
export const samplesAre = (d: Pick<Dataset, 'dim' | 'image'>): string => (d.image ? `are ${d.image.height}×${d.image.width} images` : `have ${d.dim} values`);

/** Side of a square image of `dim` pixels (of that shape, where the data set gives one);
 * BAD_CONFIG for a data set whose rows are not square images. */
export function imageSide(dim: number, image?: ImageShape): number {
  if (!isSquareImage({ dim, image })) throw new BflError(ErrorCode.BAD_CONFIG, `augmentation needs square images, but samples ${samplesAre({ dim, image })}: augment none`);
  return Math.round(Math.sqrt(dim));
}
