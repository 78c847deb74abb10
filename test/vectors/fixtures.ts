/**
 * Fixed inputs of the golden vectors. Changing anything here or in the encoding changes
 * test/vectors/encoding.json; regenerate it only for a deliberate format change
 * (`npx node scripts/update-vectors.ts`) and say so in the commit.
 */
import { sha256 } from '../../src/core/hash.ts';
import type { ChainParams } from '../../src/core/params.ts';
import type { AggregationTx, BlockHeader, CoinbaseTx, GenesisTx, RecordTx, UpdateClaim } from '../../src/core/types.ts';
import { NativeMlDsa } from '../../src/crypto/mldsa.ts';

const seq = (n: number, start: number) => Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);

export const header: BlockHeader = {
  version: 1,
  height: 42,
  prevHash: seq(32, 1),
  merkleRoot: seq(32, 100),
  timestamp: 1_700_000_123_456,
  difficulty: 1_000_000n,
  minerId: 'edge-miner-01',
  nonce: 2 ** 40 + 12345,
};

export const genesisTx: GenesisTx = { type: 'genesis', networkId: 'bfl-vectors', paramsDigest: seq(32, 7) };
export const coinbase: CoinbaseTx = { type: 'coinbase', height: 42, minerId: 'edge-miner-01', amount: 5_000_000n };
export const record: RecordTx = {
  type: 'record',
  clientId: 'phone-0007',
  minerId: 'edge-miner-01',
  updateDigest: seq(32, 50),
  baseModelHash: seq(32, 200),
  sampleCount: 100,
  createdAt: 1_700_000_100_000,
  signature: seq(2420, 3), // shape only: vectors pin bytes, not signature validity
};
export const aggregation: AggregationTx = {
  type: 'aggregation',
  round: 3,
  baseModelHash: seq(32, 9),
  modelHash: sha256(seq(16, 0)),
  model: seq(16, 0),
  entries: [
    { clientId: 'phone-0001', updateDigest: seq(32, 10), high: true, weight: 0.625 },
    { clientId: 'phone-0002', updateDigest: seq(32, 11), high: false, weight: 0 },
  ],
  rewards: [{ id: 'phone-0001', amount: 100_000_000n }],
  stateHash: seq(32, 12),
};
export const claim: UpdateClaim = {
  networkId: 'bfl-vectors',
  clientId: 'phone-0007',
  baseModelHash: seq(32, 200),
  updateDigest: seq(32, 50),
  sampleCount: 100,
  createdAt: 1_700_000_100_000,
};

export function vectorParams(): ChainParams {
  const mldsa = new NativeMlDsa();
  const key = (i: number) => mldsa.keygen(seq(32, i)).publicKey;
  return {
    networkId: 'bfl-vectors',
    genesisTime: 1_700_000_000_000,
    difficulty: 4096n,
    phi: 10,
    blockReward: 1_000_000n,
    baseReward: 100_000_000n,
    maxBlockBytes: 8 << 20,
    maxFutureMs: 120_000,
    members: [
      { id: 'miner-1', role: 'miner', publicKey: key(1) },
      { id: 'client-1', role: 'client', publicKey: key(2) },
    ],
    initialModel: new Uint8Array(new Float32Array([0.5, -0.25, 1, 0]).buffer),
    rules: '{"aggregator":"bfl-mec"}',
  };
}
