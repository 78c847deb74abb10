/**
 * Byte helpers and the canonical binary codec. Big-endian integers, length-prefixed variable
 * fields; the Reader checks every length against what is left before it reads (untrusted input
 * is decoded here, so a truncated or padded message is a MALFORMED error, never a crash).
 */
import { BflError, ErrorCode } from './errors.ts';

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function fromHex(s: string, expectedBytes?: number): Uint8Array {
  if (typeof s !== 'string' || s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) {
    throw new BflError(ErrorCode.MALFORMED, `expected a hex string, got ${describe(s)}`);
  }
  if (expectedBytes !== undefined && s.length !== expectedBytes * 2) {
    throw new BflError(ErrorCode.MALFORMED, `expected ${expectedBytes} bytes of hex, got ${s.length / 2}`);
  }
  return new Uint8Array(Buffer.from(s, 'hex'));
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** Check untrusted bytes (noble's `abytes` in spirit). */
export function abytes(value: unknown, name: string, length?: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new BflError(ErrorCode.MALFORMED, `${name}: expected bytes, got ${describe(value)}`);
  if (length !== undefined && value.length !== length) {
    throw new BflError(ErrorCode.MALFORMED, `${name}: expected ${length} bytes, got ${value.length}`);
  }
  return value;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (typeof v === 'string') return `a string of length ${v.length}`;
  return typeof v;
}

/** Identifiers of clients and miners: short, printable, and at most 24 bytes so that a block
 * header's nonce always falls into the last SHA-256 block (see core/pow.ts: midstate). */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,23}$/;

export function assertId(id: unknown, what = 'id'): string {
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
    throw new BflError(ErrorCode.MALFORMED, `${what} must match ${ID_PATTERN} (1-24 chars of A-Z a-z 0-9 . _ -), got ${JSON.stringify(id)}`);
  }
  return id;
}

const MAX_U64 = (1n << 64n) - 1n;

export class Writer {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`u8 out of range: ${v}`);
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  u16(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`u16 out of range: ${v}`);
    this.ensure(2);
    this.view.setUint16(this.pos, v);
    this.pos += 2;
    return this;
  }

  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`u32 out of range: ${v}`);
    this.ensure(4);
    this.view.setUint32(this.pos, v);
    this.pos += 4;
    return this;
  }

  u64(v: bigint | number): this {
    const b = typeof v === 'bigint' ? v : BigInt(v);
    if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new RangeError(`u64 from unsafe number: ${v}`);
    if (b < 0n || b > MAX_U64) throw new RangeError(`u64 out of range: ${b}`);
    this.ensure(8);
    this.view.setBigUint64(this.pos, b);
    this.pos += 8;
    return this;
  }

  f64(v: number): this {
    this.ensure(8);
    this.view.setFloat64(this.pos, v);
    this.pos += 8;
    return this;
  }

  /** Fixed-length bytes (the length is implied by the schema). */
  fixed(b: Uint8Array, length: number): this {
    if (b.length !== length) throw new RangeError(`expected ${length} bytes, got ${b.length}`);
    this.ensure(length);
    this.buf.set(b, this.pos);
    this.pos += length;
    return this;
  }

  /** u32 length prefix + bytes. */
  bytes(b: Uint8Array): this {
    this.u32(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** u8 length prefix + UTF-8 (identifiers and short labels only). */
  str(s: string): this {
    const b = utf8(s);
    if (b.length > 255) throw new RangeError(`string too long for u8 prefix: ${b.length}`);
    this.u8(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

export class Reader {
  private readonly buf: Uint8Array;
  private readonly view: DataView;
  private pos = 0;
  private readonly what: string;

  constructor(buf: Uint8Array, what = 'message') {
    // A Node Buffer's slice() is a view, not a copy: read through a plain Uint8Array so that
    // fixed() and bytes() always return independent copies.
    this.buf = Buffer.isBuffer(buf) ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) : buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.what = what;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, field: string): void {
    if (n > this.remaining) {
      throw new BflError(ErrorCode.MALFORMED, `${this.what}: truncated at ${field} (need ${n} bytes at offset ${this.pos}, ${this.remaining} left)`);
    }
  }

  u8(field = 'u8'): number {
    this.need(1, field);
    return this.buf[this.pos++];
  }

  u16(field = 'u16'): number {
    this.need(2, field);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  u32(field = 'u32'): number {
    this.need(4, field);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  u64(field = 'u64'): bigint {
    this.need(8, field);
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return v;
  }

  /** u64 that must fit a JS number (timestamps, nonces). */
  u64n(field = 'u64'): number {
    const v = this.u64(field);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new BflError(ErrorCode.MALFORMED, `${this.what}: ${field} too large: ${v}`);
    return Number(v);
  }

  f64(field = 'f64'): number {
    this.need(8, field);
    const v = this.view.getFloat64(this.pos);
    this.pos += 8;
    return v;
  }

  fixed(length: number, field = 'bytes'): Uint8Array {
    this.need(length, field);
    const out = this.buf.slice(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  bytes(field = 'bytes', maxLength = Number.MAX_SAFE_INTEGER): Uint8Array {
    const n = this.u32(`${field} length`);
    if (n > maxLength) throw new BflError(ErrorCode.OVERSIZED, `${this.what}: ${field} is ${n} bytes, limit ${maxLength}`);
    return this.fixed(n, field);
  }

  str(field = 'string'): string {
    const n = this.u8(`${field} length`);
    this.need(n, field);
    let s: string;
    try {
      s = new TextDecoder('utf-8', { fatal: true }).decode(this.buf.subarray(this.pos, this.pos + n));
    } catch {
      throw new BflError(ErrorCode.MALFORMED, `${this.what}: ${field} is not valid UTF-8`);
    }
    this.pos += n;
    return s;
  }

  /** Canonical encodings have exactly one byte string per value: no trailing bytes. */
  end(): void {
    if (this.remaining !== 0) throw new BflError(ErrorCode.MALFORMED, `${this.what}: ${this.remaining} trailing bytes`);
  }
}
