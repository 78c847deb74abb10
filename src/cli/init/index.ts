/**
 * `bfl-node init`: a network config and key files for a local network: M miners and K
 * clients on loopback, consecutive ports, one datadir each.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { defaultAggregationConfig, defaultChainConfig, defaultLearningConfig, defaultP2PConfig } from '../../config/network.ts';
import { generateIdentity, withPeerKey, writeKeyFile } from '../../crypto/keyfile.ts';
import { pathError } from '../datadir.ts';
import { parseIntFlag, parseNumberFlag } from '../exit.ts';
import { print, printJson } from '../output.ts';

export interface InitOptions {
  dir: string;
  miners: number;
  clients: number;
  host: string;
  basePort: number;
  networkId: string;
  force: boolean;
  /** Docker compose layout: every node binds 0.0.0.0:4001 (libp2p) and :8080 (API); others
   * dial it by its service name (/dns4/<id>/tcp/4001). */
  docker?: boolean;
  /** Ports per node in order (miners first); default: basePort + i for libp2p, + 1000 for the API. */
  ports?: { p2p: number; api: number }[];
  /** Overrides of the config sections (the testnet's faster settings). */
  chain?: Record<string, unknown>;
  learning?: Record<string, unknown>;
  aggregation?: Record<string, unknown>;
  p2p?: Record<string, unknown>;
}

export interface InitResult {
  config: string;
  nodes: { id: string; role: 'miner' | 'client'; identity: string; datadir: string; api: string; listen: string; dial: string; peerId: string }[];
}

export async function initNetwork(o: InitOptions): Promise<InitResult> {
  const dir = resolve(o.dir);
  await mkdir(join(dir, 'keys'), { recursive: true }).catch((e) => {
    throw pathError(e, o.dir, '--dir', 'directory');
  });
  const nodes: InitResult['nodes'] = [];
  const members = [];
  const roles: ['miner' | 'client', number][] = [
    ['miner', o.miners],
    ['client', o.clients],
  ];
  let index = 0;
  for (const [role, count] of roles) {
    for (let i = 1; i <= count; i++) {
      const id = `${role}-${i}`;
      const json = await withPeerKey(generateIdentity(id, role).json);
      const identity = join(dir, 'keys', `${id}.json`);
      await writeKeyFile(identity, json, { force: o.force });
      const ports = o.docker ? { p2p: 4001, api: 8080 } : (o.ports?.[index] ?? { p2p: o.basePort + index, api: o.basePort + index + 1000 });
      index++;
      const host = o.docker ? '0.0.0.0' : o.host;
      const listen = `/ip4/${host}/tcp/${ports.p2p}`;
      const dial = o.docker ? `/dns4/${id}/tcp/${ports.p2p}` : listen;
      const api = `${host}:${ports.api}`;
      members.push({ id, role, keyFile: `keys/${id}.json`, peerId: json.peerId, listen, ...(o.docker ? { dial } : {}), api });
      nodes.push({ id, role, identity, datadir: join(dir, 'data', id), api: `http://${o.docker ? id : host}:${ports.api}`, listen, dial, peerId: json.peerId! });
    }
  }
  const bigints = (o2: object) => JSON.parse(JSON.stringify(o2, (_k, v) => (typeof v === 'bigint' ? Number(v) : v)));
  const config = {
    networkId: o.networkId,
    genesisTime: Date.now() - 1000,
    chain: { ...bigints(defaultChainConfig), ...o.chain },
    aggregation: { ...defaultAggregationConfig, ...o.aggregation },
    learning: { ...defaultLearningConfig, ...o.learning },
    p2p: { ...defaultP2PConfig, ipColocationPenalty: false, ...o.p2p },
    members,
  };
  const file = join(dir, 'network.json');
  await writeFile(file, JSON.stringify(config, null, 2) + '\n');
  return { config: file, nodes };
}

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
      const r = await initNetwork({ ...o, chain });
      if (o.json) printJson({ config: r.config, nodes: r.nodes.map(({ id, role, identity, datadir, api }) => ({ id, role, identity, datadir, api })) });
      else {
        print(`wrote ${r.config} and ${r.nodes.length} key files`);
        for (const n of r.nodes) print(`  npx bfl-node --role ${n.role} --config ${r.config} --identity ${n.identity} --datadir ${n.datadir}`);
      }
    });
}
