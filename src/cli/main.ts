/**
 * `bfl-node`: one program, one folder per command under src/cli/. Exit codes in cli/exit.ts.
 */
import { Command, CommanderError, Option } from 'commander';
import { isBflError } from '../core/errors.ts';
import { Exit, UsageError } from './exit.ts';
import { ENV, runDaemon } from './daemon/index.ts';
import { LOG_FORMATS, LOG_LEVELS } from '../util/logger.ts';
import { parseIntFlag } from './exit.ts';
import { ATTACK_HELP } from '../experiments/attacks.ts';

/**
 * The commands, each loaded when asked for: `bfl-node status` or `bfl-node keygen --help` need
 * not load the modules of the experiments, the QKD planner and the chain store (with the compile
 * cache, all of them took 0.3-0.4 s before a command started).
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  keygen: async () => (await import('./keygen/index.ts')).keygenCommand(),
  init: async () => (await import('./init/index.ts')).initCommand(),
  testnet: async () => (await import('./testnet/index.ts')).testnetCommand(),
  chain: async () => (await import('./chain/index.ts')).chainCommand(),
  config: async () => (await import('./config/index.ts')).configCommand(),
  experiment: async () => (await import('./experiment/index.ts')).experimentCommand(),
  bench: async () => (await import('./bench/index.ts')).benchCommand(),
  plan: async () => (await import('./plan/index.ts')).planCommand(),
  status: async () => (await import('./status/index.ts')).statusCommand(),
};

/**
 * The commands an invocation needs: the one its first word names (commander's own parse of the
 * program's options finds that word, past their values: `--datadir status` names none), none for
 * a node (`--role`, or BFL_ROLE with no arguments) or the version, and all for the program's own
 * help, which lists them. Where the program's options do not parse, all (the parse reports it).
 */
export function commandsFor(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const all = Object.keys(COMMANDS);
  let first: string | undefined;
  try {
    const probe = rootProgram().exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} });
    first = probe.parseOptions([...argv]).operands[0];
  } catch {
    // the version stops the parse (it is printed before any command runs); else a bad option
    return argv.some((a) => a === '--version' || a === '-V') ? [] : all;
  }
  if (first !== undefined) return first in COMMANDS ? [first] : []; // a word that is none: the node's action names them all
  if (argv.some((a) => a === '--help' || a === '-h')) return all;
  return argv.length === 0 && env[ENV.role] === undefined ? all : []; // no arguments and no role: the help
}

/** The program with its own options (a node's) and no command. */
function rootProgram(): Command {
  return new Command('bfl-node')
    .description('Asynchronous blockchain-based federated learning at the mobile edge (BFL-MEC): edge miners and mobile clients over libp2p')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    // daemon options belong to the program itself; subcommands (chain verify --datadir) have their own
    .enablePositionalOptions()
    .addOption(new Option('--role <role>', 'run a node: miner or client').env(ENV.role))
    .addOption(new Option('--config <file>', 'network config').env(ENV.config))
    .addOption(new Option('--identity <file>', 'key file of this node').env(ENV.identity))
    .addOption(new Option('--datadir <dir>', 'data directory of this node').env(ENV.datadir))
    .addOption(new Option('--api <host:port>', 'HTTP API address (default: the config\'s member entry)').env(ENV.api))
    .addOption(new Option('--listen <multiaddr>', 'libp2p listen address (default: the config\'s member entry)').env(ENV.listen))
    .addOption(new Option('--mining-workers <n>', 'proof-of-work worker threads of a miner').env(ENV.miningWorkers).argParser(parseIntFlag('--mining-workers', 1, 256)).default(1))
    .addOption(new Option('--attack <attack>', `attack injection, clients only: ${ATTACK_HELP}`).env(ENV.attack))
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).env(ENV.logLevel).default('info'))
    .addOption(new Option('--log-format <format>', 'json (one object a line) or pretty (for a terminal)').choices(LOG_FORMATS).env(ENV.logFormat).default('json'))
    // a word that is no command would otherwise be an excess argument of the node ("too many arguments")
    .allowExcessArguments(true)
    .action(async (flags, cmd: Command) => {
      if (cmd.args.length > 0) throw new UsageError(`unknown command '${cmd.args[0]}' (commands: ${Object.keys(COMMANDS).join(', ')}; a node takes --role)`);
      process.exitCode = await runDaemon(flags);
    });
}

/** The program, with the commands named (default: all of them). */
export async function buildProgram(names: readonly string[] = Object.keys(COMMANDS)): Promise<Command> {
  const commands = await Promise.all(names.map((n) => COMMANDS[n]()));
  const program = rootProgram();
  for (const c of commands) program.addCommand(c);
  // Every command and subcommand reports usage errors as exit 2 instead of exiting itself.
  const override = (c: Command) => {
    c.exitOverride();
    c.commands.forEach(override);
  };
  override(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram(commandsFor(argv));
  if (argv.length === 0 && !process.env.BFL_ROLE) {
    program.outputHelp({ error: true }); // a usage error: help on stderr, stdout stays empty
    return Exit.USAGE;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : Exit.OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return Exit.OK;
      // 'commander.help': a command group without its subcommand (`bfl-node chain`): the usage went to stderr
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
