/**
 * The one adapter from errors to verdicts and penalties (STYLE.md habits 5 and 6). Every
 * handler of our protocols and every gossip validator throws typed errors; here they become
 * the gossip verdict (ACCEPT / IGNORE / REJECT, gossipsub scores the sender) or, for requests
 * and fetched data, penalty points in the peer book. A REJECT is provable misbehaviour; an
 * unexpected exception is IGNORE, so our own bugs never punish honest peers.
 */
import { ErrorCode, isBflError } from '../core/errors.ts';
import type { PeerBook } from '../net/peer-book.ts';
import type { Verdict } from '../net/transport.ts';
import type { Logger } from '../util/logger.ts';
import type { Metrics } from '../util/metrics.ts';

/** Where a peer's data came from; decides the weight of a penalty. */
export type Source = 'submit' | 'split' | 'update' | 'fetched-update' | 'block' | 'sync' | 'chain';

/** Penalty points for a REJECT (100 bans a peer): an invalid block costs the most work to check. */
export function penaltyPoints(source: Source, code: string): number {
  if (source === 'block' || source === 'sync') return 50;
  // a duplicate is often a retry whose answer was lost: cheap, but not free
  if (code === ErrorCode.DUPLICATE_RECORD) return 2;
  // an envelope to a KEM key we rotated away from: what a sender with a stale key sends too
  if (code === ErrorCode.KEM_KEY_EXPIRED) return 2;
  // over a budget: throttled first; only a peer that keeps pushing reaches a ban (50 refusals)
  if (code === ErrorCode.RATE_LIMITED) return 2;
  return 10;
}

export function verdictOf(e: unknown): { verdict: Verdict; code: string } {
  const code = isBflError(e) ? e.code : 'INTERNAL';
  return { verdict: isBflError(e) && e.action === 'REJECT' ? 'reject' : 'ignore', code };
}

/** What the adapter needs of the peer book. */
export type PenaltyLedger = Pick<PeerBook, 'penalise' | 'info'>;

export class Verdicts {
  private readonly peers: PenaltyLedger;
  private readonly log: Logger;
  private readonly gossipCount?: ReturnType<Metrics['counter']>;

  constructor(o: { peers: PenaltyLedger; logger: Logger; metrics?: Metrics }) {
    this.peers = o.peers;
    this.log = o.logger;
    this.gossipCount = o.metrics?.counter('bfl_gossip_messages_total', 'gossip messages validated, by topic and result', ['topic', 'result']);
  }

  private who(peer: string): string {
    return this.peers.info(peer)?.memberId ?? peer;
  }

  /** A request we served, or data a peer sent us, failed: penalise a REJECT. Returns the verdict. */
  refused(peer: string, source: Source, e: unknown, level: 'debug' | 'info' | 'warn' = 'info'): Verdict {
    const { verdict, code } = verdictOf(e);
    if (verdict === 'reject') this.peers.penalise(peer, `${source}:${code}`, penaltyPoints(source, code));
    this.log[level]({ peer: this.who(peer), source, code, err: (e as Error).message }, `${source} refused`);
    return verdict;
  }

  /** Run a gossip validator: its verdict, or the verdict of what it threw; counted per topic. */
  async gossip(topic: 'updates' | 'blocks', peer: string, check: () => Promise<Verdict>): Promise<Verdict> {
    let result: Verdict;
    try {
      result = await check();
    } catch (e) {
      result = verdictOf(e).verdict;
      this.log.info({ peer: this.who(peer), topic, code: verdictOf(e).code, err: (e as Error).message }, 'gossip message refused');
    }
    this.gossipCount?.inc({ topic, result });
    return result;
  }
}
