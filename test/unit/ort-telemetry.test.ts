// ONNX Runtime's telemetry (1.29+ on Linux and macOS, on by default) is off in bfl-node unless the
// operator turns it on (src/learn/ort.ts, docs/decisions.md "ONNX Runtime's telemetry").
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const RUNTIME = new URL('../../src/learn/runtime.ts', import.meta.url).pathname;
const ORT = new URL('../../src/learn/ort.ts', import.meta.url).pathname;

/** Run `code` (an ES module) in a fresh Node process whose environment has `env` (undefined: unset). */
function child(code: string, value: string | undefined): { pid: number; out: string } {
  const env = { ...process.env };
  delete env.ORT_DISABLE_TELEMETRY;
  if (value !== undefined) env.ORT_DISABLE_TELEMETRY = value;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { env, encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return { pid: r.pid!, out: r.stdout.trim() };
}

describe("ONNX Runtime's telemetry", () => {
  it('is opted out before the first session: the runtime starts no telemetry (no 1DS trace file for the process)', () => {
    const { pid, out } = child(
      `import { ModelRuntime } from ${JSON.stringify(RUNTIME)};
       const r = await ModelRuntime.create({ kind: 'mlp', layers: [4, 3, 2] }, { threads: 1 });
       await r.close();
       console.log(process.env.ORT_DISABLE_TELEMETRY);`,
      undefined,
    );
    expect(out).toBe('1');
    // ONNX Runtime 1.30's telemetry writes /tmp/mat-debug-<pid>.log when it starts
    for (const dir of new Set(['/tmp', tmpdir()])) expect(existsSync(join(dir, `mat-debug-${pid}.log`))).toBe(false);
  });

  it("an operator's own choice is kept", () => {
    for (const v of ['0', '1']) expect(child(`await import(${JSON.stringify(ORT)}); console.log(process.env.ORT_DISABLE_TELEMETRY);`, v).out).toBe(v);
  });
});
