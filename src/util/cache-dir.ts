import { homedir } from 'node:os';
import { join } from 'node:path';

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
