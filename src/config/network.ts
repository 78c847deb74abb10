/**
 * The network config file (network.example.json documents every setting). This part reads the
 * network's identity, its members and the consensus settings of the chain; later sections
 * (learning, networking, nodes) are read by the subsystems that own them.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fromHex } from '../core/bytes.ts';
import { BflError, ErrorCode, isBflError } from '../core/errors.ts';
import { type ChainParams, type Member, UNITS_PER_TOKEN } from '../core/params.ts';
import { type AggregatorName, defaultAggregatorOptions, defaultBflMecOptions } from '../core/aggregation/index.ts';
import type { Partition } from '../learn/partition.ts';
import { parseKeyFile } from '../crypto/keyfile.ts';
import { paramCount } from '../learn/model.ts';
import { augmentOrNull, augments, isSquare } from '../learn/augment.ts';
import { type ConfigIssue, type Json, issuesOf, networkSchema, stripComments, toJsonSchema } from './schema.ts';

export type { ConfigIssue, Json };

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
  /** a in σ = weighted mean of (1 + τ_i)^(−a): the global step is shortened by σ (core/aggregation/damping.ts); 0 = off. */
  stalenessDamping: number;
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
  // off by default: on, it changes every network's rule and every experiment's figures (the
  // testnet turns it on: node/testnet.ts; docs/decisions.md, "Stale updates take a shorter step")
  stalenessDamping: 0,
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
  /** federated: clients upload whole-model updates; split: clients keep the head and send
   * cut-layer activations to their miner, miners record body updates (docs/decisions.md, "Split learning"). */
  mode: LearningMode;
  split: SplitConfig;
}

export type LearningMode = 'federated' | 'split';

/** Split learning (the cloud-edge-client paper's Algorithm 1; read only when mode is "split"). */
export interface SplitConfig {
  /** Dense layers on the client (the head); the rest is the body, trained by the miners. */
  cut: number;
  /** A miner signs a body update (its body minus the global body) after training on this many
   * samples, then starts again from the newest global body. */
  samplesPerUpdate: number;
  /** Most samples in one batch a miner accepts (bounds the request size and one step's time). */
  maxBatch: number;
  /** A batch's createdAt may be this much older than the miner's clock (replay window); within
   * it, each client's batches must be strictly newer than its last one. */
  replayWindowMs: number;
  /** Head aggregation with differential privacy (the paper's eq. 4), for the clients who opt in;
   * null: every head stays private. */
  headSharing: HeadSharingConfig | null;
  /** A client's random distortion of each training image as it enters a batch (learn/augment.ts:
   * "none", "shift:K", "rotate:D" or "shift:K,rotate:D"): a regulariser of the private heads,
   * which overfit the client's own few hundred samples (docs/decisions.md, "the sixth look"). */
  augment: string;
  /** Dropout rate p a miner applies to the smashed data of each batch before its body step (the
   * cut gradient it answers goes back through the same mask, so the head trains on the same
   * thinned network); 0: none. */
  cutDropout: number;
}

export interface HeadSharingConfig {
  /** The clients who share their heads ("all", or member ids). */
  clients: 'all' | string[];
  /** Each shared head update is clipped to this L2 norm (bounds one client's influence: the DP sensitivity). */
  clip: number;
  /** Gaussian noise σ per coordinate, as a multiple of `clip` (the Gaussian mechanism's noise multiplier); 0 = none. */
  noise: number;
  /** Share every this many local rounds (rounds k, 2k, ...; the head trains privately in between).
   * Default 1, every round: the behaviour before the option, kept for networks that have it;
   * `experiment split` measured every 5 rounds as accurate (0.9210 vs 0.9215) with a fifth of
   * the shares, so a fifth of the RDP budget (docs/decisions.md). */
  every: number;
}

export const defaultSplitConfig: SplitConfig = {
  // The default MLP 784-200-10 has one cut: the hidden layer on the client, the output layer on the miner.
  cut: 1,
  // N·E of the defaults: one federated client round's worth of training per body update.
  samplesPerUpdate: 500,
  // 256 × 200 floats = 200 KB of activations: far above B = 10, small next to maxUpdateBytes.
  maxBatch: 256,
  // A batch is answered within requestTimeoutMs (10 s); a minute leaves room for clock drift
  // and bounds what a restarted miner (which forgets the last batch per client) can be replayed.
  replayWindowMs: 60_000,
  headSharing: null,
  // The private heads' regularisers: measured in `experiment split` on seeds 1-3, split +2.0-2.2
  // points with FedAvg unchanged under the same recipe (docs/decisions.md, "the sixth look").
  augment: 'shift:1,rotate:10',
  cutDropout: 0.3,
};

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
  mode: 'federated',
  split: defaultSplitConfig,
};

export interface P2PConfig {
  maxUpdateBytes: number;
  requestTimeoutMs: number;
  mdns: boolean;
  /** Gossipsub's IP colocation penalty; off for testnets where every node shares 127.0.0.1. */
  ipColocationPenalty: boolean;
  /** Seal raw updates between our nodes with ML-KEM-768 (client → miner, miner → miner). */
  sealUpdates: boolean;
  /** Connection slots (issue 13, item 1; net/limits.ts). */
  maxConnections: number;
  maxUnidentifiedConnections: number;
  maxConnectionsPerIp: number;
  /** A peer that has not completed the signed hello by then is disconnected. */
  helloTimeoutMs: number;
  /** Per-member budgets of our protocols (issue 13, item 7; net/peer-book.ts); miners get 10 times. */
  requestsPerSecond: number;
  downloadBytesPerSecond: number;
  /** Uploads a miner accepts from one client per minute, sustained (token bucket; 0 = no limit). */
  clientUpdatesPerMinute: number;
  /** Uploads of one client a miner accepts back to back before the per-minute rate applies. */
  clientUpdateBurst: number;
}

export const defaultP2PConfig: P2PConfig = {
  // The default MLP's update is 636 KB of float32; 4 MiB leaves room for bigger models.
  maxUpdateBytes: 4 * 1024 * 1024,
  requestTimeoutMs: 10_000,
  mdns: false,
  ipColocationPenalty: true,
  // On: about 1.5 ms of CPU and 1,141 bytes per 636 KB update (bfl-node bench kem), and it keeps
  // updates secret from a recorder of today's traffic once X25519 falls (docs/decisions.md).
  sealUpdates: true,
  // Connection slots and budgets (net/limits.ts and net/peer-book.ts take their defaults from here:
  // the config layer sits below the network's). A network of a few hundred members; every miner
  // and client holds one connection per miner.
  maxConnections: 256,
  // a quarter for strangers: each holds a slot for at most the hello timeout
  maxUnidentifiedConnections: 64,
  // generous for NAT and for loopback testnets (every node on 127.0.0.1); a flood needs many IPs
  maxConnectionsPerIp: 64,
  // a hello is one round trip and one ML-DSA verification (~1 ms); 5 s survives a loaded machine
  helloTimeoutMs: 5000,
  // an honest client makes ~1 request per protocol per second (ticks of 200 ms, a model per round)
  requestsPerSecond: 20,
  // a client downloads one global model per round (636 KB for the default MLP, every ~5 s);
  // the issue's outsider pulled 48 MB/s
  downloadBytesPerSecond: 4 * 1024 * 1024,
  // A client uploads once per N new samples: every 5 s at the default data rate (20 samples/s,
  // N = 100), every 2 s in the testnet. 60 a minute leaves 5 × room; anything faster is a flood
  // (issue 13: 4 a second). With one vote per client per aggregation (core/votes.ts) a flood buys
  // no reward; the limit keeps it from costing the miner signature checks and 636 KB of disk each.
  clientUpdatesPerMinute: 60,
  // Retries after a lost answer and a client catching up after a pause come back to back.
  clientUpdateBurst: 10,
};

/** The association schedulers' names (src/association/schedulers.ts `SCHEDULERS`; config may
 * not import that layer: test/unit/association-selector.test.ts checks the two agree). */
export const ASSOCIATION_POLICIES = ['nearest', 'greedy', 'decomposition', 'swap', 'd3qn'] as const;
export type AssociationPolicy = (typeof ASSOCIATION_POLICIES)[number];

/** How a client chooses its miner (issue 17; src/node/association-selector.ts). */
export interface AssociationConfig {
  policy: AssociationPolicy;
  /** D3QN policy stem (<stem>.onnx + <stem>.json), relative to the config file; null: the
   * committed policy (4 miners × 10 channels). */
  policyFile: string | null;
}

export const defaultAssociationConfig: AssociationConfig = {
  // the BFL-MEC paper's rule ("the nearest edge node"), by measured round-trip time: needs no
  // load announcements and no policy file
  policy: 'nearest',
  policyFile: null,
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
  association: AssociationConfig;
  members: Member[];
  addresses: Map<string, NodeAddress>;
  raw: Json;
}

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

/**
 * Public keys of members given as `keyFile` (paths relative to the config file); for miners
 * also the first ML-KEM key, the one the genesis commits to (under `kem:<keyFile>`). A key file
 * that cannot be read or parsed maps to its error, so that the check reports it beside every
 * other problem of the config instead of stopping at it.
 */
async function readKeyFiles(json: Json, base: string): Promise<KeyFiles> {
  const out: KeyFiles = new Map();
  const members = (json as { members?: { keyFile?: unknown }[] })?.members;
  if (!Array.isArray(members)) return out;
  for (const m of members) {
    if (typeof m?.keyFile !== 'string' || out.has(m.keyFile)) continue;
    const path = resolve(base, m.keyFile);
    try {
      const identity = parseKeyFile(await readFile(path, 'utf8'), path);
      out.set(m.keyFile, identity.publicKey);
      if (identity.kemKeys?.length) out.set(`kem:${m.keyFile}`, identity.kemKeys[0].publicKey);
    } catch (e) {
      const code = (e as { code?: string }).code;
      const why = isBflError(e) ? e.message : code === 'ENOENT' ? `key file ${path} does not exist (bfl-node keygen writes one; or correct the path)` : `cannot read key file ${path}: ${(e as Error).message}`;
      out.set(m.keyFile, new Error(why));
    }
  }
  return out;
}

/** What loadNetworkConfig read of the members' key files: public keys, or why a file could not be used. */
export type KeyFiles = Map<string, Uint8Array | Error>;

let schema: ReturnType<typeof networkSchema> | undefined;
/** The zod schema of the config, with the defaults above. */
export function configSchema(): ReturnType<typeof networkSchema> {
  return (schema ??= networkSchema({ chain: defaultChainConfig, aggregation: { ...defaultAggregationConfig }, learning: { ...defaultLearningConfig }, p2p: { ...defaultP2PConfig }, association: { ...defaultAssociationConfig }, associationPolicies: ASSOCIATION_POLICIES }));
}

/** The JSON Schema of the config file (`bfl-node config schema`). */
export function configJsonSchema(): Record<string, unknown> {
  return toJsonSchema(configSchema());
}

/**
 * How far ahead of the clock a genesis time may be: a planned launch is fine, a typo (seconds
 * read as ms, a year 2100) is not. A year is longer than any planned launch we know of.
 */
export const MAX_GENESIS_AHEAD_MS = 366 * 24 * 3600_000;
/** Room in a block beside the global model: header, coinbase, the aggregation's entries and rewards. */
export const BLOCK_HEADROOM_BYTES = 4096;

/** Checks the whole config and reports every problem at once, each with its JSON path. */
export function parseNetworkConfig(json: Json, file = '(inline)', keyFiles: KeyFiles = new Map(), now = Date.now()): NetworkConfig {
  const input = stripComments(json);
  const r = configSchema().safeParse(input);
  const issues: ConfigIssue[] = r.success ? [] : issuesOf(r.error);
  const fail = (path: string, expected: string, value: unknown) => issues.push({ path, message: `expected ${expected}, got ${value === undefined ? 'nothing' : JSON.stringify(value)}` });
  // across fields and files, on the raw members (they are checked whatever else is wrong)
  const rawMembers = (input as { members?: unknown })?.members;
  const seen = new Set<unknown>();
  if (Array.isArray(rawMembers)) {
    rawMembers.forEach((m: Record<string, unknown>, i) => {
      if (m === null || typeof m !== 'object') return;
      if (seen.has(m.id)) fail(`members[${i}].id`, 'a unique id', m.id);
      seen.add(m.id);
      if (m.publicKey === undefined && m.keyFile === undefined) fail(`members[${i}]`, 'a member with "publicKey" (hex) or "keyFile"', m);
      if (m.kemPublicKey !== undefined && m.role !== 'miner') fail(`members[${i}].kemPublicKey`, 'no KEM key on a client (only miners receive sealed updates)', m.kemPublicKey);
      if (m.publicKey === undefined && typeof m.keyFile === 'string') {
        const key = keyFiles.get(m.keyFile);
        if (key instanceof Error) issues.push({ path: `members[${i}].keyFile`, message: key.message });
        else if (key === undefined) fail(`members[${i}].keyFile`, 'a readable key file', m.keyFile);
      }
    });
    if (!rawMembers.some((m) => m?.role === 'miner')) fail('members', 'at least one miner', rawMembers.map((m) => m?.role));
  }
  if (r.success) {
    // limits that must hold the model: else every honest update or aggregation block is refused
    const modelBytes = 4 * paramCount({ kind: 'mlp', layers: r.data.learning.layers });
    if (r.data.p2p.maxUpdateBytes < modelBytes) fail('p2p.maxUpdateBytes', `at least the model's ${modelBytes} bytes (learning.layers ${JSON.stringify(r.data.learning.layers)})`, r.data.p2p.maxUpdateBytes);
    if (r.data.chain.maxBlockBytes < modelBytes + BLOCK_HEADROOM_BYTES) fail('chain.maxBlockBytes', `at least the model's ${modelBytes} bytes + ${BLOCK_HEADROOM_BYTES}`, r.data.chain.maxBlockBytes);
    // members need slots that strangers cannot take (issue 13, item 1)
    if (r.data.p2p.maxUnidentifiedConnections >= r.data.p2p.maxConnections) fail('p2p.maxUnidentifiedConnections', `fewer than p2p.maxConnections (${r.data.p2p.maxConnections}), so that members keep reserved slots`, r.data.p2p.maxUnidentifiedConnections);
    const hidden = r.data.learning.layers.length - 2;
    if (r.data.learning.mode === 'split' && r.data.learning.split.cut > hidden) fail('learning.split.cut', `at most ${hidden}, the hidden layers of learning.layers ${JSON.stringify(r.data.learning.layers)} (head and body need a dense layer each)`, r.data.learning.split.cut);
    if (r.data.learning.mode === 'split') {
      const spec = r.data.learning.split.augment;
      const parsed = augmentOrNull(spec);
      const inputs = r.data.learning.layers[0];
      if (!parsed) fail('learning.split.augment', 'none, shift:K (whole pixels, 0-10), rotate:D (degrees, 0-45) or shift:K,rotate:D', spec);
      else if (augments(parsed) && !isSquare(inputs)) fail('learning.split.augment', `"none" (augmentation needs square images, and learning.layers[0] is ${inputs})`, spec);
    }
    const sharing = r.data.learning.split.headSharing;
    if (sharing && sharing.clients !== 'all') {
      const clients = new Set(r.data.members.filter((m) => m.role === 'client').map((m) => m.id));
      sharing.clients.forEach((id, i) => clients.has(id) || fail(`learning.split.headSharing.clients[${i}]`, 'the id of a client in members', id));
    }
    if (r.data.genesisTime > now + MAX_GENESIS_AHEAD_MS) fail('genesisTime', `a time in ms at most a year ahead (now is ${now})`, r.data.genesisTime);
  }
  if (issues.length > 0 || !r.success) {
    const list = issues.map((x) => `${x.path || '(root)'}: ${x.message}`);
    throw new BflError(ErrorCode.BAD_CONFIG, issues.length > 1 ? `${issues.length} problems: ${list.join('; ')}` : list[0], { details: { issues } });
  }
  const c = r.data;
  const members: Member[] = c.members.map((m) => {
    const kem = m.kemPublicKey !== undefined ? fromHex(m.kemPublicKey) : m.role === 'miner' && m.keyFile !== undefined ? (keyFiles.get(`kem:${m.keyFile}`) as Uint8Array | undefined) : undefined;
    // every keyFile read is a key here: one that was not is an issue above
    return { id: m.id, role: m.role, publicKey: m.publicKey !== undefined ? fromHex(m.publicKey) : (keyFiles.get(m.keyFile!) as Uint8Array), ...(kem ? { kemPublicKey: kem } : {}) };
  });
  const addresses = new Map<string, NodeAddress>(c.members.map((m) => [m.id, { id: m.id, peerId: m.peerId, listen: m.listen, dial: m.dial, api: m.api }]));
  const { partition, ...learning } = c.learning;
  return {
    file,
    networkId: c.networkId,
    genesisTime: c.genesisTime,
    chain: c.chain,
    aggregation: c.aggregation,
    learning: { ...learning, partition: partition as Partition },
    p2p: c.p2p,
    // the schema checked the policy against ASSOCIATION_POLICIES
    association: { policy: c.association.policy as AssociationPolicy, policyFile: c.association.policyFile === null ? null : resolve(dirname(resolve(file)), c.association.policyFile) },
    members,
    addresses,
    raw: json,
  };
}

/**
 * Canonical JSON (sorted keys) of the aggregation rules: the genesis commits to these bytes. In
 * split mode the learning mode and cut join them (whose updates are recorded is a block rule:
 * core/params.ts contributorRole); federated networks keep the bytes, and the genesis, they had.
 * So does stalenessDamping, only when it is on.
 */
export function rulesOf(a: AggregationConfig, learning?: Pick<LearningConfig, 'mode' | 'split'>): string {
  const split = learning?.mode === 'split' ? { learningMode: 'split', splitCut: learning.split.cut } : {};
  // staleness damping joins the bytes only when on: networks made before it keep their genesis
  const { stalenessDamping, ...rest } = a;
  const damping = stalenessDamping === 0 ? {} : { stalenessDamping };
  const sorted = Object.fromEntries(Object.entries({ ...rest, ...damping, ...split }).sort(([x], [y]) => (x < y ? -1 : 1)));
  return JSON.stringify(sorted);
}

/** The aggregation settings a genesis committed to (rulesOf's bytes, read back): a key rulesOf
 * leaves out when off is off. The split keys stay (an aggregator ignores them). */
export function aggregationConfigOfRules(rules: string): AggregationConfig {
  return { stalenessDamping: 0, ...(JSON.parse(rules) as Partial<AggregationConfig>) } as AggregationConfig;
}

export function chainParamsOf(cfg: NetworkConfig, initialModel: Uint8Array): ChainParams {
  return { networkId: cfg.networkId, genesisTime: cfg.genesisTime, ...cfg.chain, members: cfg.members, initialModel, rules: rulesOf(cfg.aggregation, cfg.learning) };
}

/** Does this client share its head (split learning, eq. 4)? */
export function sharesHead(cfg: Pick<NetworkConfig, 'learning'>, clientId: string): boolean {
  const s = cfg.learning.split.headSharing;
  return cfg.learning.mode === 'split' && s !== null && (s.clients === 'all' || s.clients.includes(clientId));
}

/** Whose updates this network records: clients' (federated) or miners' body updates (split). */
export function contributorRoleOf(cfg: Pick<NetworkConfig, 'learning'>): 'client' | 'miner' {
  // `?.`: configs assembled in code (tests' narrow stubs) may carry no learning section: federated
  return cfg.learning?.mode === 'split' ? 'miner' : 'client';
}
