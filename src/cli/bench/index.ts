import { Command } from 'commander';
import { benchPow } from '../../../bench/pow.ts';
import { benchSignatures, formatSignatureTable } from '../../../bench/signatures.ts';
import { parseIntFlag, parseNumberFlag } from '../exit.ts';
import { print, printJson } from '../output.ts';

export function benchCommand(): Command {
  const bench = new Command('bench').description('benchmarks (measured on this machine, in one run)');

  bench
    .command('signatures')
    .description("the paper's Table II: ML-DSA-44/65/87 (native, noble), Falcon, SLH-DSA, RSA, Ed25519")
    .option('--runs <n>', 'runs per measurement for the fast schemes (slow ones use fewer)', parseIntFlag('--runs', 3, 100_000), 50)
    .option('--filter <regex>', 'only schemes whose "name implementation" matches')
    .option('--json', 'print the rows as JSON', false)
    .action((o: { runs: number; filter?: string; json: boolean }) => {
      const rows = benchSignatures({ runs: o.runs, filter: o.filter ? new RegExp(o.filter, 'i') : undefined, onRow: o.json ? undefined : (r) => process.stderr.write(`  measured ${r.scheme} (${r.implementation})\n`) });
      if (o.json) printJson(rows);
      else print(formatSignatureTable(rows));
    });

  bench
    .command('pow')
    .description('SHA-256 header hashes per second: one core, all workers, and a native reference')
    .option('--seconds <s>', 'measuring time per figure', parseNumberFlag('--seconds', 0.2, 600), 3)
    .option('--workers <n>', 'mining worker threads (default: one per core)', parseIntFlag('--workers', 1, 512))
    .option('--json', 'print the result as JSON', false)
    .action(async (o: { seconds: number; workers?: number; json: boolean }) => {
      const r = await benchPow({ seconds: o.seconds, workers: o.workers });
      if (o.json) printJson(r);
      else {
        const m = (x: number) => `${(x / 1e6).toFixed(2)} M/s`;
        print(`header ${r.headerBytes} bytes`);
        print(`one core (midstate JS)     ${m(r.hashesPerSecondOneCore)}  = ${(r.ratioOneCoreToNative * 100).toFixed(0)}% of native`);
        print(`all workers (${r.workers})            ${m(r.hashesPerSecondAllWorkers)}  = ${r.scaling}x one core`);
        print(`native reference           ${m(r.nativeHashesPerSecondOneCore)}  (${r.nativeReference})`);
        print(`node:crypto hash() per call ${m(r.nodeCryptoHashesPerSecondOneCore)}`);
      }
    });
  return bench;
}
