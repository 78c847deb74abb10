/** Command output: stdout is for results (JSON with --json), logs go to stderr. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
}

export function print(line = ''): void {
  process.stdout.write(line + '\n');
}
