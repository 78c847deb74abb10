import { randomBytes } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { threadId } from 'node:worker_threads';

/**
 * Write `file` whole or not at all: the data go to a name unique to this writer (process, thread
 * and a random part; 'wx' never follows or reuses a name) and are renamed into place, so a reader
 * never sees the file created but empty or half-written. On failure the temporary file is removed
 * where it can be and the write's own error thrown. Used for the node's pid file, a checkout's compile-cache name and the
 * data set's split cache.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode?: number): void {
  const tmp = `${file}.${process.pid}.${threadId}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, data, { flag: 'wx', ...(mode === undefined ? {} : { mode }) });
    renameSync(tmp, file);
  } catch (e) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // the directory itself is unusable (nothing was written): the write's error says why
    }
    throw e;
  }
}
