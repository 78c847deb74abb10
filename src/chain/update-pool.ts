/**
 * The miner's pool of raw updates (never on chain), beside the chain: on LevelDB the small
 * announcement of every update it holds (keyed by (client, digest): gossipsub's two-minute seen
 * cache is not enough), and the payloads until they are aggregated and buried, one file each in
 * `payloads/`. Metadata lives in memory; payloads are read on demand.
 *
 * What it holds is bounded (issue 13, eighth wave): the updates with their payload (until they
 * are aggregated, or superseded, 32 blocks deep: node/miner.ts), and of the updates whose payload
 * is gone only those the chain cannot answer for: per client, its newest update recorded on the
 * chain (its vote: what makes its older updates superseded, node/update-intake.ts). The others
 * are forgotten (`forget`); a replay of them is refused by the chain's record index (recorded)
 * or by the client's vote (superseded), with DUPLICATE_RECORD as before. It kept every update
 * ever accepted before, loaded them all at open and was scanned whole on every block.
 *
 * Why files and not LevelDB values (issue 12, `bench ingest`): a 636 kB payload in LevelDB is
 * written to its log, then to a level-0 table, then rewritten by every compaction it takes part
 * in: 4.1 ms of CPU per update (0.5 ms of it on the event loop), against 0.4 ms for a file
 * (measured on 800 updates; a 64 MB write buffer only halves it). Large values beside a
 * key-value index is WiscKey's key-value separation. A payload file is written under a temporary
 * name and renamed before its announcement is written, so a crash leaves at most a payload
 * without announcement (removed on the next open), never an announcement with half a payload.
 * Durability is LevelDB's as we use it (no fsync). Payloads that older versions stored in
 * LevelDB (sublevel `p`) are still read and pruned.
 */
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Level } from 'level';
import { toHex } from '../core/bytes.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import { type SignedUpdate, type UpdateAnnouncement, decodeAnnouncement, encodeAnnouncement } from '../core/update.ts';
import { type LevelTuning, damagedError, levelFilesWithoutCurrent, openLevel } from './leveldb.ts';

export interface PoolEntry extends UpdateAnnouncement {
  key: string;
  receivedAt: number;
  hasPayload: boolean;
}

export const poolKey = (clientId: string, digest: Uint8Array) => `${clientId}:${toHex(digest)}`;

/** A payload's file name: its key with `+` for `:` (not in a member id's alphabet, and allowed in file names everywhere). */
const fileOf = (key: string) => key.replace(':', '+');
const keyOf = (file: string) => file.replace('+', ':');
const TMP = '.tmp';

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

/**
 * How long the pool remembers what it received, in arrival order (`receivedSince`): the load a
 * miner announces counts its clients of the last 30 s (node/assemble.ts, LOAD_WINDOW_MS); twice
 * that leaves room for a reader a little late.
 */
export const RECEIVED_LOG_MS = 60_000;

/** Announcements in one LevelDB batch at most (`putMeta`). */
const MAX_META_BATCH = 64;

/**
 * Write a file in one write call where the system takes it whole: fs/promises' writeFile splits
 * anything above 512 KiB into chunks, one trip to libuv's thread pool each, and a 636 kB payload
 * took two (issue 12).
 */
async function writeWhole(path: string, data: Uint8Array): Promise<void> {
  const fh = await open(path, 'w');
  try {
    for (let at = 0; at < data.length; ) at += (await fh.write(data, at, data.length - at)).bytesWritten;
  } finally {
    await fh.close();
  }
}

export class UpdatePool {
  private readonly db: Level<string, Uint8Array>;
  private readonly meta;
  /** Payloads stored by earlier versions (read and pruned, never written). */
  private readonly legacy;
  private readonly files: string;
  private readonly entries = new Map<string, PoolEntry>();
  /** The entries with their payload (the live updates), by client and by base model: the intake's per-block questions without a scan of the pool. */
  private readonly liveByClient = new Index();
  private readonly liveByModel = new Index();
  /** The entries whose payload is gone (replay records the chain cannot answer for), by client. */
  private readonly settledByClient = new Index();
  /** New entries in arrival order, the last `receivedLogMs` (`receivedSince`); `receivedHead` is the oldest still held. */
  private readonly receivedLog: { at: number; clientId: string; minerId: string }[] = [];
  private receivedHead = 0;
  private readonly receivedLogMs: number;
  private writes = 0;
  /** Announcements (a value) and deletions (none) waiting for the next group write (`putMeta`), and whether one is on LevelDB. */
  private readonly metaQueue: { key: string; value?: Uint8Array; resolve: () => void; reject: (e: Error) => void }[] = [];
  /** Keys being stored (`adopt`, from its announcement's write to the entry in memory): a deletion of them queued meanwhile is dropped. */
  private readonly adopting = new Map<string, number>();
  private metaWriting?: Promise<void>;
  /** Claimed payload file names (`claimPayloadFile`), released when their writer is done. */
  private readonly writers = new Map<string, Promise<void>>();

  private constructor(db: Level<string, Uint8Array>, dir: string, receivedLogMs: number) {
    this.db = db;
    this.receivedLogMs = receivedLogMs;
    this.meta = db.sublevel<string, Uint8Array>('m', { valueEncoding: 'view' });
    this.legacy = db.sublevel<string, Uint8Array>('p', { valueEncoding: 'view' });
    this.files = join(dir, 'payloads');
  }

  private fileOf(key: string): string {
    return join(this.files, fileOf(key));
  }

  /** Keys of the payload files (temporary ones from an interrupted write removed unless read-only). */
  private async payloadFiles(readOnly: boolean): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.files);
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return [];
      throw e;
    }
    const out: string[] = [];
    for (const n of names) {
      if (!n.endsWith(TMP)) out.push(keyOf(n));
      else if (!readOnly) await unlink(join(this.files, n)).catch(() => undefined);
    }
    return out;
  }

  /**
   * Open (creating it unless `readOnly`) and load the announcements. A lock held by a running
   * node is STORE_LOCKED; a damaged database or entry is POOL_CORRUPT (with `chain repair` as
   * the way out), never a raw LevelDB error.
   */
  static async open(dir: string, opts: { readOnly?: boolean; level?: Partial<LevelTuning>; receivedLogMs?: number; now?: number } = {}): Promise<UpdatePool> {
    if (opts.readOnly && !existsSync(join(dir, 'CURRENT')) && !levelFilesWithoutCurrent(dir)) throw new BflError(ErrorCode.NOT_FOUND, `${dir} holds no update pool`);
    if (!opts.readOnly) await mkdir(dir, { recursive: true });
    const { db } = await openLevel<Uint8Array>('pool', dir, { valueEncoding: 'view', createIfMissing: !opts.readOnly, tuning: opts.level });
    const pool = new UpdatePool(db, dir, opts.receivedLogMs ?? RECEIVED_LOG_MS);
    try {
      if (!opts.readOnly) await mkdir(pool.files, { recursive: true });
      const withPayload = new Set<string>(await pool.payloadFiles(opts.readOnly === true));
      for await (const k of pool.legacy.keys()) withPayload.add(k);
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
        pool.put(e.hasPayload ? e : dropPayload(e));
      }
      pool.reloadReceivedLog(opts.now ?? Date.now());
      // a payload file whose announcement was never written (a crash between the two): unreachable
      if (!opts.readOnly) for (const k of withPayload) if (!pool.entries.has(k)) await unlink(pool.fileOf(k)).catch(() => undefined);
    } catch (e) {
      await db.close();
      throw damagedError('pool', dir, (e as Error).message);
    }
    return pool;
  }

  /**
   * The keys with a stored payload that no announcement describes (`chain verify`). Payload
   * files are not counted: one without its announcement is what a crash between the two writes
   * leaves, and the next open removes it.
   */
  async payloadsWithoutEntry(): Promise<string[]> {
    const out: string[] = [];
    for await (const k of this.legacy.keys()) if (!this.entries.has(k)) out.push(k);
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

  /** The entries with their payload (a snapshot). */
  live(): PoolEntry[] {
    return this.liveByClient.all();
  }

  /** A client's entries with their payload (a snapshot). */
  liveOfClient(clientId: string): PoolEntry[] {
    return this.liveByClient.of(clientId);
  }

  /** The entries with their payload built on global model `modelHash` (a snapshot). */
  liveOnModel(modelHash: Uint8Array): PoolEntry[] {
    return this.liveByModel.of(toHex(modelHash));
  }

  /** The entries whose payload is gone (a snapshot). */
  settled(): PoolEntry[] {
    return this.settledByClient.all();
  }

  /** A client's entries whose payload is gone (a snapshot). */
  settledOf(clientId: string): PoolEntry[] {
    return this.settledByClient.of(clientId);
  }

  /** The updates received since `t` (as far back as the log reaches: `receivedLogMs`), newest first. */
  *receivedSince(t: number): Generator<{ at: number; clientId: string; minerId: string }> {
    for (let i = this.receivedLog.length - 1; i >= this.receivedHead && this.receivedLog[i].at >= t; i--) yield this.receivedLog[i];
  }

  /** One entry in and out of the map and the indexes (the only places that change them). */
  private put(e: PoolEntry): void {
    this.unput(e.key);
    this.entries.set(e.key, e);
    if (e.hasPayload) {
      this.liveByClient.add(e.clientId, e);
      this.liveByModel.add(toHex(e.baseModelHash), e);
    } else this.settledByClient.add(e.clientId, e);
  }

  private unput(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.liveByClient.delete(e.clientId, key);
    this.liveByModel.delete(toHex(e.baseModelHash), key);
    this.settledByClient.delete(e.clientId, key);
  }

  /**
   * The arrival log after a restart: the stored entries received within `receivedLogMs` of
   * `now` (their arrival time is on disk), oldest first. Without it a restarted miner announced
   * 0 clients for a load window (30 s): unloaded, to the clients' association policies.
   */
  private reloadReceivedLog(now: number): void {
    const recent = [...this.entries.values()].filter((e) => e.receivedAt >= now - this.receivedLogMs && e.receivedAt <= now);
    recent.sort((a, b) => a.receivedAt - b.receivedAt || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const e of recent) this.receivedLog.push({ at: e.receivedAt, clientId: e.clientId, minerId: e.minerId });
  }

  private logReceived(e: PoolEntry, now: number): void {
    this.receivedLog.push({ at: now, clientId: e.clientId, minerId: e.minerId });
    while (this.receivedHead < this.receivedLog.length && this.receivedLog[this.receivedHead].at < now - this.receivedLogMs) this.receivedHead++;
    // compacted once the dropped head is half of the array: amortised O(1) an entry
    if (this.receivedHead > 1024 && this.receivedHead * 2 > this.receivedLog.length) {
      this.receivedLog.splice(0, this.receivedHead);
      this.receivedHead = 0;
    }
  }

  async payload(clientId: string, digest: Uint8Array): Promise<Uint8Array | undefined> {
    const key = poolKey(clientId, digest);
    try {
      const b = await readFile(this.fileOf(key));
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') throw e;
    }
    return this.legacy.get(key);
  }

  /** Store an update (its payload file, then its announcement). False if it was known. */
  async add(u: SignedUpdate, now: number): Promise<boolean> {
    const a = { ...u, payloadBytes: u.payload.length };
    if (this.entries.get(poolKey(u.clientId, u.updateDigest))?.hasPayload) return false;
    const tmp = this.temporaryFile(u.clientId, u.updateDigest);
    await writeWhole(tmp, u.payload);
    return this.adopt(a, tmp, now);
  }

  /**
   * A name for an update's payload file before it is stored (`adopt`): a worker thread writes
   * the payload there (crypto/open-sealed.ts). Its own name: two uploads of one update may be
   * stored at once.
   */
  temporaryFile(clientId: string, digest: Uint8Array): string {
    return `${this.fileOf(poolKey(clientId, digest))}.${++this.writes}${TMP}`;
  }

  /**
   * The payload file's own name, claimed by one writer that creates it exclusively
   * (crypto/open-sealed.ts: no rename then), while no announcement of the update exists and no
   * other writer holds it; undefined otherwise. Stores of the update through a temporary file
   * wait for the release, so nothing replaces or removes the file under its writer. A crash
   * before the announcement leaves a payload without one, which `open` removes.
   */
  claimPayloadFile(clientId: string, digest: Uint8Array): { path: string; release: () => void } | undefined {
    const key = poolKey(clientId, digest);
    if (this.entries.has(key) || this.writers.has(key)) return undefined;
    let done!: () => void;
    this.writers.set(key, new Promise<void>((r) => (done = r)));
    return {
      path: this.fileOf(key),
      release: () => {
        this.writers.delete(key);
        done();
      },
    };
  }

  /**
   * Store an update whose payload is in `file`: a temporary one (`temporaryFile`, renamed here;
   * removed if the update was known) or its own (`claimPayloadFile`). False if it was known.
   */
  async adopt(a: UpdateAnnouncement, file: string, now: number): Promise<boolean> {
    const key = poolKey(a.clientId, a.updateDigest);
    const own = this.fileOf(key);
    if (file !== own) await this.writers.get(key);
    const known = this.entries.get(key);
    if (known?.hasPayload) {
      // the payload file is the stored update's (same digest, same bytes)
      if (file !== own) await unlink(file).catch(() => undefined);
      return false;
    }
    const stamp = new Uint8Array(8);
    new DataView(stamp.buffer).setBigUint64(0, BigInt(known?.receivedAt ?? now));
    const ann = encodeAnnouncement(a);
    const metaValue = new Uint8Array(8 + ann.length);
    metaValue.set(stamp);
    metaValue.set(ann, 8);
    if (file !== own) await rename(file, own);
    this.adopting.set(key, (this.adopting.get(key) ?? 0) + 1);
    try {
      await this.putMeta(key, metaValue);
      const { payload: _p, ...announcement } = a as UpdateAnnouncement & { payload?: Uint8Array };
      const entry = { ...announcement, key, receivedAt: known?.receivedAt ?? now, hasPayload: true };
      this.put(entry);
      if (!known) this.logReceived(entry, now);
    } finally {
      const n = this.adopting.get(key)! - 1;
      if (n === 0) this.adopting.delete(key);
      else this.adopting.set(key, n);
    }
    return !known;
  }

  /**
   * Announcements are written in groups: the first at once, those that arrive while a write is
   * on LevelDB's thread together in the next batch (a group commit; each caller still waits for
   * its own to be written). Issue 12, sixth pass: under a flood every stored upload was its own
   * put, a trip to the thread pool each (2-3 % of the miner's event loop under `bench ingest`).
   */
  private putMeta(key: string, value: Uint8Array | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      this.metaQueue.push({ key, value, resolve, reject });
      this.metaWriting ??= this.flushMeta();
    });
  }

  private async flushMeta(): Promise<void> {
    while (this.metaQueue.length > 0) {
      // a bound on one batch's size (~0.2 kB an announcement): the frames in flight of a few dozen clients
      const group = this.metaQueue.splice(0, MAX_META_BATCH);
      try {
        // in queue order, so a key's deletion and a later store of it land in that order
        const ops: ({ type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string })[] = [];
        for (const g of group) {
          if (g.value) ops.push({ type: 'put', key: g.key, value: g.value });
          else if (!this.adopting.has(g.key)) ops.push({ type: 'del', key: g.key });
        }
        await this.meta.batch(ops);
        for (const g of group) g.resolve();
      } catch (e) {
        for (const g of group) g.reject(e as Error);
      }
    }
    this.metaWriting = undefined;
  }

  /** Drop payloads (aggregated and buried); the announcements stay as the replay record (without their signatures in memory) until `forget`. */
  async prunePayloads(keys: string[]): Promise<void> {
    const present = keys.filter((k) => this.entries.get(k)?.hasPayload);
    if (present.length === 0) return;
    for (const k of present) {
      await unlink(this.fileOf(k)).catch((e: { code?: string }) => {
        if (e.code !== 'ENOENT') throw e;
      });
    }
    await this.legacy.batch(present.map((key) => ({ type: 'del' as const, key })));
    for (const k of present) this.put(dropPayload(this.entries.get(k)!));
  }

  /**
   * Forget entries whose payload is gone, from memory and LevelDB (batched with the
   * announcements' writes, in their order): the caller has made sure a replay of them is
   * refused without them (update-intake.ts, `forgettable`). Entries with their payload, and one
   * stored again meanwhile, stay.
   */
  async forget(keys: string[]): Promise<void> {
    const gone = keys.filter((k) => this.entries.get(k)?.hasPayload === false);
    if (gone.length === 0) return;
    await Promise.all(gone.map((k) => this.putMeta(k, undefined)));
    for (const k of gone) if (this.entries.get(k)?.hasPayload === false && !this.adopting.has(k)) this.unput(k);
  }

  async close(): Promise<void> {
    await this.metaWriting; // queued announcements are written first
    await this.db.close();
  }
}

/** Entries by a string (client id, base model): each group a map by key, kept in insertion order. */
class Index {
  private readonly groups = new Map<string, Map<string, PoolEntry>>();

  add(group: string, e: PoolEntry): void {
    const m = this.groups.get(group);
    if (m) m.set(e.key, e);
    else this.groups.set(group, new Map([[e.key, e]]));
  }

  delete(group: string, key: string): void {
    const m = this.groups.get(group);
    if (!m?.delete(key)) return;
    if (m.size === 0) this.groups.delete(group);
  }

  of(group: string): PoolEntry[] {
    return [...(this.groups.get(group)?.values() ?? [])];
  }

  all(): PoolEntry[] {
    const out: PoolEntry[] = [];
    for (const m of this.groups.values()) for (const e of m.values()) out.push(e);
    return out;
  }
}
