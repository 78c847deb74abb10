/**
 * `bfl-node init`: a network config and key files for a local network: M miners and K
 * clients on loopback, consecutive ports, one datadir each.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { initNetwork } from '../../config/local-network.ts';
import { isBflError } from '../../core/errors.ts';
import { pathError } from '../datadir.ts';
import { parseIntFlag, parseNumberFlag } from '../exit.ts';
import { print, printJson } from '../output.ts';

export function initCommand(): Command {
  return new Command('init')
    .description('write a network config and key files for a local network of miners and clients')
    .requiredOption('--dir <dir>', 'where to write network.json, keys/ and data/')
    .option('--miners <m>', 'edge miners', parseIntFlag('--miners', 1, 100), 2)
    .option('--clients <k>', 'mobile clients', parseIntFlag('--clients', 1, 1000), 6)
    .option('--host <ip>', 'address to listen on', '127.0.0.1')
    .option('--base-port <port>', 'first libp2p port (HTTP APIs at +1000)', parseIntFlag('--base-port', 1024, 60000), 40000)
    .option('--network-id <id>', 'network name', 'bfl-local')
    .option('--phi <n>', 'ϕ, the aggregation threshold', parseIntFlag('--phi', 1, 100000))
    .option('--difficulty <d>', 'expected hashes per block', parseNumberFlag('--difficulty', 1, 2 ** 53))
    .option('--docker', 'docker compose layout: bind 0.0.0.0, peers dial /dns4/<id>/tcp/4001, APIs on :8080', false)
    .option('--if-absent', 'do nothing if DIR already holds a network.json (container restarts keep their keys)', false)
    .option('--force', 'overwrite existing key files', false)
    .option('--json', 'print {config, nodes} as JSON', false)
    .action(async (o: { dir: string; miners: number; clients: number; host: string; basePort: number; networkId: string; phi?: number; difficulty?: number; docker: boolean; ifAbsent: boolean; force: boolean; json: boolean }) => {
      if (o.ifAbsent && existsSync(join(o.dir, 'network.json'))) {
        print(`${join(o.dir, 'network.json')} exists; nothing to do`);
        return;
      }
      const chain: Record<string, unknown> = {};
      if (o.phi) chain.phi = o.phi;
      if (o.difficulty) chain.difficulty = Math.round(o.difficulty);
      const r = await initNetwork({ ...o, chain }).catch((e) => {
        throw isBflError(e) ? e : pathError(e, o.dir, '--dir', 'directory');
      });
      if (o.json) printJson({ config: r.config, nodes: r.nodes.map(({ id, role, identity, datadir, api }) => ({ id, role, identity, datadir, api })) });
      else {
        print(`wrote ${r.config} and ${r.nodes.length} key files`);
        for (const n of r.nodes) print(`  npx bfl-node --role ${n.role} --config ${r.config} --identity ${n.identity} --datadir ${n.datadir}`);
      }
    });
}
