/**
 * The miner's pool of raw updates (never on chain), on LevelDB beside the chain: the small
 * announcement of every update ever accepted (this is the replay store, keyed by
 * (client, digest): gossipsub's two-minute seen cache is not enough) and the payloads until they
 * are aggregated and buried. Metadata lives in memory; payloads are read on demand.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Level } from 'level';
import { toHex } from '../core/bytes.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import { type SignedUpdate, type UpdateAnnouncement, decodeAnnouncement, encodeAnnouncement } from '../core/update.ts';
import { damagedError, levelFilesWithoutCurrent, openLevel } from './leveldb.ts';

export interface PoolEntry extends UpdateAnnouncement {
  key: string;
  receivedAt: number;
  hasPayload: boolean;
}

export const poolKey = (clientId: string, digest: Uint8Array) => `${clientId}:${toHex(digest)}`;

const NO_SIGNATURE = new Uint8Array(0);

/**
 * An entry whose payload is gone is only the replay record (`has`) and the load window's
 * (minerId, receivedAt): its ML-DSA signature (2,420 of its ~2,600 bytes, off the JS heap) is
 * dropped from memory (it stays on disk). Kept, it grew a miner's memory by every update ever
 * accepted: ~110 MB an hour at the soak's 12 uploads a second.
 */
function dropPayload(e: PoolEntry): PoolEntry {
  // in place: the update intake holds the same objects and reads hasPayload
  e.hasPayload = false;
  e.signature = NO_SIGNATURE;
  return e;
}

export class UpdatePool {
  private readonly db: Level<string, Uint8Array>;
  private readonly meta;
  private readonly payloads;
  private readonly entries = new Map<string, PoolEntry>();

  private constructor(db: Level<string, Uint8Array>) {
    this.db = db;
    this.meta = db.sublevel<string, Uint8Array>('m', { valueEncoding: 'view' });
    this.payloads = db.sublevel<string, Uint8Array>('p', { valueEncoding: 'view' });
  }

  /**
   * Open (creating it unless `readOnly`) and load the announcements. A lock held by a running
   * node is STORE_LOCKED; a damaged database or entry is POOL_CORRUPT (with `chain repair` as
   * the way out), never a raw LevelDB error.
   */
  static async open(dir: string, opts: { readOnly?: boolean } = {}): Promise<UpdatePool> {
    if (opts.readOnly && !existsSync(join(dir, 'CURRENT')) && !levelFilesWithoutCurrent(dir)) throw new BflError(ErrorCode.NOT_FOUND, `${dir} holds no update pool`);
    if (!opts.readOnly) await mkdir(dir, { recursive: true });
    const { db } = await openLevel<Uint8Array>('pool', dir, { valueEncoding: 'view', createIfMissing: !opts.readOnly });
    const pool = new UpdatePool(db);
    try {
      const withPayload = new Set<string>();
      for await (const k of pool.payloads.keys()) withPayload.add(k);
      for await (const [k, v] of pool.meta.iterator()) {
        if (v.length < 8) throw new Error(`entry ${k} is ${v.length} bytes`);
        let a: UpdateAnnouncement;
        try {
          a = decodeAnnouncement(v.subarray(8));
        } catch (e) {
          throw new Error(`entry ${k}: ${(e as Error).message}`);
        }
        if (k !== poolKey(a.clientId, a.updateDigest)) throw new Error(`entry ${k} holds the update ${poolKey(a.clientId, a.updateDigest)}`);
        const receivedAt = Number(new DataView(v.buffer, v.byteOffset, 8).getBigUint64(0));
        const e = { ...a, key: k, receivedAt, hasPayload: withPayload.has(k) };
        pool.entries.set(k, e.hasPayload ? e : dropPayload(e));
      }
    } catch (e) {
      await db.close();
      throw damagedError('pool', dir, (e as Error).message);
    }
    return pool;
  }

  /** The keys with a stored payload that no announcement describes (`chain verify`). */
  async payloadsWithoutEntry(): Promise<string[]> {
    const out: string[] = [];
    for await (const k of this.payloads.keys()) if (!this.entries.has(k)) out.push(k);
    return out;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Seen before (the replay check): true even after the payload was pruned. */
  has(clientId: string, digest: Uint8Array): boolean {
    return this.entries.has(poolKey(clientId, digest));
  }

  get(clientId: string, digest: Uint8Array): PoolEntry | undefined {
    return this.entries.get(poolKey(clientId, digest));
  }

  all(): PoolEntry[] {
    return [...this.entries.values()];
  }

  async payload(clientId: string, digest: Uint8Array): Promise<Uint8Array | undefined> {
    return this.payloads.get(poolKey(clientId, digest));
  }

  /** Store an update (announcement and payload in one batch). False if it was known. */
  async add(u: SignedUpdate, now: number): Promise<boolean> {
    const key = poolKey(u.clientId, u.updateDigest);
    const known = this.entries.get(key);
    if (known?.hasPayload) return false;
    const stamp = new Uint8Array(8);
    new DataView(stamp.buffer).setBigUint64(0, BigInt(known?.receivedAt ?? now));
    const ann = encodeAnnouncement({ ...u, payloadBytes: u.payload.length });
    const metaValue = new Uint8Array(8 + ann.length);
    metaValue.set(stamp);
    metaValue.set(ann, 8);
    await this.db.batch([
      { type: 'put', sublevel: this.meta, key, value: metaValue },
      { type: 'put', sublevel: this.payloads, key, value: u.payload },
    ] as never);
    const { payload: _p, ...announcement } = u;
    this.entries.set(key, { ...announcement, payloadBytes: u.payload.length, key, receivedAt: known?.receivedAt ?? now, hasPayload: true });
    return !known;
  }

  /** Drop payloads (aggregated and buried); the announcements stay as the replay record (without their signatures in memory). */
  async prunePayloads(keys: string[]): Promise<void> {
    const present = keys.filter((k) => this.entries.get(k)?.hasPayload);
    if (present.length === 0) return;
    await this.payloads.batch(present.map((key) => ({ type: 'del' as const, key })));
    for (const k of present) dropPayload(this.entries.get(k)!);
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
