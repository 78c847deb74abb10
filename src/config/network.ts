/**
 * The network config file (network.example.json documents every setting). This part reads the
 * network's identity, its members and the consensus settings of the chain; later sections
 * (learning, networking, nodes) are read by the subsystems that own them.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ID_PATTERN, fromHex } from '../core/bytes.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import { type ChainParams, type Member, UNITS_PER_TOKEN } from '../core/params.ts';
import { parseKeyFile } from '../crypto/keyfile.ts';
import { PARAM_SIZES } from '../crypto/mldsa.ts';
import { ConfigReader, type Json } from './validate.ts';

export interface ChainConfig {
  difficulty: bigint;
  phi: number;
  blockReward: bigint;
  baseReward: bigint;
  maxBlockBytes: number;
  maxFutureMs: number;
}

/** Defaults, each with its reason. */
export const defaultChainConfig: ChainConfig = {
  // ~0.5 s of one core at ~2 M hashes/s: blocks come quickly on a laptop testnet, yet mining is real work.
  difficulty: 1_000_000n,
  // The paper's grid is ϕ ∈ {5, 10, 15, 20}; 10 is its middle.
  phi: 10,
  // One token per block to its miner, 100 tokens shared per aggregation (the paper's base = 100).
  blockReward: UNITS_PER_TOKEN,
  baseReward: 100n * UNITS_PER_TOKEN,
  // A global model of the default MLP is 159,010 float32s = 636 KB; 8 MiB leaves room for a CNN.
  maxBlockBytes: 8 * 1024 * 1024,
  // Clocks of edge devices drift; two minutes is Bitcoin's order of magnitude, scaled down.
  maxFutureMs: 120_000,
};

export interface NetworkConfig {
  file: string;
  networkId: string;
  genesisTime: number;
  chain: ChainConfig;
  members: Member[];
  raw: Json;
}

const NETWORK_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export async function loadNetworkConfig(file: string): Promise<NetworkConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new BflError(ErrorCode.BAD_CONFIG, `cannot read network config ${file}: ${(e as Error).message}`);
  }
  let json: Json;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new BflError(ErrorCode.BAD_CONFIG, `network config ${file} is not JSON: ${(e as Error).message}`);
  }
  return parseNetworkConfig(json, file, await readKeyFiles(json, dirname(resolve(file))));
}

/** Public keys of members given as `keyFile` (paths relative to the config file). */
async function readKeyFiles(json: Json, base: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  const members = (json as { members?: { keyFile?: unknown }[] })?.members;
  if (!Array.isArray(members)) return out;
  for (const m of members) {
    if (typeof m?.keyFile !== 'string') continue;
    const path = resolve(base, m.keyFile);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      throw new BflError(ErrorCode.BAD_CONFIG, `members: cannot read key file ${path}: ${(e as Error).message}`);
    }
    out.set(m.keyFile, parseKeyFile(text, path).publicKey);
  }
  return out;
}

export function parseNetworkConfig(json: Json, file = '(inline)', keyFiles = new Map<string, Uint8Array>()): NetworkConfig {
  const root = new ConfigReader(json).obj();
  const networkId = root.at('networkId').str({ pattern: NETWORK_ID });
  const genesisTime = root.at('genesisTime').int({ min: 0 });
  const c = root.at('chain');
  if (c.present) c.only(['difficulty', 'phi', 'blockReward', 'baseReward', 'maxBlockBytes', 'maxFutureMs']);
  const d = defaultChainConfig;
  const chain: ChainConfig = c.present
    ? {
        difficulty: c.at('difficulty').big({ min: 1n, default: d.difficulty }),
        phi: c.at('phi').int({ min: 1, max: 100_000, default: d.phi }),
        blockReward: c.at('blockReward').big({ default: d.blockReward }),
        baseReward: c.at('baseReward').big({ default: d.baseReward }),
        maxBlockBytes: c.at('maxBlockBytes').int({ min: 4096, max: 256 * 1024 * 1024, default: d.maxBlockBytes }),
        maxFutureMs: c.at('maxFutureMs').int({ min: 0, max: 24 * 3600_000, default: d.maxFutureMs }),
      }
    : { ...d };
  const members: Member[] = [];
  const seen = new Set<string>();
  for (const m of root.at('members').list()) {
    m.only(['id', 'role', 'publicKey', 'keyFile', 'identity', 'datadir', 'api', 'listen']);
    const id = m.at('id').str({ pattern: ID_PATTERN });
    if (seen.has(id)) m.at('id').fail('a unique id');
    seen.add(id);
    const role = m.at('role').oneOf(['miner', 'client'] as const);
    let publicKey: Uint8Array;
    if (m.at('publicKey').present) {
      const hex = m.at('publicKey').str({ pattern: /^[0-9a-fA-F]+$/ });
      if (hex.length !== PARAM_SIZES['ML-DSA-44'].publicKey * 2) m.at('publicKey').fail(`${PARAM_SIZES['ML-DSA-44'].publicKey} bytes of hex (an ML-DSA-44 public key)`);
      publicKey = fromHex(hex);
    } else if (m.at('keyFile').present) {
      const kf = m.at('keyFile').str();
      const pk = keyFiles.get(kf);
      if (!pk) m.at('keyFile').fail('a readable key file');
      publicKey = pk!;
    } else {
      m.fail('a member with "publicKey" (hex) or "keyFile"');
    }
    members.push({ id, role, publicKey: publicKey! });
  }
  if (!members.some((m) => m.role === 'miner')) root.at('members').fail('at least one miner');
  return { file, networkId, genesisTime, chain, members, raw: json };
}

export function chainParamsOf(cfg: NetworkConfig, initialModel: Uint8Array): ChainParams {
  return { networkId: cfg.networkId, genesisTime: cfg.genesisTime, ...cfg.chain, members: cfg.members, initialModel };
}
