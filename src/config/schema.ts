/**
 * The network config's schema (zod): one definition gives the checks, every error at once with
 * its JSON path, and the JSON Schema that `bfl-node config schema` prints. Every message reads
 * "<path>: expected <what>, got <value>". Keys starting with "//" are comments and ignored.
 * Checks that need more than one field (unique ids, at least one miner, a key per member)
 * live in network.ts beside the code that reads the key files.
 */
import { z } from 'zod';
import { AGGREGATORS } from '../core/aggregation/index.ts';
import { ID_PATTERN } from '../core/bytes.ts';
import { PARAM_SIZES } from '../crypto/mldsa.ts';
import { KEM_SIZES } from '../crypto/mlkem.ts';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A problem with the config: where (a JSON path such as members[0].role) and what. */
export interface ConfigIssue {
  path: string;
  message: string;
}

export const MULTIADDR = /^\/(ip4|ip6|dns4|dns6|dns)\/[^/]+\/tcp\/\d+$/;
export const NETWORK_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const PEER_ID = /^[1-9A-HJ-NP-Za-km-z]{40,60}$/;
const HOST_PORT = /^[^:\s]+:\d{1,5}$/;

const got = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v));
/** Every check of a field reports the same "expected ..." with the value found. */
const expected = (what: string) => ({ error: (iss: { input?: unknown }) => `expected ${what}, got ${got(iss.input)}` });

function num(o: { min?: number; max?: number; integer?: boolean } = {}) {
  const { min, max, integer = false } = o;
  const e = expected(`${integer ? 'an integer' : 'a number'}${min !== undefined ? ` >= ${min}` : ''}${max !== undefined ? ` <= ${max}` : ''}`);
  let s = z.number(e);
  if (integer) s = s.int(e);
  if (min !== undefined) s = s.min(min, e);
  if (max !== undefined) s = s.max(max, e);
  return s;
}
const int = (o: { min?: number; max?: number } = {}) => num({ ...o, integer: true });

/** A non-negative integer that may exceed 2^53: a JSON number or a decimal string, read as a bigint. */
function big(min: bigint) {
  const e = expected(`a whole number >= ${min} (number or decimal string)`);
  return z
    .union([z.number(e).int(e).nonnegative(e), z.string(e).regex(/^\d+$/, e)], e)
    .refine((v) => BigInt(v) >= min && BigInt(v) < 1n << 64n, e)
    .transform((v) => BigInt(v));
}

const str = (pattern?: RegExp) => (pattern ? z.string(expected(`a string matching ${pattern}`)).regex(pattern, expected(`a string matching ${pattern}`)) : z.string(expected('a string')));
const oneOf = <T extends readonly [string, ...string[]]>(choices: T) => z.enum(choices, expected(`one of ${choices.map((c) => JSON.stringify(c)).join(', ')}`));
/**
 * An address ending in a TCP port: the pattern, and the port (its last digits) in min-65535 (else
 * the bind fails later with a raw error). A listen address may say 0 (any free port).
 */
function withPort(pattern: RegExp, what: string, min = 1) {
  const e = expected(`${what} with a port in ${min}-65535`);
  return z
    .string(e)
    .regex(pattern, e)
    .refine((v) => {
      const port = Number(/(\d+)$/.exec(v)?.[1]);
      return port >= min && port <= 65535;
    }, e);
}
const bool = () => z.boolean(expected('true or false'));

/** An object that rejects unknown keys (a typo must not be silently ignored). */
function section<S extends z.ZodRawShape>(shape: S) {
  const known = Object.keys(shape).join(', ');
  return z.strictObject(shape, { error: (iss) => (iss.code === 'unrecognized_keys' ? `unknown setting (known: ${known})` : `expected an object, got ${got(iss.input)}`) });
}

// The section defaults' own types are in network.ts; here each value only has to fit its field.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Defaults = Record<string, any>;
export interface SectionDefaults {
  chain: { difficulty: bigint; phi: number; blockReward: bigint; baseReward: bigint; maxBlockBytes: number; maxFutureMs: number };
  aggregation: Defaults;
  learning: Defaults;
  p2p: Defaults;
  association: Defaults;
  associationPolicies: readonly [string, ...string[]];
}

/** The schema, with the defaults of network.ts (passed in: network.ts imports this module). */
export function networkSchema(d: SectionDefaults) {
  const { aggregation: a, learning: l, p2p: p } = d;
  const chain = section({
    difficulty: big(1n).prefault(Number(d.chain.difficulty)),
    phi: int({ min: 1, max: 100_000 }).default(d.chain.phi),
    blockReward: big(0n).prefault(Number(d.chain.blockReward)),
    baseReward: big(0n).prefault(Number(d.chain.baseReward)),
    maxBlockBytes: int({ min: 4096, max: 256 * 1024 * 1024 }).default(d.chain.maxBlockBytes),
    maxFutureMs: int({ min: 0, max: 24 * 3600_000 }).default(d.chain.maxFutureMs),
  });
  const aggregation = section({
    aggregator: oneOf(AGGREGATORS).default(a.aggregator),
    metric: oneOf(['cosine', 'euclidean'] as const).default(a.metric),
    eps: z.union([z.literal('auto'), num({ min: 0 })], expected('"auto" or a number >= 0')).default(a.eps),
    epsFactor: num({ min: 0.01, max: 100 }).default(a.epsFactor),
    minPts: z.union([z.literal('majority'), int({ min: 1 })], expected('"majority" or an integer >= 1')).default(a.minPts),
    maxNormRatio: num({ min: 1, max: 1000 }).nullable().default(a.maxNormRatio),
    stalenessExponent: num({ min: 0, max: 10 }).default(a.stalenessExponent),
    stalenessDamping: num({ min: 0, max: 10 }).default(a.stalenessDamping),
    fedproxDrop: num({ min: 0, max: 0.99 }).default(a.fedproxDrop),
    krumF: int({ min: 0 }).nullable().default(a.krumF),
    trim: num({ min: 0, max: 0.49 }).default(a.trim),
  });
  const partition = z.discriminatedUnion(
    'kind',
    [
      section({ kind: z.literal('iid') }),
      section({ kind: z.literal('shards'), shardsPerClient: int({ min: 1 }).default(2) }),
      section({ kind: z.literal('dirichlet'), alpha: num({ min: 1e-6 }) }),
    ],
    expected('a partition with kind "iid", "shards" or "dirichlet"'),
  );
  const learning = section({
    dataset: str().default(l.dataset),
    partition: partition.default(() => structuredClone(l.partition)),
    partitionSeed: int({ min: 0 }).default(l.partitionSeed),
    layers: z.array(int({ min: 1, max: 1_000_000 }), expected('a list')).min(2, expected('at least two layer widths (input and classes)')).default(() => [...l.layers]),
    modelSeed: int({ min: 0 }).default(l.modelSeed),
    N: int({ min: 1 }).default(l.N),
    E: int({ min: 1 }).default(l.E),
    B: int({ min: 1 }).default(l.B),
    lr: num({ min: 1e-9, max: 100 }).default(l.lr),
    mu: num({ min: 0 }).default(l.mu),
    rate: num({ min: 1e-6 }).default(l.rate),
    initialSamples: int({ min: 0 }).default(l.initialSamples),
    heldOut: int({ min: 0 }).default(l.heldOut),
    threads: int({ min: 1, max: 256 }).default(l.threads),
    mode: oneOf(['federated', 'split'] as const).default(l.mode),
    split: section({
      cut: int({ min: 1 }).default(l.split.cut),
      samplesPerUpdate: int({ min: 1 }).default(l.split.samplesPerUpdate),
      maxBatch: int({ min: 1, max: 65_536 }).default(l.split.maxBatch),
      replayWindowMs: int({ min: 1000, max: 24 * 3600_000 }).default(l.split.replayWindowMs),
      headSharing: section({
        clients: z.union([z.literal('all'), z.array(str(ID_PATTERN), expected('a list of client ids'))], expected('"all" or a list of client ids')),
        clip: num({ min: 1e-6, max: 1e6 }),
        noise: num({ min: 0, max: 1000 }),
        every: int({ min: 1, max: 1_000_000 }).default(1),
      })
        .nullable()
        .default(l.split.headSharing),
      augment: str().default(l.split.augment),
      cutDropout: num({ min: 0, max: 0.9 }).default(l.split.cutDropout),
    }).prefault({}),
  });
  const p2p = section({
    maxUpdateBytes: int({ min: 1024, max: 256 * 1024 * 1024 }).default(p.maxUpdateBytes),
    requestTimeoutMs: int({ min: 100, max: 600_000 }).default(p.requestTimeoutMs),
    mdns: bool().default(p.mdns),
    ipColocationPenalty: bool().default(p.ipColocationPenalty),
    sealUpdates: bool().default(p.sealUpdates),
    maxConnections: int({ min: 8, max: 100_000 }).default(p.maxConnections),
    maxUnidentifiedConnections: int({ min: 1, max: 100_000 }).default(p.maxUnidentifiedConnections),
    maxConnectionsPerIp: int({ min: 1, max: 100_000 }).default(p.maxConnectionsPerIp),
    helloTimeoutMs: int({ min: 100, max: 600_000 }).default(p.helloTimeoutMs),
    requestsPerSecond: num({ min: 0.01, max: 1_000_000 }).default(p.requestsPerSecond),
    downloadBytesPerSecond: int({ min: 1024 }).default(p.downloadBytesPerSecond),
    clientUpdatesPerMinute: num({ min: 0, max: 1_000_000 }).default(p.clientUpdatesPerMinute),
    clientUpdateBurst: int({ min: 1, max: 1_000_000 }).default(p.clientUpdateBurst),
  });
  const association = section({
    policy: oneOf(d.associationPolicies).default(d.association.policy),
    policyFile: str().nullable().default(d.association.policyFile),
  });
  const kemHex = KEM_SIZES.publicKey * 2;
  const pkHex = PARAM_SIZES['ML-DSA-44'].publicKey * 2;
  const member = section({
    id: str(ID_PATTERN),
    role: oneOf(['miner', 'client'] as const),
    publicKey: z.string(expected('a string of hex')).regex(new RegExp(`^[0-9a-fA-F]{${pkHex}}$`), expected(`${pkHex / 2} bytes of hex (an ML-DSA-44 public key)`)).optional(),
    kemPublicKey: z.string(expected('a string of hex')).regex(new RegExp(`^[0-9a-fA-F]{${kemHex}}$`), expected(`${kemHex / 2} bytes of hex (an ML-KEM-768 encapsulation key)`)).optional(),
    keyFile: str().optional(),
    peerId: str(PEER_ID).optional(),
    listen: withPort(MULTIADDR, `a multiaddr matching ${MULTIADDR}`, 0).optional(),
    dial: withPort(MULTIADDR, `a multiaddr matching ${MULTIADDR}`).optional(),
    api: withPort(HOST_PORT, 'host:port').optional(),
  });
  // prefault: an absent section is parsed from {} so that its fields take their defaults
  return section({
    networkId: str(NETWORK_ID),
    genesisTime: int({ min: 0 }),
    chain: chain.prefault({}),
    aggregation: aggregation.prefault({}),
    learning: learning.prefault({}),
    p2p: p2p.prefault({}),
    association: association.prefault({}),
    members: z.array(member, expected('a list')),
  });
}

/** The config without its "//" comment keys, at any depth. */
export function stripComments(v: Json): Json {
  if (Array.isArray(v)) return v.map(stripComments);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([k]) => !k.startsWith('//')).map(([k, x]) => [k, stripComments(x)]));
  return v;
}

export function pathString(path: readonly PropertyKey[]): string {
  let s = '';
  for (const k of path) s += typeof k === 'number' ? `[${k}]` : s ? `.${String(k)}` : String(k);
  return s;
}

/** zod's issues as ours: one per path (the first), unknown keys one each. */
export function issuesOf(error: z.ZodError): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const seen = new Set<string>();
  const add = (path: string, message: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    out.push({ path, message });
  };
  for (const iss of error.issues) {
    if (iss.code === 'unrecognized_keys') for (const k of iss.keys) add(pathString([...iss.path, k]), iss.message);
    else add(pathString(iss.path), iss.message);
  }
  return out;
}

/** The JSON Schema of network.json (draft 2020-12), comments allowed: what `bfl-node config schema` prints. */
export function toJsonSchema(schema: z.ZodType): Record<string, unknown> {
  const js = z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' }) as Record<string, unknown>;
  const allowComments = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(allowComments);
    if (node === null || typeof node !== 'object') return;
    const o = node as Record<string, unknown>;
    if (o.type === 'object' && o.additionalProperties === false) o.patternProperties = { '^//': {} };
    for (const v of Object.values(o)) allowComments(v);
  };
  allowComments(js);
  return {
    ...js,
    title: 'bfl-node network config',
    description: 'The network config file of bfl-node (network.example.json documents every setting). Keys starting with // are comments. A member needs "publicKey" or "keyFile"; ids are unique; at least one member is a miner.',
  };
}
