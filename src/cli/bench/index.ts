import { Command, Option } from 'commander';
import { DEFAULT_MLP_PARAMS } from '../../../bench/aggregate.ts';
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
    .action(async (o: { runs: number; filter?: string; json: boolean }) => {
      const { benchSignatures, formatSignatureTable } = await import('../../../bench/signatures.ts');
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
      const { benchPow } = await import('../../../bench/pow.ts');
      const r = await benchPow({ seconds: o.seconds, workers: o.workers });
      if (o.json) printJson(r);
      else {
        const m = (x: number) => `${(x / 1e6).toFixed(2)} M/s`;
        print(`header ${r.headerBytes} bytes`);
        print(`one core (${r.engine.padEnd(4)})          ${m(r.hashesPerSecondOneCore)}  = ${(r.ratioOneCoreToNative * 100).toFixed(0)}% of native`);
        print(`one core (JS reference)    ${m(r.hashesPerSecondOneCoreJs)}  = ${(r.ratioOneCoreJsToNative * 100).toFixed(0)}% of native`);
        for (const w of r.workerScaling) print(`${String(w.workers).padStart(3)} worker(s)               ${m(w.hashesPerSecond)}`);
        print(`all workers (${r.workers})            ${m(r.hashesPerSecondAllWorkers)}  = ${r.scaling}x one worker`);
        print(`native reference           ${m(r.nativeHashesPerSecondOneCore)}  (${r.nativeReference})`);
        print(`node:crypto hash() per call ${m(r.nodeCryptoHashesPerSecondOneCore)}`);
        print(`load average at start: ${r.loadAverage1m} (on ${r.workers} cores; figures under load are low)`);
      }
    });
  bench
    .command('aggregate')
    .description('BFL-MEC scoring + aggregation time (median of runs) with the WebAssembly SIMD Gram kernel on every core and with the JS reference; with --grid, the growth in n and D')
    .option('--clients <n>', 'updates per aggregation', parseIntFlag('--clients', 2, 10_000), 100)
    .option('--dim <d>', `parameters per update (default: the default MLP, ${DEFAULT_MLP_PARAMS})`, parseIntFlag('--dim', 1, 50_000_000), DEFAULT_MLP_PARAMS)
    .option('--runs <n>', 'measured runs', parseIntFlag('--runs', 1, 1000), 5)
    .option('--grid', 'also measure n in {25, 50, 100, 200} and D in {D/4, D/2, D}', false)
    .option('--reference-blas', 'also time numpy (OpenBLAS) on the same float64 Gram matrix (needs python3 with numpy, e.g. Debian python3-numpy)', false)
    .option('--json', 'print JSON', false)
    .action(async (o: { clients: number; dim: number; runs: number; grid: boolean; referenceBlas: boolean; json: boolean }) => {
      const { benchAggregate } = await import('../../../bench/aggregate.ts');
      const main = await benchAggregate({ clients: o.clients, dim: o.dim, runs: o.runs, referenceBlas: o.referenceBlas });
      const grid: (typeof main)[] = [];
      if (o.grid) {
        for (const n of [25, 50, 100, 200]) grid.push(await benchAggregate({ clients: n, dim: o.dim, runs: Math.min(o.runs, 3) }));
        for (const d of [Math.round(o.dim / 4), Math.round(o.dim / 2)]) grid.push(await benchAggregate({ clients: o.clients, dim: d, runs: Math.min(o.runs, 3) }));
      }
      if (o.json) printJson(o.grid ? { ...main, grid } : main);
      else {
        const line = (r: typeof main) =>
          `${String(r.clients).padStart(6)} updates x ${String(r.dimension).padStart(9)} params: ${r.ms.toFixed(1).padStart(8)} ms (pairwise ${r.pairwiseMs.toFixed(1)} ms, ${(r.pairwiseShare * 100).toFixed(0)}%); JS reference ${r.msReference.toFixed(1)} ms (pairwise ${r.pairwiseReferenceMs.toFixed(1)} ms)`;
        print(`Gram kernel: ${main.kernel}; one-thread WebAssembly pairwise ${main.pairwiseWasmOneThreadMs.toFixed(1)} ms (${main.pairwiseWasmOneThreadCpuMs.toFixed(1)} ms CPU); bits identical to the reference: ${main.bitIdentical}`);
        print(line(main));
        if (main.blasMs !== undefined) print(`BLAS X·Xᵀ (${main.blas}): ${main.blasMs.toFixed(1)} ms (${main.blasCpuMs!.toFixed(1)} ms CPU); ours / BLAS = ${main.ratioToBlas} (CPU: ${main.ratioToBlasCpu})`);
        else if (o.referenceBlas) print('BLAS reference: no python3 with numpy found (Debian: apt-get install python3-numpy libopenblas0)');
        for (const r of grid) print(line(r));
        print(`load average at start: ${main.loadAverage1m}`);
      }
    });
  bench
    .command('ingest')
    .description('update intake of one miner from C flooding clients on loopback libp2p, beside raw libp2p stream throughput in the same run')
    .option('--clients <c>', 'flooding clients (each sends one signed update after another)', parseIntFlag('--clients', 1, 1000), 4)
    .option('--seconds <s>', 'flooding time', parseNumberFlag('--seconds', 1, 3600), 10)
    .option('--phi <n>', 'ϕ of the bench network (default: the highest allowed, no aggregation during the run)', parseIntFlag('--phi', 1, 100_000))
    .addOption(new Option('--upload <mode>', 'stream: pipelined frames on one stream per client (submit-stream); request: one request-response stream per update').choices(['stream', 'request']).default('stream'))
    .addOption(new Option('--prepare <when>', 'before: the clients sign and seal a stock of updates before the measured window (about 1 GB; the window ends early if one runs out); live: each update in the window, in the senders\' thread').choices(['before', 'live']).default('before'))
    .option('--json', 'print JSON', false)
    .action(async (o: { clients: number; seconds: number; phi?: number; upload: 'stream' | 'request'; prepare: 'before' | 'live'; json: boolean }) => {
      const { benchIngest } = await import('../../../bench/ingest.ts');
      const r = await benchIngest({ clients: o.clients, seconds: o.seconds, phi: o.phi, upload: o.upload, prepare: o.prepare });
      if (o.json) printJson(r);
      else {
        print(`${r.clients} clients (${r.upload}, updates prepared ${r.prepare}${r.prepare === 'before' ? `: ${r.prepared}${r.ranOut ? ', ran out' : ''}` : ''}), ${r.seconds} s, updates of ${r.updateBytes} bytes`);
        print(`accepted ${r.accepted} of ${r.submitted}: ${r.acceptedPerSecond} updates/s = ${r.mbPerSecond} MB/s; submit latency p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms`);
        if (Object.keys(r.errors).length) print(`refused or failed: ${JSON.stringify(r.errors)}`);
        print(`raw libp2p stream: ${r.rawStreamMbPerSecond} MB/s; intake / raw = ${r.ratioToRawStream}`);
        print(`CPU per update: miner thread ${r.mainThreadCpuMsPerUpdate} ms (raw reader ${r.rawThreadCpuMsPerUpdate} ms), whole process ${r.processCpuMsPerUpdate} ms (raw ${r.rawProcessCpuMsPerUpdate} ms)`);
        const threads = (t?: Record<string, { user: number; system: number }>) => (t ? Object.entries(t).map(([k, v]) => `${k} ${v.user}+${v.system}`).join(', ') : 'n/a');
        print(`  by thread, ms user+system per update: ${threads(r.threadsCpuMsPerUpdate)} (raw: ${threads(r.rawThreadsCpuMsPerUpdate)})`);
        print(`load average at start: ${r.loadAverage1m}`);
      }
    });
  bench
    .command('train')
    .description('train-step samples per second at several batch sizes, and one local update (E=5, B=10, N=100) in one onnxruntime call and step by step (the reference)')
    .option('--seconds <s>', 'measuring time per batch size', parseNumberFlag('--seconds', 0.1, 600), 1)
    .option('--threads <n>', 'onnxruntime threads', parseIntFlag('--threads', 1, 256), 1)
    .option('--json', 'print JSON', false)
    .action(async (o: { seconds: number; threads: number; json: boolean }) => {
      const { benchTrain } = await import('../../../bench/train.ts');
      const r = await benchTrain({ seconds: o.seconds, threads: o.threads });
      if (o.json) printJson(r);
      else {
        print(`MLP ${r.model.join('-')}, ${r.threads} onnxruntime thread(s)`);
        for (const t of r.throughput) print(`  B=${String(t.batchSize).padEnd(4)} ${String(t.samplesPerSecond).padStart(8)} samples/s  ${t.msPerStep.toFixed(3)} ms/step`);
        print(`  one local update (E=5, B=10, N=100): ${r.localUpdate.ms.toFixed(1)} ms (CPU ${r.localUpdate.cpuMs.toFixed(1)} ms), all steps in one onnxruntime call`);
        print(`  one call per step (the reference): ${r.localUpdateStepwise.ms.toFixed(1)} ms (CPU ${r.localUpdateStepwise.cpuMs.toFixed(1)} ms); CPU ratio ${r.localUpdateStepwise.cpuRatioLoopToStep}`);
      }
    });
  bench
    .command('kem')
    .description('ML-KEM-768 (native, noble) keygen/encaps/decaps and sealing one update of the default model; X25519 for reference')
    .option('--runs <n>', 'runs per measurement (noble uses a third)', parseIntFlag('--runs', 3, 100_000), 30)
    .option('--params <n>', `float32 parameters per update (default: the default MLP, ${DEFAULT_MLP_PARAMS})`, parseIntFlag('--params', 1, 50_000_000), DEFAULT_MLP_PARAMS)
    .option('--testnet', 'also: the testnet (2 miners, 6 clients) to --aggregations with sealing on and off, alternating, in this run', false)
    .option('--aggregations <a>', 'with --testnet: aggregations per run', parseIntFlag('--aggregations', 1, 1000), 10)
    .option('--repeats <n>', 'with --testnet: sealed/clear pairs of runs', parseIntFlag('--repeats', 1, 20), 1)
    .option('--json', 'print the rows as JSON', false)
    .action(async (o: { runs: number; params: number; testnet: boolean; aggregations: number; repeats: number; json: boolean }) => {
      const { benchKem, benchKemTestnet, formatKemTable } = await import('../../../bench/kem.ts');
      const rows = benchKem({ runs: o.runs, params: o.params });
      const testnet = o.testnet
        ? await benchKemTestnet({ aggregations: o.aggregations, repeats: o.repeats, onRun: (r) => process.stderr.write(`  testnet ${r.sealUpdates ? 'sealed' : 'clear '}: ${r.secondsToTarget ?? '-'} s to target, ${r.secondsFromFirstUpload ?? '-'} s from the first upload${r.sealingShareOfCpu === null ? '' : `, sealing ${(r.sealingShareOfCpu * 100).toFixed(2)} % of CPU`}${r.error ? ` (${r.error})` : ''}\n`) })
        : undefined;
      if (o.json) printJson(testnet ? { rows, testnet } : { rows });
      else {
        print(formatKemTable(rows));
        if (testnet) {
          for (const r of testnet.runs) print(`testnet ${r.sealUpdates ? 'sealed' : 'clear '}  ${String(r.secondsToTarget ?? '-').padStart(6)} s to ${testnet.aggregations} aggregations, ${String(r.secondsFromFirstUpload ?? '-').padStart(6)} s from the first upload, ${r.uploaded} updates${r.sealingShareOfCpu === null ? '' : `, sealing ${r.sealingCpuMs!.toFixed(0)} ms = ${(r.sealingShareOfCpu * 100).toFixed(2)} % of the nodes' CPU`}${r.error ? ` (${r.error})` : ''}`);
          print(`sealing cost: ${testnet.cost === null ? '-' : `${(testnet.cost * 100).toFixed(1)} %`} of the time from the first upload to ${testnet.aggregations} aggregations`);
        }
      }
    });
  return bench;
}
