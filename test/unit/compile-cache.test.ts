/**
 * Node's compile cache, one directory per checkout (src/util/cache-dir.ts): a new checkout's
 * first start removes the caches of checkouts that are gone and those of the old layout, and
 * keeps those of checkouts still there; later starts touch nothing.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileCacheDir } from '../../src/util/cache-dir.ts';
import { tmpDir } from '../helpers/tmp.ts';

/** A directory that looks like a checkout (what the prune looks for). */
function checkout(dir: string): string {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  writeFileSync(join(dir, 'bin', 'bfl-node.js'), '');
  return dir;
}

describe('compile cache per checkout', () => {
  it('names its checkout; a new checkout prunes the caches of gone ones and of the old layout, and keeps live ones', async () => {
    const home = await tmpDir('bfl-ccache-');
    const env = { XDG_CACHE_HOME: join(home, 'cache') };
    const base = join(home, 'cache', 'bfl-node', 'compile-cache');
    const live = checkout(join(home, 'live'));
    const gone = checkout(join(home, 'gone'));
    const liveDir = compileCacheDir(live, env)!;
    const goneDir = compileCacheDir(gone, env)!;
    expect(liveDir).not.toBe(goneDir);
    expect(readFileSync(join(liveDir, 'root'), 'utf8')).toBe(live);
    for (const d of [liveDir, goneDir]) mkdirSync(join(d, 'v24.0.0-x64-abc-0'), { recursive: true }); // Node's entries
    // the layout before: Node's directory straight under the base
    mkdirSync(join(base, 'v24.21.0-x64-964aae3f-0'), { recursive: true });
    writeFileSync(join(base, 'v24.21.0-x64-964aae3f-0', 'entry'), 'x');
    // the gone checkout is deleted; a start of the live one prunes nothing (its cache is named)
    await import('node:fs/promises').then((fs) => fs.rm(gone, { recursive: true }));
    expect(compileCacheDir(live, env)).toBe(liveDir);
    expect(readdirSync(base).sort()).toEqual([liveDir, goneDir, join(base, 'v24.21.0-x64-964aae3f-0')].map((d) => d.slice(base.length + 1)).sort());
    // a checkout's directory being made beside this start (not named yet, or its name not whole) stays
    mkdirSync(join(base, '0123456789abcdef'));
    mkdirSync(join(base, 'fedcba9876543210'));
    writeFileSync(join(base, 'fedcba9876543210', 'root'), '');
    // a new checkout's first start prunes
    const fresh = checkout(join(home, 'fresh'));
    const freshDir = compileCacheDir(fresh, env)!;
    expect(readdirSync(base).sort()).toEqual([liveDir, freshDir, join(base, '0123456789abcdef'), join(base, 'fedcba9876543210')].map((d) => d.slice(base.length + 1)).sort());
    expect(existsSync(join(liveDir, 'v24.0.0-x64-abc-0'))).toBe(true);
  });
});
