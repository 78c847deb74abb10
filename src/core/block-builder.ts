/** Assembling blocks on a parent state: the template a miner fills with a nonce and signs. */
import { BLOCK_VERSION, blockHash, encodeBlockSigningMessage, txId } from './encoding.ts';
import { SigningContext } from './contexts.ts';
import { merkleRoot } from './merkle.ts';
import type { ChainParams } from './params.ts';
import type { AggregationTx, Block, RecordTx, Tx } from './types.ts';
import type { ChainState } from './validation.ts';

export interface BlockTemplateInput {
  parent: ChainState;
  params: ChainParams;
  minerId: string;
  timestamp: number;
  records: RecordTx[];
  aggregation?: AggregationTx;
}

/** An unsigned block with nonce 0. Timestamps never go below the parent's. */
export function buildBlockTemplate(input: BlockTemplateInput): Block {
  const { parent, params, minerId } = input;
  const height = parent.height + 1;
  const txs: Tx[] = [];
  if (input.aggregation) txs.push(input.aggregation);
  txs.push({ type: 'coinbase', height, minerId, amount: params.blockReward });
  txs.push(...input.records);
  return {
    header: {
      version: BLOCK_VERSION,
      height,
      prevHash: parent.hash,
      merkleRoot: merkleRoot(txs.map(txId)),
      timestamp: Math.max(input.timestamp, parent.timestamp),
      difficulty: params.difficulty,
      minerId,
      nonce: 0,
    },
    signature: new Uint8Array(0),
    txs,
  };
}

export interface BlockSigner {
  sign(message: Uint8Array, context: string): Uint8Array;
}

/** Sign a mined block (the signature covers the network id and the block hash). */
export function signBlock(block: Block, networkId: string, key: BlockSigner): Block {
  return { ...block, signature: key.sign(encodeBlockSigningMessage(networkId, blockHash(block.header)), SigningContext.block) };
}
