/**
 * FIPS 204 context strings, one per message kind: domain separation, so a signature made for an
 * update can never pass as a block signature or a peer record, even over equal bytes.
 */
export const SigningContext = {
  update: 'bfl/update/v1',
  block: 'bfl/block/v1',
  peer: 'bfl/peer/v1',
  /** A miner's ML-KEM key announcement (crypto/kem-keys.ts). */
  kemKey: 'bfl/kem-key/v1',
  /** A client's batch of cut-layer activations and labels to its miner (split learning, net/split.ts). */
  splitBatch: 'bfl/split-batch/v1',
  /** A client's noised head update, shared for head aggregation (split learning, eq. 4). */
  splitHead: 'bfl/split-head/v1',
} as const;
export type SigningContext = (typeof SigningContext)[keyof typeof SigningContext];
