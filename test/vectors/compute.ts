import { toHex } from '../../src/core/bytes.ts';
import { blockHash, encodeHeader, encodeTx, encodeUpdateClaim, txId } from '../../src/core/encoding.ts';
import { merkleRoot } from '../../src/core/merkle.ts';
import { createGenesisBlock, genesisHash, paramsDigest } from '../../src/core/params.ts';
import { encodeBlock } from '../../src/core/encoding.ts';
import { sha256 } from '../../src/core/hash.ts';
import * as f from './fixtures.ts';

export function computeVectors(): Record<string, string> {
  const leaves = [0, 1, 2, 3, 4].map((i) => sha256(Uint8Array.of(i)));
  const p = f.vectorParams();
  return {
    header: toHex(encodeHeader(f.header)),
    headerHash: toHex(blockHash(f.header)),
    genesisTx: toHex(encodeTx(f.genesisTx)),
    coinbase: toHex(encodeTx(f.coinbase)),
    recordTxId: toHex(txId(f.record)),
    aggregation: toHex(encodeTx(f.aggregation)),
    updateClaim: toHex(encodeUpdateClaim(f.claim)),
    merkle0: toHex(merkleRoot([])),
    merkle1: toHex(merkleRoot(leaves.slice(0, 1))),
    merkle2: toHex(merkleRoot(leaves.slice(0, 2))),
    merkle3: toHex(merkleRoot(leaves.slice(0, 3))),
    merkle5: toHex(merkleRoot(leaves)),
    paramsDigest: toHex(paramsDigest(p)),
    genesisBlockSha256: toHex(sha256(encodeBlock(createGenesisBlock(p)))),
    genesisHash: toHex(genesisHash(p)),
  };
}
