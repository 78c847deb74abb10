import { describe, expect, it } from 'vitest';
import { BflError, ErrorCode } from '../../src/core/errors.ts';
import { nearestByRtt } from '../../src/node/miner-selector.ts';
import { Verdicts, penaltyPoints, verdictOf } from '../../src/node/verdicts.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { Metrics } from '../../src/util/metrics.ts';

describe('the error -> verdict -> penalty adapter', () => {
  const ledger = () => {
    const given: [string, string, number][] = [];
    return { given, peers: { penalise: (peer: string, reason: string, points = 10) => void given.push([peer, reason, points]), info: () => undefined } };
  };

  it('REJECT is a reject and costs points by source; IGNORE and our own bugs cost nothing', () => {
    const { given, peers } = ledger();
    const v = new Verdicts({ peers, logger: silentLogger });
    expect(v.refused('p1', 'block', new BflError(ErrorCode.BAD_POW, 'x'))).toBe('reject');
    expect(v.refused('p1', 'submit', new BflError(ErrorCode.DUPLICATE_RECORD, 'x'))).toBe('reject');
    expect(v.refused('p2', 'submit', new BflError(ErrorCode.BAD_SIGNATURE, 'x'))).toBe('reject');
    expect(v.refused('p3', 'submit', new BflError(ErrorCode.UNKNOWN_BASE_MODEL, 'x', { action: 'IGNORE' }))).toBe('ignore');
    expect(v.refused('p3', 'block', new TypeError('a bug of ours'))).toBe('ignore');
    expect(given).toEqual([
      ['p1', 'block:BAD_POW', 50],
      ['p1', 'submit:DUPLICATE_RECORD', 2],
      ['p2', 'submit:BAD_SIGNATURE', 10],
    ]);
    expect(penaltyPoints('sync', ErrorCode.BAD_MERKLE_ROOT)).toBe(50);
    expect(verdictOf(new Error('x'))).toEqual({ verdict: 'ignore', code: 'INTERNAL' });
  });

  it('gossip: the validator verdict, or the verdict of what it threw, counted per topic', async () => {
    const metrics = new Metrics();
    const v = new Verdicts({ peers: ledger().peers, logger: silentLogger, metrics });
    expect(await v.gossip('blocks', 'p', async () => 'accept')).toBe('accept');
    expect(await v.gossip('blocks', 'p', async () => Promise.reject(new BflError(ErrorCode.OVERSIZED, 'big')))).toBe('reject');
    expect(await v.gossip('updates', 'p', async () => Promise.reject(new RangeError('bug')))).toBe('ignore');
    const text = await metrics.text();
    expect(text).toMatch(/bfl_gossip_messages_total\{topic="blocks",result="accept"\} 1/);
    expect(text).toMatch(/bfl_gossip_messages_total\{topic="blocks",result="reject"\} 1/);
    expect(text).toMatch(/bfl_gossip_messages_total\{topic="updates",result="ignore"\} 1/);
  });
});

describe('miner selection', () => {
  const m = (id: string) => ({ id, peerId: `peer-${id}` });
  it('nearest by RTT: reachable miners only, fastest first, ties in config order', () => {
    const ranked = nearestByRtt.rank(
      [
        { miner: m('a'), rttMs: 30 },
        { miner: m('b'), rttMs: null },
        { miner: m('c'), rttMs: 5 },
        { miner: m('d'), rttMs: 30 },
      ],
      { clientId: 'client-1', now: 0 },
    );
    expect(ranked.map((x) => x.id)).toEqual(['c', 'a', 'd']);
    expect(nearestByRtt.rank([{ miner: m('a'), rttMs: null }], { clientId: 'client-1', now: 0 })).toEqual([]);
  });
});
