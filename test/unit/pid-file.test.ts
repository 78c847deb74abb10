/**
 * The pid file a node leaves in its datadir: it names the node, goes when the node stops, and
 * is never seen half-written (a supervisor or a second node that reads it while it is being
 * written got an empty file, and took pid 0 for the node: the testnet signal test failed so).
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { PID_FILE, readPid, removePidFile, writePidFile } from '../../src/cli/datadir.ts';
import { tmpDir } from '../helpers/tmp.ts';

const DATADIR_TS = fileURLToPath(new URL('../../src/cli/datadir.ts', import.meta.url));

describe('pid file', () => {
  it('names this process, is read back, and goes on removal; nothing else is left in the datadir', async () => {
    const dir = await tmpDir('bfl-pid-');
    writePidFile(dir);
    expect(readFileSync(join(dir, PID_FILE), 'utf8')).toBe(`${process.pid}\n`);
    expect(readPid(dir)).toBe(process.pid);
    expect(readdirSync(dir)).toEqual([PID_FILE]);
    removePidFile(dir);
    expect(existsSync(join(dir, PID_FILE))).toBe(false);
    expect(readPid(dir)).toBeUndefined();
  });

  it('a reader never sees it empty or partial while another process rewrites it', { timeout: 60_000 }, async () => {
    const dir = await tmpDir('bfl-pid-');
    const done = join(dir, 'writer-done');
    // the writer rewrites the file as a node would, 5,000 times, then leaves a marker
    const script = `
      import { writeFileSync } from 'node:fs';
      const { writePidFile } = await import(${JSON.stringify(DATADIR_TS)});
      writePidFile(${JSON.stringify(dir)});
      process.stdout.write('ready\\n');
      for (let i = 0; i < 5000; i++) writePidFile(${JSON.stringify(dir)});
      writeFileSync(${JSON.stringify(done)}, '');`;
    const w = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      w.stdout!.once('data', () => resolve());
      w.once('exit', (code) => reject(new Error(`writer exited with ${code} before it was ready`)));
    });
    const seen = new Map<string, number>();
    let reads = 0;
    const end = Date.now() + 30_000;
    while (!existsSync(done) && Date.now() < end) {
      let text: string;
      try {
        text = readFileSync(join(dir, PID_FILE), 'utf8');
      } catch {
        text = '<missing>';
      }
      seen.set(text, (seen.get(text) ?? 0) + 1);
      reads++;
    }
    await new Promise((r) => (w.exitCode === null ? w.once('exit', r) : r(null)));
    expect(w.exitCode).toBe(0);
    expect(reads).toBeGreaterThan(100);
    expect([...seen.keys()]).toEqual([`${w.pid}\n`]);
    expect(readdirSync(dir).sort()).toEqual([PID_FILE, 'writer-done']);
  });
});
