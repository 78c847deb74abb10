/**
 * Consensus parameters of a network and its genesis block. The genesis block commits to a
 * digest of all of them (members and their keys, difficulty, ϕ, rewards, limits, the initial
 * model), so two nodes with different configs never share a chain.
 */
import { Writer, assertId, utf8 } from './bytes.ts';
import { BLOCK_VERSION, blockHash, txId } from './encoding.ts';
import { ZERO_HASH, sha256 } from './hash.ts';
import { merkleRoot } from './merkle.ts';
import type { Block, Role } from './types.ts';

/** Rewards are integers so that the ledger adds and subtracts exactly through reorgs. */
export const UNITS_PER_TOKEN = 1_000_000n;

export interface Member {
  id: string;
  role: Role;
  publicKey: Uint8Array;
  /** A miner's first ML-KEM-768 encapsulation key (updates are sealed to it; rotations are
   * announced in signed peer records). Optional: networks from before ML-KEM have none. */
  kemPublicKey?: Uint8Array;
}

export interface ChainParams {
  networkId: string;
  genesisTime: number; // ms
  difficulty: bigint; // expected hashes per block
  phi: number; // ϕ: aggregate when this many recorded updates are unaggregated
  blockReward: bigint; // units paid to the miner of each block (coinbase)
  baseReward: bigint; // units shared by the high-contribution clients of each aggregation
  maxBlockBytes: number;
  maxFutureMs: number; // how far a block's timestamp may be ahead of our clock
  members: Member[];
  initialModel: Uint8Array; // float32 LE parameters of the round-0 global model
  /** Canonical JSON of the other consensus rules (aggregator and its options): every miner
   * re-computes aggregations with them, so they are part of the genesis commitment. */
  rules: string;
}

/**
 * Whose updates the chain records and aggregates: clients' (federated learning) or, in split
 * learning, miners' body updates (each miner trains the body on its clients' cut-layer
 * activations; docs/decisions.md, "Split learning"). Read from the committed rules, so every
 * node of a network agrees on it and the genesis commits to it.
 */
export function contributorRole(p: Pick<ChainParams, 'rules'>): Role {
  let role = contributorRoles.get(p.rules);
  if (!role) {
    let mode: unknown;
    try {
      mode = (JSON.parse(p.rules) as { learningMode?: unknown }).learningMode;
    } catch {
      mode = undefined; // rules of tests and old stores need not be JSON: federated
    }
    role = mode === 'split' ? 'miner' : 'client';
    contributorRoles.set(p.rules, role);
  }
  return role;
}
const contributorRoles = new Map<string, Role>();

export function paramsDigest(p: ChainParams): Uint8Array {
  const w = new Writer(4096)
    .str(p.networkId)
    .u64(p.genesisTime)
    .u64(p.difficulty)
    .u32(p.phi)
    .u64(p.blockReward)
    .u64(p.baseReward)
    .u32(p.maxBlockBytes)
    .u32(p.maxFutureMs)
    .fixed(sha256(p.initialModel), 32)
    .bytes(utf8(p.rules));
  const members = [...p.members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  w.u32(members.length);
  // Bit 1 of the role byte says a KEM key follows, so digests of networks without KEM keys are unchanged.
  for (const m of members) {
    w.str(m.id).u8((m.role === 'miner' ? 1 : 0) | (m.kemPublicKey ? 2 : 0)).bytes(m.publicKey);
    if (m.kemPublicKey) w.bytes(m.kemPublicKey);
  }
  return sha256(w.finish());
}

export function createGenesisBlock(p: ChainParams): Block {
  const modelHash = sha256(p.initialModel);
  const txs: Block['txs'] = [
    { type: 'aggregation', round: 0, baseModelHash: ZERO_HASH, modelHash, model: p.initialModel, entries: [], rewards: [], stateHash: ZERO_HASH },
    { type: 'genesis', networkId: p.networkId, paramsDigest: paramsDigest(p) },
  ];
  return {
    header: {
      version: BLOCK_VERSION,
      height: 0,
      prevHash: ZERO_HASH,
      merkleRoot: merkleRoot(txs.map(txId)),
      timestamp: p.genesisTime,
      difficulty: p.difficulty,
      minerId: 'genesis',
      nonce: 0,
    },
    signature: new Uint8Array(0),
    txs,
  };
}

export function genesisHash(p: ChainParams): Uint8Array {
  return blockHash(createGenesisBlock(p).header);
}

/** Admitted identities by id (the paper keeps client public keys on the edge nodes). */
export class Membership {
  private readonly byId = new Map<string, Member>();

  constructor(members: Member[]) {
    for (const m of members) {
      assertId(m.id, 'member id');
      if (this.byId.has(m.id)) throw new RangeError(`duplicate member id ${m.id}`);
      this.byId.set(m.id, m);
    }
  }

  get(id: string): Member | undefined {
    return this.byId.get(id);
  }

  ofRole(id: string, role: Role): Member | undefined {
    const m = this.byId.get(id);
    return m && m.role === role ? m : undefined;
  }

  list(role?: Role): Member[] {
    const all = [...this.byId.values()];
    return role ? all.filter((m) => m.role === role) : all;
  }
}


/** JSON form of the parameters (stored in every datadir so `chain verify` needs nothing else). */
export interface ChainParamsJson {
  networkId: string;
  genesisTime: number;
  difficulty: string;
  phi: number;
  blockReward: string;
  baseReward: string;
  maxBlockBytes: number;
  maxFutureMs: number;
  members: { id: string; role: Role; publicKey: string; kemPublicKey?: string }[];
  initialModel: string; // base64 of the float32 LE bytes
  rules: string;
}

export function paramsToJson(p: ChainParams): ChainParamsJson {
  return {
    networkId: p.networkId,
    genesisTime: p.genesisTime,
    difficulty: p.difficulty.toString(),
    phi: p.phi,
    blockReward: p.blockReward.toString(),
    baseReward: p.baseReward.toString(),
    maxBlockBytes: p.maxBlockBytes,
    maxFutureMs: p.maxFutureMs,
    members: p.members.map((m) => ({ id: m.id, role: m.role, publicKey: Buffer.from(m.publicKey).toString('hex'), ...(m.kemPublicKey ? { kemPublicKey: Buffer.from(m.kemPublicKey).toString('hex') } : {}) })),
    initialModel: Buffer.from(p.initialModel).toString('base64'),
    rules: p.rules,
  };
}

export function paramsFromJson(j: ChainParamsJson): ChainParams {
  return {
    networkId: j.networkId,
    genesisTime: j.genesisTime,
    difficulty: BigInt(j.difficulty),
    phi: j.phi,
    blockReward: BigInt(j.blockReward),
    baseReward: BigInt(j.baseReward),
    maxBlockBytes: j.maxBlockBytes,
    maxFutureMs: j.maxFutureMs,
    members: j.members.map((m) => ({ id: m.id, role: m.role, publicKey: new Uint8Array(Buffer.from(m.publicKey, 'hex')), ...(m.kemPublicKey ? { kemPublicKey: new Uint8Array(Buffer.from(m.kemPublicKey, 'hex')) } : {}) })),
    initialModel: new Uint8Array(Buffer.from(j.initialModel, 'base64')),
    rules: j.rules,
  };
}
