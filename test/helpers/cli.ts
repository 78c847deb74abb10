import { main } from '../../src/cli/main.ts';

/** The CLI in this process (no Node start-up per call), with `env` set for the call only; the
 * exit code, stdout and stderr as a spawned one would give them. */
export async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const saved = { out: process.stdout.write, err: process.stderr.write, env: { ...process.env } };
  process.stdout.write = ((s: string) => out.push(String(s)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => err.push(String(s)) > 0) as typeof process.stderr.write;
  Object.assign(process.env, env);
  try {
    const code = await main(args);
    return { code, out: out.join(''), err: err.join('') };
  } finally {
    process.stdout.write = saved.out;
    process.stderr.write = saved.err;
    for (const k of Object.keys(env)) if (saved.env[k] === undefined) delete process.env[k];
    Object.assign(process.env, saved.env);
    process.exitCode = undefined;
  }
}
