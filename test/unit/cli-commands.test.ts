/**
 * The CLI loads the command it is asked for, not all nine (src/cli/main.ts): each command built
 * alone has the same options, help and subcommands as in the whole program, a node loads none,
 * and the program's own help all of them.
 */
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram, commandsFor } from '../../src/cli/main.ts';

/** A command's help, and its subcommands' (recursively). */
const helpTree = (c: Command): string[] => [c.helpInformation(), ...c.commands.flatMap(helpTree)];

describe('commands loaded on demand', () => {
  it('an invocation loads the commands it names; a node and the version none; the program help all', () => {
    const all = ['keygen', 'init', 'testnet', 'chain', 'config', 'experiment', 'bench', 'plan', 'status'];
    const none = {};
    expect(commandsFor([], none)).toEqual(all);
    expect(commandsFor(['--help'], none)).toEqual(all);
    expect(commandsFor(['-h'], none)).toEqual(all);
    expect(commandsFor(['--version'], none)).toEqual([]);
    expect(commandsFor(['--role', 'miner', '--config', 'n.json', '--datadir', 'd'], none)).toEqual([]);
    expect(commandsFor([], { BFL_ROLE: 'miner' })).toEqual([]); // a node set up by its environment
    expect(commandsFor(['status', '--api', '127.0.0.1:8080'], none)).toEqual(['status']);
    expect(commandsFor(['experiment', 'attack', '--help'], none)).toEqual(['experiment']);
    expect(commandsFor(['chain', 'verify', '--datadir', 'status'], none)).toEqual(['chain']);
    // the program's options before the command word, with their values
    expect(commandsFor(['--log-format', 'pretty', 'status'], none)).toEqual(['status']);
    // a command word that is a value, or after the program's help, is no command: the help lists all
    expect(commandsFor(['--role', 'miner', '--datadir', 'status', '--help'], none)).toEqual(all);
    expect(commandsFor(['--help', 'status'], none)).toEqual(all);
    // a word that is no command: none (the node's action names them all in its error)
    expect(commandsFor(['foo'], none)).toEqual([]);
  });

  it('each command built alone is the command of the whole program: same help, options and subcommands', async () => {
    const whole = await buildProgram();
    expect(whole.commands.length).toBe(9);
    for (const c of whole.commands) {
      const alone = await buildProgram(commandsFor([c.name(), '--help']));
      expect(alone.commands.map((x) => x.name())).toEqual([c.name()]);
      expect(helpTree(alone.commands[0])).toEqual(helpTree(c));
    }
    // the root's options are the same with no command loaded (a node's invocation)
    const node = await buildProgram([]);
    expect(node.options.map((o) => o.flags)).toEqual(whole.options.map((o) => o.flags));
  });
});
