/**
 * One vote per client per aggregation (issue 13, item 4). Between two aggregations the chain
 * records at most one update of each client, so every aggregation scores, weighs and pays each
 * client once: a client that floods valid updates gains nothing by it (before this rule one
 * admitted client at 4 updates/s took 94 % of the rewards, and its near-identical copies got an
 * honest client labelled low). The ϕ rule then counts distinct clients. Which of a client's
 * updates a miner records is its own choice (any one is valid); miners take the one with the
 * most samples, then the newest (`preferredFirst`), so miners holding the same updates pick the
 * same one whatever the arrival order, and a recorded update supersedes the client's older ones.
 * Pure: a block rule (validation.ts) and the miner's selection (node/update-intake.ts) share it.
 */
import { compareBytes, toHex } from './bytes.ts';
import { BflError, ErrorCode } from './errors.ts';

export interface Vote {
  clientId: string;
  updateDigest: Uint8Array;
}

export interface DatedVote extends Vote {
  createdAt: number;
}

/**
 * The newest first: the later `createdAt` (signed by the client), ties by the lower digest, so
 * the order depends on the updates' content only, never on when a miner received them.
 */
export function newestFirst(a: DatedVote, b: DatedVote): number {
  return b.createdAt - a.createdAt || compareBytes(a.updateDigest, b.updateDigest);
}

export interface CandidateVote extends DatedVote {
  sampleCount: number;
}

/**
 * The update a miner records for a client: the one with the most samples (an offline client's
 * average of its buffered updates carries several rounds of data and must not be superseded by
 * the regular update that follows it a moment later), then the newest (newestFirst). Only the
 * client's own updates compete, so a large claimed sampleCount gains it nothing here.
 */
export function preferredFirst(a: CandidateVote, b: CandidateVote): number {
  return b.sampleCount - a.sampleCount || newestFirst(a, b);
}

/** Distinct clients among the votes: what the ϕ rule counts. */
export function distinctClients(votes: readonly Vote[]): number {
  return new Set(votes.map((v) => v.clientId)).size;
}

/**
 * The block rule: `records` (a block's, in order) may not give a second vote to a client that
 * already votes in `pending` (recorded since the last aggregation) or earlier in the block.
 * CLIENT_ALREADY_VOTED, REJECT: the miner chose to record it.
 */
export function checkOneVotePerClient(pending: readonly Vote[], records: readonly Vote[]): void {
  const voted = new Map<string, Uint8Array>(pending.map((p) => [p.clientId, p.updateDigest]));
  for (const r of records) {
    const earlier = voted.get(r.clientId);
    if (earlier) {
      throw new BflError(
        ErrorCode.CLIENT_ALREADY_VOTED,
        `client ${r.clientId} already has update ${toHex(earlier).slice(0, 16)} recorded for this aggregation; update ${toHex(r.updateDigest).slice(0, 16)} may be recorded only after the next aggregation (one update per client per aggregation)`,
      );
    }
    voted.set(r.clientId, r.updateDigest);
  }
}
