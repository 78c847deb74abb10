/**
 * Builds the WebAssembly kernels from their AssemblyScript sources (`npm run build:wasm`); the
 * .wasm files are committed beside the code that loads them, so installing the project needs
 * no compiler. test/unit/wasm-build.slow.test.ts rebuilds them and checks the committed bytes.
 * Usage: node scripts/build-wasm.ts [OUT_DIR]  (default: in place)
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** -O3 with no assertions and the minimal runtime: the kernels allocate nothing. */
const COMMON = ['-O3', '--runtime', 'stub', '--noAssert'];

export const WASM_TARGETS = [
  { source: 'assembly/pow.ts', out: 'src/mining/pow.wasm', flags: ['--enable', 'simd'] },
  // threads: one shared memory for the calling thread and the workers (max 4 GiB, all wasm32 can address)
  { source: 'assembly/gram.ts', out: 'src/kernels/gram.wasm', flags: ['--enable', 'simd,threads', '--importMemory', '--sharedMemory', '--initialMemory', '1', '--maximumMemory', '65536'] },
];

export function buildWasm(outDir?: string): string[] {
  const asc = join(root, 'node_modules', '.bin', 'asc');
  return WASM_TARGETS.map((t) => {
    const out = outDir ? join(outDir, t.out.split('/').pop()!) : join(root, t.out);
    execFileSync(asc, [join(root, t.source), ...COMMON, ...t.flags, '--outFile', out], { stdio: ['ignore', 'inherit', 'inherit'] });
    return out;
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const out of buildWasm(process.argv[2])) console.log(`built ${out}`);
}
