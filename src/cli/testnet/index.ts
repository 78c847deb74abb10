import { Command, Option } from 'commander';
import { Exit, UsageError, parseIntFlag } from '../exit.ts';
import { ATTACK_HELP, parseAttack } from '../../experiments/attacks.ts';
import { print, printJson } from '../output.ts';
import { watchParent } from '../daemon/parent.ts';

export function testnetCommand(): Command {
  return new Command('testnet')
    .description('the embedded default: a whole network of miners and clients on this machine, on the bundled MNIST')
    .option('--miners <m>', 'edge miners', parseIntFlag('--miners', 1, 32), 2)
    .option('--clients <k>', 'mobile clients', parseIntFlag('--clients', 1, 200), 6)
    .option('--aggregations <a>', 'stop when every miner\'s chain holds this many aggregations', parseIntFlag('--aggregations', 1, 100_000), 10)
    .option('--phi <n>', 'ϕ (default: the number of clients; with --mode split the number of miners)', parseIntFlag('--phi', 1, 100_000))
    .addOption(new Option('--mode <mode>', 'learning mode: federated (clients upload updates) or split (clients keep the head and send cut-layer activations; miners aggregate body updates)').choices(['federated', 'split']).default('federated'))
    .option('--attackers <n>', 'how many clients attack (the last ones)', parseIntFlag('--attackers', 0, 200), 0)
    .option('--attack <attack>', `what they do: ${ATTACK_HELP}`, 'sign-flip')
    .option('--dir <dir>', 'keep config, keys, data and logs here (default: a temporary directory, removed after a good run)')
    .option('--keep', 'keep the temporary directory', false)
    .option('--timeout <s>', 'give up after this many seconds', parseIntFlag('--timeout', 10, 86_400), 900)
    .option('--json', 'print the summary as JSON', false)
    .action(async (o: { miners: number; clients: number; aggregations: number; phi?: number; mode: 'federated' | 'split'; attackers: number; attack: string; dir?: string; keep: boolean; timeout: number; json: boolean }) => {
      if (o.attackers > o.clients) throw new UsageError('--attackers cannot exceed --clients');
      if (o.attackers > 0 && o.mode === 'split') throw new UsageError('--attackers needs --mode federated: the attacks change uploaded updates, and split-mode clients upload none');
      try {
        parseAttack(o.attack);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      const tty = process.stderr.isTTY;
      let lastLine = 0;
      // SIGINT/SIGTERM (or our parent gone, see daemon/parent.ts): stop every node, then report.
      // A second signal exits at once (the nodes still stop: their IPC channel closes).
      const abort = new AbortController();
      const onSignal = (why: string) => {
        if (abort.signal.aborted) process.exit(Exit.INTERRUPTED);
        process.stderr.write(`\n${why}: stopping the nodes (again to exit at once)\n`);
        abort.abort(why);
      };
      const onInt = () => onSignal('SIGINT');
      const onTerm = () => onSignal('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
      const watch = watchParent((why) => onSignal(why));
      const { runTestnet } = await import('../../node/testnet.ts');
      const summary = await runTestnet({
        signal: abort.signal,
        miners: o.miners,
        clients: o.clients,
        aggregations: o.aggregations,
        phi: o.phi,
        mode: o.mode,
        attackers: o.attackers,
        attack: o.attack,
        dir: o.dir,
        keep: o.keep,
        timeoutSeconds: o.timeout,
        onStarted: (nodes) => {
          // stderr, like the progress: stdout stays the summary (JSON with --json)
          process.stderr.write(`dashboards (open in a browser while the testnet runs):\n${nodes.map((n) => `  ${n.id.padEnd(10)} ${n.dashboard}`).join('\n')}\n`);
        },
        onProgress: (p) => {
          const line = `[${p.seconds.toFixed(0).padStart(4)} s] height ${p.height}  aggregations ${p.aggregations}/${o.aggregations}  accuracy ${p.accuracy === null ? '-' : p.accuracy.toFixed(4)}  updates ${p.uploaded}  flagged ${p.flagged.length ? p.flagged.join(',') : '-'}`;
          if (tty) process.stderr.write(`\r${line.padEnd(110)}`);
          else if (p.seconds - lastLine >= 5) {
            process.stderr.write(line + '\n');
            lastLine = p.seconds;
          }
        },
      });
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      watch.stop();
      if (tty) process.stderr.write('\n');
      if (o.json) printJson(summary);
      else {
        print(`${summary.reached && summary.converged ? 'done' : 'FAILED'}: ${summary.aggregations} aggregations, height ${summary.height}, ${summary.mode === 'split' ? 'split mode, mean client accuracy' : 'final accuracy'} ${summary.finalAccuracy?.toFixed(4) ?? '-'}${summary.initialAccuracy === null ? '' : ` (initial ${summary.initialAccuracy.toFixed(4)})`}, miners ${summary.converged ? 'converged on one tip' : 'NOT converged'}, ${summary.seconds} s`);
        if (summary.error) print(`error: ${summary.error}`);
        if (summary.initialAccuracy !== null && summary.finalAccuracy !== null && summary.finalAccuracy <= summary.initialAccuracy) {
          print(`warning: the model did not learn (accuracy ${summary.finalAccuracy.toFixed(4)}, the initial model's ${summary.initialAccuracy.toFixed(4)}): check the miners' labels on the dashboards (every update low?) and the clients' data`);
        }
        for (const c of summary.clients) print(`  ${c.id}: uploaded ${c.uploaded}, buffered ${c.buffered}, balance ${c.balance}, held-out accuracy ${c.lastAccuracy?.toFixed(4) ?? '-'}`);
        if (summary.error || o.keep || o.dir) print(`files: ${summary.dir}`);
      }
      process.exitCode = abort.signal.aborted ? Exit.INTERRUPTED : summary.reached && summary.converged && !summary.error ? Exit.OK : Exit.FAILURE;
    });
}
