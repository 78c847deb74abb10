/**
 * Provisioning a local network (`bfl-node init`, the testnet, the libp2p experiments and the
 * e2e tests): a network config and one key file per node, M miners and K clients on loopback
 * with consecutive ports (or the docker compose layout), one datadir each.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { generateIdentity, withPeerKey, writeKeyFile } from '../crypto/keyfile.ts';
import { defaultAggregationConfig, defaultChainConfig, defaultLearningConfig, defaultP2PConfig } from './network.ts';

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
  await mkdir(join(dir, 'keys'), { recursive: true });
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
