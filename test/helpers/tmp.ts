import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const dirs: string[] = [];

/** A fresh temporary directory, removed after the test file. */
export async function tmpDir(prefix = 'bfl-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

afterAll(async () => {
  if (process.env.BFL_KEEP_TEST_FILES) return; // for looking at the logs of a failed e2e test
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});
