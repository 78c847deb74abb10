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
    expect(commandsFor([])).toEqual(all);
    expect(commandsFor(['--help'])).toEqual(all);
    expect(commandsFor(['-h'])).toEqual(all);
    expect(commandsFor(['--version'])).toEqual([]);
    expect(commandsFor(['--role', 'miner', '--config', 'n.json', '--datadir', 'd'])).toEqual([]);
    expect(commandsFor(['status', '--api', '127.0.0.1:8080'])).toEqual(['status']);
    expect(commandsFor(['experiment', 'attack', '--help'])).toEqual(['experiment']);
    // a flag's value that is a command word loads that command too, which changes nothing
    expect(commandsFor(['chain', 'verify', '--datadir', 'status'])).toEqual(['chain', 'status']);
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
