/**
 * `bfl-node`: one program, one folder per command under src/cli/. Exit codes in cli/exit.ts.
 */
import { Command, CommanderError } from 'commander';
import { isBflError } from '../core/errors.ts';
import { benchCommand } from './bench/index.ts';
import { chainCommand } from './chain/index.ts';
import { Exit, UsageError } from './exit.ts';
import { experimentCommand } from './experiment/index.ts';
import { keygenCommand } from './keygen/index.ts';
import { initCommand } from './init/index.ts';
import { planCommand } from './plan/index.ts';
import { testnetCommand } from './testnet/index.ts';
import { runDaemon } from './daemon/index.ts';
import { parseIntFlag } from './exit.ts';
import { ATTACK_HELP } from '../experiments/attacks.ts';

export function buildProgram(): Command {
  const program = new Command('bfl-node')
    .description('Asynchronous blockchain-based federated learning at the mobile edge (BFL-MEC): edge miners and mobile clients over libp2p')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    // daemon options belong to the program itself; subcommands (chain verify --datadir) have their own
    .enablePositionalOptions()
    .option('--role <role>', 'run a node: miner or client (env BFL_ROLE)')
    .option('--config <file>', 'network config (env BFL_CONFIG)')
    .option('--identity <file>', 'key file of this node (env BFL_IDENTITY)')
    .option('--datadir <dir>', 'data directory of this node (env BFL_DATADIR)')
    .option('--api <host:port>', 'HTTP API address (env BFL_API; default: the config\'s member entry)')
    .option('--listen <multiaddr>', 'libp2p listen address (env BFL_LISTEN; default: the config\'s member entry)')
    .option('--mining-workers <n>', 'proof-of-work worker threads of a miner', parseIntFlag('--mining-workers', 1, 256), 1)
    .option('--attack <attack>', `attack injection, clients only (env BFL_ATTACK): ${ATTACK_HELP}`)
    .action(async (flags) => {
      process.exitCode = await runDaemon(flags);
    })
    .addCommand(keygenCommand())
    .addCommand(initCommand())
    .addCommand(testnetCommand())
    .addCommand(chainCommand())
    .addCommand(experimentCommand())
    .addCommand(benchCommand())
    .addCommand(planCommand());
  // Every command and subcommand reports usage errors as exit 2 instead of exiting itself.
  const override = (c: Command) => {
    c.exitOverride();
    c.commands.forEach(override);
  };
  override(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  if (argv.length === 0 && !process.env.BFL_ROLE) {
    program.outputHelp();
    return Exit.USAGE;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : Exit.OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return Exit.OK;
      return Exit.USAGE; // commander already printed the message
    }
    if (e instanceof UsageError) {
      process.stderr.write(`error: ${e.message}\n`);
      return Exit.USAGE;
    }
    if (isBflError(e)) {
      process.stderr.write(`error: ${e.message} (${e.code})\n`);
      return Exit.FAILURE;
    }
    process.stderr.write(`error: ${(e as Error).stack ?? String(e)}\n`);
    return Exit.FAILURE;
  }
}
