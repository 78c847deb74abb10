/** Small test networks: real ML-DSA keys, real blocks mined at a low difficulty. */
import { randomBytes } from 'node:crypto';
import { buildBlockTemplate, signBlock } from '../../src/core/block-builder.ts';
import { claimOfRecord, encodeUpdateClaim, txId } from '../../src/core/encoding.ts';
import { merkleRoot } from '../../src/core/merkle.ts';
import { SigningContext } from '../../src/core/contexts.ts';
import { sha256 } from '../../src/core/hash.ts';
import type { ChainParams } from '../../src/core/params.ts';
import { mineHeaderSync } from '../../src/core/pow.ts';
import type { AggregationTx, Block, RecordTx } from '../../src/core/types.ts';
import { type ChainState, type PendingRecord, pendingOf, sortedPending } from '../../src/core/validation.ts';
import { generateIdentity, type Identity } from '../../src/crypto/keyfile.ts';

export interface TestNetwork {
  params: ChainParams;
  miners: Identity[];
  clients: Identity[];
}

export function makeNetwork(opts: { miners?: number; clients?: number; phi?: number; difficulty?: bigint; modelFloats?: number; now?: number } = {}): TestNetwork {
  const miners = Array.from({ length: opts.miners ?? 2 }, (_, i) => generateIdentity(`miner-${i + 1}`, 'miner').identity);
  const clients = Array.from({ length: opts.clients ?? 3 }, (_, i) => generateIdentity(`client-${i + 1}`, 'client').identity);
  const model = new Float32Array(opts.modelFloats ?? 8).map((_, i) => i / 10);
  const params: ChainParams = {
    networkId: 'test-net',
    genesisTime: opts.now ?? 1_700_000_000_000,
    difficulty: opts.difficulty ?? 16n,
    phi: opts.phi ?? 3,
    blockReward: 10n,
    baseReward: 100_000_000n,
    maxBlockBytes: 1 << 20,
    maxFutureMs: 120_000,
    members: [...miners, ...clients].map((m) => ({ id: m.id, role: m.role, publicKey: m.publicKey })),
    initialModel: new Uint8Array(model.buffer),
    rules: '{"aggregator":"test"}',
  };
  return { params, miners, clients };
}

export function signedRecord(net: TestNetwork, client: Identity, minerId: string, baseModelHash: Uint8Array, opts: { digest?: Uint8Array; createdAt?: number } = {}): RecordTx {
  const r = {
    clientId: client.id,
    minerId,
    updateDigest: opts.digest ?? sha256(randomBytes(64)),
    baseModelHash,
    sampleCount: 100,
    createdAt: opts.createdAt ?? net.params.genesisTime + 1000,
  };
  const signature = client.key.sign(encodeUpdateClaim(claimOfRecord(net.params.networkId, r)), SigningContext.update);
  return { type: 'record', ...r, signature };
}

/** A structurally valid aggregation of `pending` (equal weights; the maths comes from the scoring module). */
export function simpleAggregation(net: TestNetwork, parent: ChainState, pending: PendingRecord[]): AggregationTx {
  const entries = sortedPending(pending).map((p) => ({ clientId: p.clientId, updateDigest: p.updateDigest, high: true, weight: 1 / pending.length }));
  const model = new Uint8Array(net.params.initialModel.length).map((_, i) => (i * 7 + parent.rounds) & 0xff);
  const ids = [...new Set(pending.map((p) => p.clientId))].sort();
  return {
    type: 'aggregation',
    round: parent.rounds,
    baseModelHash: parent.modelHash,
    modelHash: sha256(model),
    model,
    entries,
    rewards: ids.map((id) => ({ id, amount: net.params.baseReward / BigInt(ids.length) })),
    stateHash: sha256(new Uint8Array(0)),
  };
}

export function mineBlock(net: TestNetwork, parent: ChainState, miner: Identity, opts: { records?: RecordTx[]; aggregation?: AggregationTx; timestamp?: number } = {}): Block {
  return forgeBlock(net, parent, miner, opts);
}

/** Pending records after adding `records` to `parent`, and an aggregation if ϕ is reached. */
export function nextAggregation(net: TestNetwork, parent: ChainState, records: RecordTx[]): AggregationTx | undefined {
  const pending = [...parent.pending, ...records.map(pendingOf)];
  return pending.length >= net.params.phi ? simpleAggregation(net, parent, pending) : undefined;
}

/**
 * Build, mine and sign a block with arbitrary contents: the way to produce a block that breaks
 * exactly one rule while passing every check before it (proof of work, signature).
 */
export function forgeBlock(
  net: TestNetwork,
  parent: ChainState,
  miner: Identity,
  opts: { txs?: Block['txs']; header?: Partial<Block['header']>; records?: RecordTx[]; aggregation?: AggregationTx; signer?: Identity; timestamp?: number } = {},
): Block {
  const base = buildBlockTemplate({
    parent,
    params: net.params,
    minerId: miner.id,
    timestamp: opts.timestamp ?? parent.timestamp + 1000,
    records: opts.records ?? [],
    aggregation: opts.aggregation,
  });
  const txs = opts.txs ?? base.txs;
  const header = { ...base.header, merkleRoot: merkleRoot(txs.map(txId)), ...opts.header };
  const solved = mineHeaderSync(header)!;
  return signBlock({ header: solved, signature: new Uint8Array(0), txs }, net.params.networkId, (opts.signer ?? miner).key);
}
