/**
 * The aggregator's state after each aggregation block (STYLE.md habit 9: a small typed
 * repository over prefixed keys): canonical bytes (Aggregator.encodeState) by block hash. The
 * store writes a block's state in the block's own batch; everything here can be rebuilt from
 * the blocks (chain/aggregation.ts), and a reorg needs no undo: states are read by the hash of
 * the new tip's anchor.
 */
import { toHex } from '../core/bytes.ts';

/** The sublevel it lives in (a LevelDB sublevel of the chain database, values as bytes). */
export interface BytesSublevel {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, value: Uint8Array): Promise<void>;
}

export class AggregatorStates {
  readonly db: BytesSublevel;

  constructor(db: BytesSublevel) {
    this.db = db;
  }

  get(blockHash: Uint8Array): Promise<Uint8Array | undefined> {
    return this.db.get(toHex(blockHash));
  }

  /** A rebuilt state (derived data: one key, no batch needed). */
  put(blockHash: Uint8Array, state: Uint8Array): Promise<void> {
    return this.db.put(toHex(blockHash), state);
  }

  /** The batch operation that stores a block's state with the block. */
  putOp(blockHash: string, state: Uint8Array): { type: 'put'; sublevel: BytesSublevel; key: string; value: Uint8Array } {
    return { type: 'put', sublevel: this.db, key: blockHash, value: state };
  }
}
