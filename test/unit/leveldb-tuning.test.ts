/**
 * LevelDB's mapped tables are bounded (issue 13, "memory that returns to its baseline"): on
 * 64-bit Linux LevelDB mmaps every table file its table cache holds, and with classic-level's
 * default of 1,000 open files a miner mapped every table of its growing chain. `maxOpenFiles`
 * (defaultLevelTuning) bounds the table cache, so the tables mapped stay below it however many
 * there are. Counted from /proc/self/maps (Linux only).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type LevelTuning, defaultLevelTuning, openLevel } from '../../src/chain/leveldb.ts';
import { tmpDir } from '../helpers/tmp.ts';

const linux = existsSync('/proc/self/maps');

/** Table files of `dir` this process has mapped. */
function mappedTables(dir: string): number {
  const files = new Set<string>();
  for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    const path = line.slice(line.indexOf('/'));
    if (line.includes('/') && path.startsWith(`${dir}/`) && path.endsWith('.ldb')) files.add(path);
  }
  return files.size;
}

/**
 * Writes ~10 MB of incompressible values into small tables, reads every seventh back and reports
 * the tables on disk and the most this process mapped at once.
 */
async function fillAndRead(tuning: Partial<LevelTuning>): Promise<{ tables: number; mapped: number }> {
  const dir = await tmpDir('bfl-level-');
  const { db } = await openLevel<Uint8Array>('chain', dir, { valueEncoding: 'view', createIfMissing: true, tuning: { writeBufferSize: 64 << 10, ...tuning } });
  let seed = 1;
  const value = () => {
    const v = new Uint8Array(16 << 10);
    for (let i = 0; i < v.length; i += 4) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      new DataView(v.buffer).setUint32(i, seed);
    }
    return v;
  };
  const n = 640;
  // a memtable of 64 kB is flushed as a table of 4 values: sequential keys do not overlap, so
  // LevelDB keeps them as they are (~160 tables)
  for (let i = 0; i < n; i += 4) {
    await db.batch(Array.from({ length: 4 }, (_, j) => ({ type: 'put' as const, key: String(i + j).padStart(6, '0'), value: value() })));
  }
  // reopen so that no table is open before the reads below
  await db.close();
  await db.open();
  let mapped = 0;
  let read = 0;
  for (let i = 0; i < n; i += 7) {
    const v = await db.get(String(i).padStart(6, '0'));
    expect(v?.length).toBe(16 << 10);
    read++;
    mapped = Math.max(mapped, mappedTables(dir));
  }
  expect(read).toBeGreaterThan(90);
  const tables = readdirSync(dir).filter((f) => f.endsWith('.ldb')).length;
  await db.close();
  return { tables, mapped };
}

describe.runIf(linux)('LevelDB tuning', () => {
  it('maps no more tables than maxOpenFiles allows, however many there are', async () => {
    const bounded = await fillAndRead({});
    // LevelDB's table cache holds maxOpenFiles - 10 tables
    expect(bounded.tables).toBeGreaterThan(defaultLevelTuning.maxOpenFiles);
    expect(bounded.mapped).toBeGreaterThan(0);
    expect(bounded.mapped).toBeLessThanOrEqual(defaultLevelTuning.maxOpenFiles - 10);
    // classic-level's own default maps every table it has read: the bound is what the option does
    const unbounded = await fillAndRead({ maxOpenFiles: 1000 });
    expect(unbounded.mapped).toBeGreaterThan(defaultLevelTuning.maxOpenFiles);
  }, 60_000);

});
