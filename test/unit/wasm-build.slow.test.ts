import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { WASM_TARGETS, buildWasm } from '../../scripts/build-wasm.ts';

it('the committed .wasm files are what their AssemblyScript sources build to', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bfl-wasm-'));
  try {
    const built = buildWasm(dir);
    WASM_TARGETS.forEach((t, i) => expect(readFileSync(built[i]).equals(readFileSync(new URL(`../../${t.out}`, import.meta.url))), `${t.out}: run npm run build:wasm`).toBe(true));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
