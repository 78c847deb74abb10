import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { writeFileAtomic } from './atomic-file.ts';

/**
 * The user's cache directory for bfl-node's caches (`$XDG_CACHE_HOME`, else `~/.cache`, then
 * `bfl-node/<name>`): the launcher's compile cache and the embedded data set's split
 * (learn/data.ts). Undefined when neither is known (no home directory, or `/`): never the shared
 * temp directory, where whoever writes a cache first chooses what it holds.
 */
export function userCacheDir(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  let base = env.XDG_CACHE_HOME;
  if (!base) {
    let home = '';
    try {
      home = homedir();
    } catch {
      // no home directory: HOME unset and no passwd entry for this user
    }
    base = home && home !== '/' ? join(home, '.cache') : '';
  }
  return base ? join(base, 'bfl-node', name) : undefined;
}

/** The file in a checkout's compile cache that names the checkout. */
const ROOT_FILE = 'root';
/** A checkout's directory: 16 hex digits of the SHA-256 of its path. */
const KEYED = /^[0-9a-f]{16}$/;

/**
 * Node's compile cache for the bfl-node checkout (or installed package) at `root`:
 * `<user cache>/bfl-node/compile-cache/<hash of root>/`. Node names its entries by the module's
 * path and replaces one whose source changed, so one checkout's cache stays the size of its
 * modules; but every new checkout (a CI clone, a release unpacked elsewhere) added its own
 * modules beside the others', never read again (199 MB, 35,378 files on the development
 * machine). So each checkout has its own directory, which names the checkout, and the first
 * start of a new checkout removes the directories of checkouts that are gone
 * (pruneCompileCaches). Undefined where there is no user cache directory.
 */
export function compileCacheDir(root: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const base = userCacheDir('compile-cache', env);
  if (!base) return undefined;
  const dir = join(base, createHash('sha256').update(root).digest('hex').slice(0, 16));
  if (!existsSync(join(dir, ROOT_FILE))) {
    // a cache is an optimisation: one that cannot be named or pruned is no error. Named first
    // (written aside and renamed, so that a prune beside it never reads it empty), so that a
    // sibling that cannot be removed does not leave this checkout unnamed and pruning at every start
    try {
      mkdirSync(dir, { recursive: true });
      writeFileAtomic(join(dir, ROOT_FILE), root);
    } catch {
      // unnamed: Node may still write its cache here; the next start tries again
    }
    pruneCompileCaches(base);
  }
  return dir;
}

/**
 * Remove from `base` the compile caches of checkouts that are gone (the directory their `root`
 * file names holds no bin/bfl-node.js), and any other directory but a checkout's not named yet
 * (the layout before per-checkout directories: Node's own `v<version>-...` directories straight
 * under `base`). Returns the names removed.
 */
export function pruneCompileCaches(base: string): string[] {
  let entries;
  try {
    entries = readdirSync(base, { withFileTypes: true });
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const dir = join(base, e.name);
    let root: string | undefined;
    try {
      root = readFileSync(join(dir, ROOT_FILE), 'utf8');
    } catch {
      root = undefined;
    }
    if (root !== undefined && isAbsolute(root)) {
      if (existsSync(join(root, 'bin', 'bfl-node.js'))) continue;
    } else if (KEYED.test(e.name)) continue; // a checkout's directory not named yet: being made by a start beside this one
    try {
      rmSync(dir, { recursive: true, force: true });
      removed.push(e.name);
    } catch {
      // not ours to remove (another user's, read-only): the others are still pruned
    }
  }
  return removed;
}
