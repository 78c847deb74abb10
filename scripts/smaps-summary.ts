// A process's memory by mapping (issue 13, the soak's diagnostics; docs/decisions.md "A miner's
// memory: what bounds it"): /proc/PID/smaps grouped into glibc's main heap ([heap]), glibc's
// thread arenas, other anonymous mappings by size class, the kernel's named mappings ([stack],
// [vdso]...) and files, each with its count, Size, Rss and Anonymous (kB). The soak writes one per
// miner at its diagnostic points; this script diffs two of them.
//   npx node scripts/smaps-summary.ts A.smaps [B.smaps]
// Thread arenas are told apart from V8's pages and other mmaps by glibc's layout: an arena is a
// HEAP_MAX_SIZE (64 MB on 64-bit) reservation aligned to 64 MB, its used part read-write and the
// rest PROT_NONE right after it (malloc/arena.c, new_heap). V8 reserves its pages at random hints
// (256 kB aligned), so a 64 MB-aligned start is not proof, but the rw + none pair summing to
// exactly 64 MB is glibc's.
import { readFileSync } from 'node:fs';

export interface SmapsGroup {
  count: number;
  sizeKB: number;
  rssKB: number;
  anonKB: number;
}

interface Mapping {
  start: bigint;
  end: bigint;
  perms: string;
  path: string;
  fields: Record<string, number>;
}

const ARENA_BYTES = 64n << 20n; // glibc's HEAP_MAX_SIZE on 64-bit: 2 × DEFAULT_MMAP_THRESHOLD_MAX (32 MB)

/** Anonymous mappings by size (upper bounds, kB): V8's regular pages are 256 kB, its large-object
 * pages and glibc's mmapped blocks (above the 32 kB threshold) anything, thread stacks 8 MB. */
const SIZE_CLASSES_KB: readonly [number, string][] = [
  [64, '≤64k'],
  [256, '≤256k'],
  [1024, '≤1M'],
  [4096, '≤4M'],
  [16384, '≤16M'],
  [65536, '≤64M'],
  [Number.POSITIVE_INFINITY, '>64M'],
];

export function parseSmaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      out.push({ start: BigInt(`0x${head[1]}`), end: BigInt(`0x${head[2]}`), perms: head[3], path: head[4], fields: {} });
      continue;
    }
    const f = /^(\w+):\s+(\d+) kB$/.exec(line);
    if (f && out.length) out[out.length - 1].fields[f[1]] = Number(f[2]);
  }
  return out;
}

/** The groups of one smaps text, and the largest files by Rss (`topFiles`). */
export function smapsSummary(text: string, topFiles = 8): { groups: Record<string, SmapsGroup>; topFiles: { path: string; rssKB: number }[] } {
  const maps = parseSmaps(text);
  const groups: Record<string, SmapsGroup> = {};
  const files = new Map<string, number>();
  const add = (k: string, m: Mapping) => {
    const g = (groups[k] ??= { count: 0, sizeKB: 0, rssKB: 0, anonKB: 0 });
    g.count++;
    g.sizeKB += m.fields.Size ?? 0;
    g.rssKB += m.fields.Rss ?? 0;
    g.anonKB += m.fields.Anonymous ?? 0;
  };
  const arenaNone = new Set<number>(); // the PROT_NONE tails of the arenas found, counted with them
  maps.forEach((m, i) => {
    if (arenaNone.has(i)) return add('anon:arena', m);
    if (m.path.startsWith('/')) {
      files.set(m.path, (files.get(m.path) ?? 0) + (m.fields.Rss ?? 0));
      return add('files', m);
    }
    if (m.path) return add(m.path, m); // [heap], [stack], [vdso], [anon:...]
    const next = maps[i + 1];
    const arena = m.start % ARENA_BYTES === 0n && m.perms.startsWith('rw') && ((next && !next.path && next.start === m.end && next.perms.startsWith('---') && next.end - m.start === ARENA_BYTES) || m.end - m.start === ARENA_BYTES);
    if (arena) {
      if (next && next.start === m.end && next.perms.startsWith('---') && !next.path) arenaNone.add(i + 1);
      return add('anon:arena', m);
    }
    if (m.perms.startsWith('---')) return add('anon:none', m); // reservations and guard pages: no memory
    const kb = m.fields.Size ?? 0;
    add(`anon:${SIZE_CLASSES_KB.find(([b]) => kb <= b)![1]}`, m);
  });
  const top = [...files].sort((a, b) => b[1] - a[1]).slice(0, topFiles).map(([path, rssKB]) => ({ path, rssKB }));
  return { groups, topFiles: top };
}

/** B − A, group by group (kB), for the groups of either. */
export function smapsDiff(a: Record<string, SmapsGroup>, b: Record<string, SmapsGroup>): Record<string, SmapsGroup> {
  const zero: SmapsGroup = { count: 0, sizeKB: 0, rssKB: 0, anonKB: 0 };
  const out: Record<string, SmapsGroup> = {};
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[k] ?? zero;
    const y = b[k] ?? zero;
    out[k] = { count: y.count - x.count, sizeKB: y.sizeKB - x.sizeKB, rssKB: y.rssKB - x.rssKB, anonKB: y.anonKB - x.anonKB };
  }
  return out;
}

if (import.meta.main) {
  const [a, b] = process.argv.slice(2);
  if (!a) {
    console.error('usage: npx node scripts/smaps-summary.ts A.smaps [B.smaps]');
    process.exit(2);
  }
  const sa = smapsSummary(readFileSync(a, 'utf8'));
  const sb = b ? smapsSummary(readFileSync(b, 'utf8')) : undefined;
  const keys = [...new Set([...Object.keys(sa.groups), ...Object.keys(sb?.groups ?? {})])].sort();
  const mb = (kb: number) => (kb / 1024).toFixed(1).padStart(8);
  console.log(`${'group'.padEnd(14)}${sb ? '   count A→B      Rss A      Rss B    ΔRss   ΔAnon (MB)' : '   count      Rss     Anon (MB)'}`);
  for (const k of keys) {
    const x = sa.groups[k] ?? { count: 0, sizeKB: 0, rssKB: 0, anonKB: 0 };
    if (!sb) {
      console.log(`${k.padEnd(14)}${String(x.count).padStart(8)} ${mb(x.rssKB)} ${mb(x.anonKB)}`);
      continue;
    }
    const y = sb.groups[k] ?? { count: 0, sizeKB: 0, rssKB: 0, anonKB: 0 };
    console.log(`${k.padEnd(14)}${`${x.count}→${y.count}`.padStart(12)} ${mb(x.rssKB)}   ${mb(y.rssKB)} ${mb(y.rssKB - x.rssKB)} ${mb(y.anonKB - x.anonKB)}`);
  }
  const total = (s: typeof sa) => Object.values(s.groups).reduce((t, g) => t + g.rssKB, 0);
  console.log(`${'total Rss'.padEnd(14)}${' '.repeat(sb ? 12 : 8)} ${mb(total(sa))}${sb ? `   ${mb(total(sb))} ${mb(total(sb) - total(sa))}` : ''}`);
  for (const [n, s] of [['A', sa], ['B', sb]] as const) if (s) console.log(`largest files ${n}: ${s.topFiles.map((f) => `${f.path.split('/').slice(-2).join('/')} ${(f.rssKB / 1024).toFixed(1)}`).join(', ')}`);
}
