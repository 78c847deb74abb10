/**
 * Chain rules every layer above asks about, in one place: fork choice and where a block keeps
 * its aggregation. Pure.
 */
import { compareBytes } from './bytes.ts';
import type { AggregationTx, Block } from './types.ts';

/**
 * Fork choice: most cumulative work wins; equal work goes to the lower block hash. (First seen
 * would leave two miners that find blocks at the same moment in a quiet network split until the
 * next block, which may never come; the hash rule converges as soon as both blocks are known,
 * with no extra message: docs/decisions.md, "Ties go to the lower block hash".)
 */
export function isBetterTip(candidate: { work: bigint; hash: Uint8Array }, current: { work: bigint; hash: Uint8Array }): boolean {
  return candidate.work > current.work || (candidate.work === current.work && compareBytes(candidate.hash, current.hash) < 0);
}

/** The block's aggregation transaction (the first transaction, by the order rule), if any. */
export function aggregationTxOf(block: Block): AggregationTx | undefined {
  const tx = block.txs[0];
  return tx?.type === 'aggregation' ? tx : undefined;
}
