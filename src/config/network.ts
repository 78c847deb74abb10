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
import { AGGREGATORS, type AggregatorName, defaultAggregatorOptions, defaultBflMecOptions } from '../core/aggregation/index.ts';
import type { Partition } from '../learn/partition.ts';
import { parseKeyFile } from '../crypto/keyfile.ts';
import { PARAM_SIZES } from '../crypto/mldsa.ts';
import { KEM_SIZES } from '../crypto/mlkem.ts';
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

/** Consensus rules of aggregation: committed in the genesis (ChainParams.rules). */
export interface AggregationConfig {
  aggregator: AggregatorName;
  metric: 'cosine' | 'euclidean';
  eps: number | 'auto';
  epsFactor: number;
  minPts: number | 'majority';
  maxNormRatio: number | null;
  stalenessExponent: number;
  fedproxDrop: number;
  krumF: number | null;
  trim: number;
}

/** The aggregators' own defaults (core/aggregation, where each is justified), in config form. */
export const defaultAggregationConfig: AggregationConfig = {
  aggregator: 'bfl-mec',
  metric: defaultBflMecOptions.metric,
  eps: defaultBflMecOptions.eps,
  epsFactor: defaultBflMecOptions.epsFactor,
  minPts: defaultBflMecOptions.minPts,
  maxNormRatio: defaultBflMecOptions.maxNormRatio,
  stalenessExponent: defaultBflMecOptions.stalenessExponent,
  fedproxDrop: defaultAggregatorOptions.fedproxDrop,
  krumF: null, // Multi-Krum's f: ⌊(n − 3) / 2⌋ of each aggregation's n
  trim: defaultAggregatorOptions.trim,
};

export interface LearningConfig {
  dataset: string;
  partition: Partition;
  partitionSeed: number;
  layers: number[];
  modelSeed: number;
  N: number;
  E: number;
  B: number;
  lr: number;
  mu: number;
  rate: number; // samples per second arriving at each client
  initialSamples: number;
  heldOut: number; // samples of each client's partition kept out of training, to evaluate on
  threads: number;
}

export const defaultLearningConfig: LearningConfig = {
  dataset: 'mnist',
  partition: { kind: 'iid' },
  partitionSeed: 1,
  layers: [784, 200, 10],
  modelSeed: 1,
  // The paper's defaults: N = 100 new samples trigger a local update of E = 5 epochs, B = 10, η = 0.01.
  N: 100,
  E: 5,
  B: 10,
  lr: 0.01,
  mu: 0,
  // 20 samples/s: an update every ~5 s per client.
  rate: 20,
  initialSamples: 0,
  heldOut: 100,
  threads: 1,
};

export interface P2PConfig {
  maxUpdateBytes: number;
  requestTimeoutMs: number;
  mdns: boolean;
  /** Gossipsub's IP colocation penalty; off for testnets where every node shares 127.0.0.1. */
  ipColocationPenalty: boolean;
  /** Seal raw updates between our nodes with ML-KEM-768 (client → miner, miner → miner). */
  sealUpdates: boolean;
}

export const defaultP2PConfig: P2PConfig = {
  // The default MLP's update is 636 KB of float32; 4 MiB leaves room for bigger models.
  maxUpdateBytes: 4 * 1024 * 1024,
  requestTimeoutMs: 10_000,
  mdns: false,
  ipColocationPenalty: true,
  // On: about 1 ms of CPU and 1,141 bytes per 636 KB update (bfl-node bench kem), and it keeps
  // updates secret from a recorder of today's traffic once X25519 falls (docs/decisions.md).
  sealUpdates: true,
};

/** Where a node listens; init writes one per member. */
export interface NodeAddress {
  id: string;
  peerId?: string;
  listen?: string; // multiaddr to bind, e.g. /ip4/127.0.0.1/tcp/40001
  dial?: string; // multiaddr others dial (default: listen), e.g. /dns4/miner-1/tcp/4001 in docker
  api?: string; // host:port of the HTTP API
}

export interface NetworkConfig {
  file: string;
  networkId: string;
  genesisTime: number;
  chain: ChainConfig;
  aggregation: AggregationConfig;
  learning: LearningConfig;
  p2p: P2PConfig;
  members: Member[];
  addresses: Map<string, NodeAddress>;
  raw: Json;
}

const MULTIADDR = /^\/(ip4|ip6|dns4|dns6|dns)\/[^/]+\/tcp\/\d+$/;
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

/** Public keys of members given as `keyFile` (paths relative to the config file); for miners
 * also the first ML-KEM key, the one the genesis commits to (under `kem:<keyFile>`). */
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
    const identity = parseKeyFile(text, path);
    out.set(m.keyFile, identity.publicKey);
    if (identity.kemKeys?.length) out.set(`kem:${m.keyFile}`, identity.kemKeys[0].publicKey);
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
  root.only(['networkId', 'genesisTime', 'chain', 'aggregation', 'learning', 'p2p', 'members']);
  const members: Member[] = [];
  const addresses = new Map<string, NodeAddress>();
  const seen = new Set<string>();
  for (const m of root.at('members').list()) {
    m.only(['id', 'role', 'publicKey', 'kemPublicKey', 'keyFile', 'peerId', 'listen', 'dial', 'api']);
    const id = m.at('id').str({ pattern: ID_PATTERN });
    addresses.set(id, {
      id,
      peerId: m.at('peerId').present ? m.at('peerId').str({ pattern: /^[1-9A-HJ-NP-Za-km-z]{40,60}$/ }) : undefined,
      listen: m.at('listen').present ? m.at('listen').str({ pattern: MULTIADDR }) : undefined,
      dial: m.at('dial').present ? m.at('dial').str({ pattern: MULTIADDR }) : undefined,
      api: m.at('api').present ? m.at('api').str({ pattern: /^[^:\s]+:\d{1,5}$/ }) : undefined,
    });
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
    let kemPublicKey: Uint8Array | undefined;
    if (m.at('kemPublicKey').present) {
      if (role !== 'miner') m.at('kemPublicKey').fail('absent: only miners receive sealed updates');
      const hex = m.at('kemPublicKey').str({ pattern: /^[0-9a-fA-F]+$/ });
      if (hex.length !== KEM_SIZES.publicKey * 2) m.at('kemPublicKey').fail(`${KEM_SIZES.publicKey} bytes of hex (an ML-KEM-768 encapsulation key)`);
      kemPublicKey = fromHex(hex);
    } else if (role === 'miner' && m.at('keyFile').present) {
      kemPublicKey = keyFiles.get(`kem:${m.at('keyFile').str()}`);
    }
    members.push({ id, role, publicKey: publicKey!, ...(kemPublicKey ? { kemPublicKey } : {}) });
  }
  if (!members.some((m) => m.role === 'miner')) root.at('members').fail('at least one miner');
  return { file, networkId, genesisTime, chain, aggregation: parseAggregation(root.at('aggregation')), learning: parseLearning(root.at('learning')), p2p: parseP2P(root.at('p2p')), members, addresses, raw: json };
}

function parseAggregation(a: ConfigReader): AggregationConfig {
  const d = defaultAggregationConfig;
  if (!a.present) return { ...d };
  a.only(Object.keys(d));
  const mp = a.at('minPts');
  const minPts: number | 'majority' = !mp.present || isMajority(a) ? 'majority' : mp.int({ min: 1 });
  return {
    aggregator: a.at('aggregator').oneOf(AGGREGATORS, d.aggregator),
    metric: a.at('metric').oneOf(['cosine', 'euclidean'] as const, d.metric),
    eps: !a.at('eps').present ? d.eps : isString(a.at('eps')) ? a.at('eps').oneOf(['auto'] as const) : a.at('eps').num({ min: 0 }),
    epsFactor: a.at('epsFactor').num({ min: 0.01, max: 100, default: d.epsFactor }),
    minPts,
    maxNormRatio: !a.at('maxNormRatio').present ? d.maxNormRatio : a.at('maxNormRatio').given ? a.at('maxNormRatio').num({ min: 1, max: 1000 }) : null,
    stalenessExponent: a.at('stalenessExponent').num({ min: 0, max: 10, default: d.stalenessExponent }),
    fedproxDrop: a.at('fedproxDrop').num({ min: 0, max: 0.99, default: d.fedproxDrop }),
    krumF: a.at('krumF').given ? a.at('krumF').int({ min: 0 }) : d.krumF,
    trim: a.at('trim').num({ min: 0, max: 0.49, default: d.trim }),
  };
}

function isString(r: ConfigReader): boolean {
  try {
    r.str();
    return true;
  } catch {
    return false;
  }
}

function isMajority(a: ConfigReader): boolean {
  try {
    return a.at('minPts').str() === 'majority';
  } catch {
    return false;
  }
}

function parseLearning(l: ConfigReader): LearningConfig {
  const d = defaultLearningConfig;
  if (!l.present) return { ...d, partition: { ...d.partition } };
  l.only(Object.keys(d));
  let partition: Partition = d.partition;
  const p = l.at('partition');
  if (p.present) {
    p.only(['kind', 'alpha', 'shardsPerClient']);
    const kind = p.at('kind').oneOf(['iid', 'shards', 'dirichlet'] as const);
    partition = kind === 'iid' ? { kind } : kind === 'shards' ? { kind, shardsPerClient: p.at('shardsPerClient').int({ min: 1, default: 2 }) } : { kind, alpha: p.at('alpha').num({ min: 1e-6 }) };
  }
  const layers = l.at('layers').present ? l.at('layers').list().map((x) => x.int({ min: 1, max: 1_000_000 })) : d.layers;
  if (layers.length < 2) l.at('layers').fail('at least two layer widths (input and classes)');
  return {
    dataset: l.at('dataset').str({ default: d.dataset }),
    partition,
    partitionSeed: l.at('partitionSeed').int({ min: 0, default: d.partitionSeed }),
    layers,
    modelSeed: l.at('modelSeed').int({ min: 0, default: d.modelSeed }),
    N: l.at('N').int({ min: 1, default: d.N }),
    E: l.at('E').int({ min: 1, default: d.E }),
    B: l.at('B').int({ min: 1, default: d.B }),
    lr: l.at('lr').num({ min: 1e-9, max: 100, default: d.lr }),
    mu: l.at('mu').num({ min: 0, default: d.mu }),
    rate: l.at('rate').num({ min: 1e-6, default: d.rate }),
    initialSamples: l.at('initialSamples').int({ min: 0, default: d.initialSamples }),
    heldOut: l.at('heldOut').int({ min: 0, default: d.heldOut }),
    threads: l.at('threads').int({ min: 1, max: 256, default: d.threads }),
  };
}

function parseP2P(p: ConfigReader): P2PConfig {
  const d = defaultP2PConfig;
  if (!p.present) return { ...d };
  p.only(Object.keys(d));
  return {
    maxUpdateBytes: p.at('maxUpdateBytes').int({ min: 1024, max: 256 * 1024 * 1024, default: d.maxUpdateBytes }),
    requestTimeoutMs: p.at('requestTimeoutMs').int({ min: 100, max: 600_000, default: d.requestTimeoutMs }),
    mdns: p.at('mdns').bool(d.mdns),
    ipColocationPenalty: p.at('ipColocationPenalty').bool(d.ipColocationPenalty),
    sealUpdates: p.at('sealUpdates').bool(d.sealUpdates),
  };
}

/** Canonical JSON (sorted keys) of the aggregation rules: the genesis commits to these bytes. */
export function rulesOf(a: AggregationConfig): string {
  const sorted = Object.fromEntries(Object.entries(a).sort(([x], [y]) => (x < y ? -1 : 1)));
  return JSON.stringify(sorted);
}

export function chainParamsOf(cfg: NetworkConfig, initialModel: Uint8Array): ChainParams {
  return { networkId: cfg.networkId, genesisTime: cfg.genesisTime, ...cfg.chain, members: cfg.members, initialModel, rules: rulesOf(cfg.aggregation) };
}
