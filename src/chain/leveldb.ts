/**
 * What can go wrong with a LevelDB directory of a node (the chain store, the update pool), as
 * one-line BflErrors that say what to do (issue 13, items 3 and 9): held by a running node
 * (STORE_LOCKED), damaged (STORE_CORRUPT for the chain, POOL_CORRUPT for the pool), with
 * `bfl-node chain repair` (LevelDB's RepairDB) as the way out.
 */
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Level } from 'level';
import { BflError, ErrorCode } from '../core/errors.ts';

export type StoreKind = 'chain' | 'pool';

const WHAT: Record<StoreKind, string> = { chain: 'chain store', pool: 'update pool' };

/** The node's datadir of a store directory (DATADIR/chain, DATADIR/updates), for the hint. */
export function nodeDirOf(storeDir: string): string {
  const d = storeDir.replace(/\/+$/, '');
  return ['chain', 'updates'].includes(basename(d)) ? dirname(d) : d;
}

/** The message of a damaged store: what is wrong and the two ways out. */
export function damagedError(kind: StoreKind, dir: string, what: string): BflError {
  const code = kind === 'chain' ? ErrorCode.STORE_CORRUPT : ErrorCode.POOL_CORRUPT;
  const aside = kind === 'chain' ? `, or move ${dir} aside and restart to sync the chain from the other miners` : '';
  return new BflError(code, `the ${WHAT[kind]} in ${dir} is damaged (${what}); stop the node and run \`bfl-node chain repair --datadir ${nodeDirOf(dir)}\`${aside}`);
}

/**
 * LevelDB files without the CURRENT file that names the live manifest. LevelDB would treat the
 * directory as a new database (createIfMissing) and delete the old tables as obsolete on open,
 * so this is refused before LevelDB is given the directory: RepairDB can still rebuild it.
 */
export function levelFilesWithoutCurrent(dir: string): boolean {
  if (!existsSync(dir) || existsSync(join(dir, 'CURRENT'))) return false;
  return readdirSync(dir).some((f) => /^MANIFEST-\d+$/.test(f) || /^\d+\.(ldb|sst|log)$/.test(f));
}

/** A LevelDB open error as a BflError: the lock (a running node) or damage. */
export function openError(kind: StoreKind, dir: string, e: unknown): BflError {
  const cause = (e as { cause?: Error & { code?: string } }).cause;
  const detail = `${(e as Error).message}${cause ? ` (${cause.message})` : ''}`;
  if (cause?.code === 'LEVEL_LOCKED' || /LOCK: already held|lock .*LOCK/.test(detail)) {
    return new BflError(ErrorCode.STORE_LOCKED, `the ${WHAT[kind]} in ${dir} is locked by a running node; stop it first`);
  }
  return damagedError(kind, dir, `LevelDB: ${cause?.message ?? (e as Error).message}`);
}

/**
 * What LevelDB may hold in a node's memory (classic-level's open options, passed through to
 * leveldb::Options). A miner's chain grows by a global model (~636 kB) per aggregation, ~70 MB a
 * minute at the soak's pace, so whatever LevelDB keeps per table file grows with the chain unless
 * bounded here (docs/decisions.md, "A miner's memory: what bounds it").
 */
export interface LevelTuning {
  /**
   * Files LevelDB keeps open; its table cache holds `maxOpenFiles - 10` tables, and on 64-bit
   * Linux every open table is mmapped whole (up to 1,000 mmaps a process), its touched pages
   * counted in the process's RSS. classic-level's default of 1,000 let a miner map every table of
   * its chain (31 → 217 in 3 minutes, RssFile growing with them).
   */
  maxOpenFiles: number;
  /** LevelDB's LRU block cache (anonymous memory; blocks read from mmapped tables bypass it). */
  cacheSize: number;
  /** A memtable's size before it is written as a table; LevelDB holds up to two (anonymous). */
  writeBufferSize: number;
  /** Size at which a compaction starts a new table file. */
  maxFileSize: number;
}

export const defaultLevelTuning: LevelTuning = {
  // LevelDB's smallest (it clips to 64 tables + 10 other files): at most 64 tables of ≤ 2 MB
  // mapped, ~128 MB in the worst case, whatever the chain's length. Reads are of the newest
  // blocks (memtable and the young tables), sequential (chain verify, sync batches) or rare (a
  // peer's request for an old block: one table open, an mmap and its index block).
  maxOpenFiles: 74,
  // classic-level's defaults, stated: 8 MB holds a dozen global models' blocks or thousands of
  // index, state and height entries; a 4 MB memtable is ~6 global models per flush.
  cacheSize: 8 << 20,
  writeBufferSize: 4 << 20,
  maxFileSize: 2 << 20,
};

/** Opens a store's LevelDB, refusing a directory whose CURRENT file is gone. */
export async function openLevel<V>(kind: StoreKind, dir: string, options: { valueEncoding: string; createIfMissing: boolean; tuning?: Partial<LevelTuning> }): Promise<{ db: Level<string, V>; existed: boolean }> {
  if (levelFilesWithoutCurrent(dir)) throw damagedError(kind, dir, 'LevelDB files but no CURRENT file');
  const existed = existsSync(join(dir, 'CURRENT'));
  const tuning = { ...defaultLevelTuning, ...options.tuning };
  const db = new Level<string, V>(dir, { keyEncoding: 'utf8', valueEncoding: options.valueEncoding, createIfMissing: options.createIfMissing, ...tuning } as never);
  try {
    await db.open();
  } catch (e) {
    throw openError(kind, dir, e);
  }
  return { db, existed };
}

/**
 * LevelDB's RepairDB on one store directory: rebuilds the manifest (and CURRENT) from the
 * tables and logs that are there; records in damaged blocks are dropped. Fails with
 * STORE_LOCKED while a node holds it.
 */
export async function repairLevel(kind: StoreKind, dir: string): Promise<void> {
  // RepairDB takes no lock: a probe open refuses a store a running node holds. Only the lock
  // stops the repair; failing to open for damage is why we are here.
  const probe = new Level(dir, { createIfMissing: false });
  try {
    await probe.open();
    await probe.close();
  } catch (e) {
    const err = openError(kind, dir, e);
    if (err.code === ErrorCode.STORE_LOCKED) throw err;
  }
  try {
    // `level` is classic-level's ClassicLevel on Node; its typings omit the static repair.
    await (Level as unknown as { repair(location: string): Promise<void> }).repair(dir);
  } catch (e) {
    throw openError(kind, dir, e);
  }
}
