/**
 * Typed errors. Every rejection in the product carries a stable `code` (tests assert codes, not
 * messages) and, where the input came from a peer, the gossip/request `action` it maps to.
 */

/** What to do with the peer that sent the input (libp2p gossipsub's validation results). */
export type ErrorAction = 'IGNORE' | 'REJECT';

export const ErrorCode = {
  // encoding and shape
  MALFORMED: 'MALFORMED',
  OVERSIZED: 'OVERSIZED',
  /** An update payload holds NaN or ±Infinity: no aggregation rule can use it (issue 13, item 6). */
  NON_FINITE: 'NON_FINITE',
  /** A field is outside its sane range (an update's sampleCount, a createdAt before the network began). */
  OUT_OF_RANGE: 'OUT_OF_RANGE',
  // block rules
  BAD_POW: 'BAD_POW',
  BAD_DIFFICULTY: 'BAD_DIFFICULTY',
  UNKNOWN_PARENT: 'UNKNOWN_PARENT',
  BAD_HEIGHT: 'BAD_HEIGHT',
  BAD_MERKLE_ROOT: 'BAD_MERKLE_ROOT',
  TIMESTAMP_FUTURE: 'TIMESTAMP_FUTURE',
  TIMESTAMP_BEFORE_PARENT: 'TIMESTAMP_BEFORE_PARENT',
  BAD_SIGNATURE: 'BAD_SIGNATURE',
  UNKNOWN_CLIENT: 'UNKNOWN_CLIENT',
  UNKNOWN_MINER: 'UNKNOWN_MINER',
  DUPLICATE_RECORD: 'DUPLICATE_RECORD',
  BAD_TX_ORDER: 'BAD_TX_ORDER',
  BAD_COINBASE: 'BAD_COINBASE',
  UNKNOWN_BASE_MODEL: 'UNKNOWN_BASE_MODEL',
  AGGREGATION_REQUIRED: 'AGGREGATION_REQUIRED',
  UNEXPECTED_AGGREGATION: 'UNEXPECTED_AGGREGATION',
  BAD_AGGREGATION: 'BAD_AGGREGATION',
  BAD_GENESIS: 'BAD_GENESIS',
  /** A second update of one client between two aggregations (one vote per client: core/votes.ts). */
  CLIENT_ALREADY_VOTED: 'CLIENT_ALREADY_VOTED',
  // keys, config, storage
  BAD_KEY_FILE: 'BAD_KEY_FILE',
  BAD_CONFIG: 'BAD_CONFIG',
  /** The chain store is damaged (unreadable, inconsistent): `chain repair`, or set it aside and resync. */
  STORE_CORRUPT: 'STORE_CORRUPT',
  /** The miner's update pool (DATADIR/updates) is damaged: `chain repair` rebuilds it. */
  POOL_CORRUPT: 'POOL_CORRUPT',
  /** Another process (a running node) holds the store's LevelDB lock. */
  STORE_LOCKED: 'STORE_LOCKED',
  /** A datadir, output file or directory the operator named cannot be used (a file, missing, not writable). */
  BAD_PATH: 'BAD_PATH',
  NETWORK_MISMATCH: 'NETWORK_MISMATCH',
  // network
  UNAUTHORIZED: 'UNAUTHORIZED',
  NOT_FOUND: 'NOT_FOUND',
  UNAVAILABLE: 'UNAVAILABLE',
  /** A peer exceeded its per-protocol request or download budget (src/net/peer-book.ts). */
  RATE_LIMITED: 'RATE_LIMITED',
  /** A listen address (libp2p or the HTTP API) is taken by another process. */
  PORT_IN_USE: 'PORT_IN_USE',
  /** A client uploads faster than the miner's per-client limit (p2p.clientUpdatesPerMinute); IGNORE. */
  CLIENT_RATE_LIMITED: 'CLIENT_RATE_LIMITED',
  // sealed (ML-KEM encrypted) payloads: src/crypto/seal.ts
  KEM_WRONG_KEY: 'KEM_WRONG_KEY', // sealed to a KEM key the recipient does not hold
  KEM_KEY_EXPIRED: 'KEM_KEY_EXPIRED', // sealed to a recipient key past its validity window
  SEAL_TRUNCATED: 'SEAL_TRUNCATED', // shorter than its header says
  SEAL_TAMPERED: 'SEAL_TAMPERED', // KEM ciphertext, AEAD ciphertext, tag or associated data altered
  SEAL_REPLAYED: 'SEAL_REPLAYED', // a KEM ciphertext the recipient has already opened
  SEAL_REQUIRED: 'SEAL_REQUIRED', // a raw update in clear on a network that requires sealing
  // split learning (node/split-miner.ts)
  BATCH_REPLAYED: 'BATCH_REPLAYED', // a smashed-data batch not newer than the client's last one, or older than the replay window
  WRONG_MODE: 'WRONG_MODE', // a message of the other learning mode (learning.mode)
  // data sets
  DATA_NOT_FOUND: 'DATA_NOT_FOUND',
  BAD_DATA: 'BAD_DATA',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class BflError extends Error {
  readonly code: ErrorCode;
  readonly action: ErrorAction;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, opts: { action?: ErrorAction; details?: Record<string, unknown> } = {}) {
    super(message);
    this.name = 'BflError';
    this.code = code;
    // Default REJECT: almost every rule violation is provably the sender's fault. Callers pass
    // IGNORE where the input may be fine but we cannot use it now (e.g. unknown parent).
    this.action = opts.action ?? 'REJECT';
    this.details = opts.details;
  }
}

export function isBflError(e: unknown, code?: ErrorCode): e is BflError {
  return e instanceof BflError && (code === undefined || e.code === code);
}
