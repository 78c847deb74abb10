/**
 * The soak's memory diagnostics (scripts/smaps-summary.ts, scripts/heapsnapshot-diff.ts; issue 13,
 * docs/decisions.md "A miner's memory", ninth look): smaps grouped as glibc lays its heaps out,
 * and two heap snapshots compared by class with dominator-tree retained sizes.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { diff, readSnapshot } from '../../scripts/heapsnapshot-diff.ts';
import { smapsDiff, smapsSummary } from '../../scripts/smaps-summary.ts';
import { tmpDir } from '../helpers/tmp.ts';

const mapping = (range: string, perms: string, path: string, sizeKB: number, rssKB: number, anonKB = rssKB) =>
  `${range} ${perms} 00000000 00:00 0 ${path}\nSize: ${sizeKB} kB\nRss: ${rssKB} kB\nAnonymous: ${anonKB} kB\n`;

it('groups smaps into [heap], thread arenas (a 64 MB-aligned rw + none pair), anonymous sizes and files', () => {
  const text = [
    mapping('55d000000000-55d000400000', 'r-xp', '/usr/bin/node', 4096, 3000, 0),
    mapping('55d001000000-55d003000000', 'rw-p', '[heap]', 32768, 30000),
    // a thread arena: 64 MB aligned, 12 MB used, the rest of the 64 MB PROT_NONE
    mapping('7f0004000000-7f0004c00000', 'rw-p', '', 12288, 10000),
    mapping('7f0004c00000-7f0008000000', '---p', '', 53248, 0),
    // V8 pages and a buffer's own mapping
    mapping('7f0010040000-7f0010080000', 'rw-p', '', 256, 256),
    mapping('7f0010100000-7f0010200000', 'rw-p', '', 1024, 900),
    mapping('7f0011000000-7f0011001000', '---p', '', 4, 0),
  ].join('');
  const { groups, topFiles } = smapsSummary(text);
  expect(groups['[heap]']).toEqual({ count: 1, sizeKB: 32768, rssKB: 30000, anonKB: 30000 });
  expect(groups['anon:arena']).toEqual({ count: 2, sizeKB: 65536, rssKB: 10000, anonKB: 10000 });
  expect(groups['anon:≤256k']).toMatchObject({ count: 1, rssKB: 256 });
  expect(groups['anon:≤1M']).toMatchObject({ count: 1, rssKB: 900 });
  expect(groups['anon:none']).toMatchObject({ count: 1, rssKB: 0 });
  expect(groups.files).toMatchObject({ count: 1, rssKB: 3000, anonKB: 0 });
  expect(topFiles).toEqual([{ path: '/usr/bin/node', rssKB: 3000 }]);
  const grown = smapsSummary(text.replace('Rss: 30000 kB', 'Rss: 41000 kB'));
  expect(smapsDiff(groups, grown.groups)['[heap]'].rssKB).toBe(11000);
  expect(smapsDiff(groups, grown.groups)['anon:arena'].rssKB).toBe(0);
});

it('compares two heap snapshots by class: counts, self sizes and retained sizes of what was added', async () => {
  const dir = await tmpDir('heapdiff-');
  // 5,000 objects of one class, each holding a 100-element array, kept between the two snapshots
  const script = `
    const v8 = require('node:v8');
    class Kept { constructor(i) { this.i = i; this.items = new Array(100).fill(i); } }
    v8.writeHeapSnapshot(${JSON.stringify(join(dir, 'a.heapsnapshot'))});
    globalThis.kept = Array.from({ length: 5000 }, (_, i) => new Kept(i));
    v8.writeHeapSnapshot(${JSON.stringify(join(dir, 'b.heapsnapshot'))});`;
  execFileSync(process.execPath, ['-e', script]);
  const a = readSnapshot(join(dir, 'a.heapsnapshot'));
  const b = readSnapshot(join(dir, 'b.heapsnapshot'));
  const kept = diff(a, b).find((r) => r.name === 'Kept')!;
  expect(kept.a.count).toBe(0);
  expect(kept.b.count).toBe(5000);
  // each Kept retains its elements' store (100 small integers, 8 bytes each on 64-bit, plus a header)
  expect(kept.b.retained).toBeGreaterThan(5000 * 800);
  expect(kept.b.retained).toBeLessThan(5000 * 1200);
  expect(b.selfTotal - a.selfTotal).toBeGreaterThan(5000 * 800);
  // the root retains everything reachable
  expect(Math.max(...[...b.classes.values()].map((c) => c.retained))).toBeCloseTo(b.selfTotal - b.unreachableSelf, -3);
});
