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

export function buildProgram(): Command {
  const program = new Command('bfl-node')
    .description('Asynchronous blockchain-based federated learning at the mobile edge (BFL-MEC): edge miners and mobile clients over libp2p')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .addCommand(keygenCommand())
    .addCommand(chainCommand())
    .addCommand(experimentCommand())
    .addCommand(benchCommand());
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
  if (argv.length === 0) {
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
