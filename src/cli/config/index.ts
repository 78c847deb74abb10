/** `bfl-node config schema|check`: the network config's JSON Schema, and a check of a file that reports every problem at once. */
import { Command } from 'commander';
import { configJsonSchema, loadNetworkConfig } from '../../config/network.ts';
import { print, printJson } from '../output.ts';

export function configCommand(): Command {
  const config = new Command('config').description('the network config file: its JSON Schema, and a check of a file');
  config
    .command('schema')
    .description('print the JSON Schema (draft 2020-12) of the network config (for editors and CI: e.g. "$schema" in network.json)')
    .action(() => printJson(configJsonSchema()));
  config
    .command('check')
    .description('load a network config with its key files and report every problem at once, each with its JSON path (exit 1 if any)')
    .requiredOption('--config <file>', 'network config')
    .option('--json', 'print {networkId, members} as JSON', false)
    .action(async (o: { config: string; json: boolean }) => {
      const cfg = await loadNetworkConfig(o.config);
      const summary = { networkId: cfg.networkId, members: cfg.members.map((m) => ({ id: m.id, role: m.role })) };
      if (o.json) printJson(summary);
      else print(`${o.config}: network ${cfg.networkId}, ${cfg.members.filter((m) => m.role === 'miner').length} miners and ${cfg.members.filter((m) => m.role === 'client').length} clients: valid`);
    });
  return config;
}
