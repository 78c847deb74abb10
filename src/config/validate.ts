/**
 * Hand-rolled validation for JSON config: each check names the path of the offending field,
 * what was expected and what was found. Keys starting with "//" are comments and ignored.
 */
import { BflError, ErrorCode } from '../core/errors.ts';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export class ConfigReader {
  readonly path: string;
  private readonly value: Json | undefined;

  constructor(value: Json | undefined, path = '') {
    this.value = value;
    this.path = path;
  }

  fail(expected: string): never {
    throw new BflError(ErrorCode.BAD_CONFIG, `${this.path || '(root)'}: expected ${expected}, got ${JSON.stringify(this.value) ?? 'nothing'}`);
  }

  get present(): boolean {
    return this.value !== undefined;
  }

  /** Present and not null. */
  get given(): boolean {
    return this.value !== undefined && this.value !== null;
  }

  obj(): ConfigReader {
    if (this.value === null || typeof this.value !== 'object' || Array.isArray(this.value)) this.fail('an object');
    return this;
  }

  at(key: string): ConfigReader {
    const o = this.obj().value as Record<string, Json>;
    return new ConfigReader(Object.hasOwn(o, key) ? o[key] : undefined, this.path ? `${this.path}.${key}` : key);
  }

  /** Reject keys that are not in `known` (typos must not be silently ignored). */
  only(known: string[]): ConfigReader {
    for (const k of Object.keys(this.obj().value as object)) {
      if (!k.startsWith('//') && !known.includes(k)) {
        throw new BflError(ErrorCode.BAD_CONFIG, `${this.path ? this.path + '.' : ''}${k}: unknown setting (known: ${known.join(', ')})`);
      }
    }
    return this;
  }

  list(): ConfigReader[] {
    if (!Array.isArray(this.value)) this.fail('a list');
    return (this.value as Json[]).map((v, i) => new ConfigReader(v, `${this.path}[${i}]`));
  }

  str(opts: { pattern?: RegExp; default?: string } = {}): string {
    if (this.value === undefined && opts.default !== undefined) return opts.default;
    if (typeof this.value !== 'string' || (opts.pattern && !opts.pattern.test(this.value))) this.fail(opts.pattern ? `a string matching ${opts.pattern}` : 'a string');
    return this.value as string;
  }

  oneOf<T extends string>(choices: readonly T[], def?: T): T {
    if (this.value === undefined && def !== undefined) return def;
    if (!choices.includes(this.value as T)) this.fail(`one of ${choices.map((c) => JSON.stringify(c)).join(', ')}`);
    return this.value as T;
  }

  num(opts: { min?: number; max?: number; integer?: boolean; default?: number } = {}): number {
    if (this.value === undefined && opts.default !== undefined) return opts.default;
    const v = this.value;
    const { min = -Infinity, max = Infinity, integer = false } = opts;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      this.fail(`${integer ? 'an integer' : 'a number'}${min > -Infinity ? ` >= ${min}` : ''}${max < Infinity ? ` <= ${max}` : ''}`);
    }
    return v as number;
  }

  int(opts: { min?: number; max?: number; default?: number } = {}): number {
    return this.num({ ...opts, integer: true });
  }

  /** A non-negative integer that may exceed 2^53: a JSON number or a decimal string. */
  big(opts: { min?: bigint; default?: bigint } = {}): bigint {
    if (this.value === undefined && opts.default !== undefined) return opts.default;
    const v = this.value;
    let b: bigint | undefined;
    if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
    else if (typeof v === 'string' && /^\d+$/.test(v)) b = BigInt(v);
    if (b === undefined || b < (opts.min ?? 0n) || b >= 1n << 64n) this.fail(`a whole number >= ${opts.min ?? 0n} (number or decimal string)`);
    return b!;
  }

  bool(def?: boolean): boolean {
    if (this.value === undefined && def !== undefined) return def;
    if (typeof this.value !== 'boolean') this.fail('true or false');
    return this.value as boolean;
  }
}
