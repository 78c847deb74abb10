/**
 * `bfl-node status` in split mode: a miner's split rows (clients served, batches answered and
 * refused, body updates, head shares, last error), a client's (rounds, its miner, loss, last
 * error) and its head sharing with the (ε, δ) of it, as /status gives them
 * (node/split-miner.ts, node/split-client.ts); a federated node has no split rows.
 */
import { describe, expect, it } from 'vitest';
import type { MinerStatus, SplitClientStatus, SplitMinerStatus } from '../../src/api/status.ts';
import { formatStatus } from '../../src/cli/status/index.ts';

const client = { role: 'client', id: 'client-1', round: 3, modelHash: 'ab'.repeat(32), lastAccuracy: 0.9, trained: 4, uploaded: 4, buffered: 0, balance: null, miners: {}, nearest: null };
const base = { base: 'http://127.0.0.1:8080' };
const line = (s: Record<string, unknown>) => formatStatus(s, base).find((l) => l.includes('head sharing'));
/** The value of the row labelled `label` ('' if there is none). */
const row = (lines: string[], label: string) => lines.find((l) => l.startsWith(`  ${label}  `))?.slice(2 + label.length).trim() ?? '';
const AT = Date.UTC(2026, 11, 1, 5, 1, 2);

const miner: MinerStatus = { role: 'miner', id: 'miner-1', peerId: '12D3KooWm', work: '1000', orphans: 0, height: 42, tip: 'ab'.repeat(32), aggregations: 7, pending: 1, peers: 3, miners: ['miner-2'], pool: { unrecorded: 2, total: 9 }, lastAccuracy: null, flagged: [], hashRate: 1_800_000, penalties: {} };
const minerSplit: SplitMinerStatus = {
  batches: 1234,
  refused: 3,
  samples: 12_340,
  pending: 820,
  sinceUpdate: 320,
  samplesPerUpdate: 500,
  bodyUpdates: 4,
  bodyUpdatesRefused: 1,
  headShares: 12,
  headSharesRefused: 2,
  lastLoss: 0.23141,
  clients: ['client-1', 'client-2'],
  clientWindowMs: 60_000,
  lastError: { what: 'batch', code: 'BATCH_REPLAYED', message: 'split batch of client-3 created at 1, not after its last one (2): a replay, or sent out of order', peer: 'client-3', at: AT },
};
const clientSplit: SplitClientStatus = { rounds: 12, failed: 1, miner: 'miner-2', lastLoss: 0.31234, lastRoundAt: AT, lastError: { what: 'round', code: 'RATE_LIMITED', message: 'too many requests', peer: 'miner-1', at: AT - 60_000 } };

describe('bfl-node status, split mode', () => {
  it('a split miner: clients served recently, batches answered and refused, body updates against samplesPerUpdate, head shares, the last error', () => {
    const lines = formatStatus({ ...miner, split: minerSplit }, base);
    expect(row(lines, 'split clients')).toBe('2 trained with it in the last 60 s: client-1, client-2');
    expect(row(lines, 'split batches')).toBe('1234 answered (12340 samples, last loss 0.2314), 3 refused');
    expect(row(lines, 'body updates')).toBe('4 made, 1 refused by its intake; the next after 320 of 500 samples');
    expect(row(lines, 'head shares')).toBe('12 received (eq. 4), 2 refused');
    expect(row(lines, 'split error')).toBe('batch from client-3 at 05:01:02 UTC: BATCH_REPLAYED: split batch of client-3 created at 1, not after its last one (2): a replay, or sent out of order');
    // a split miner evaluates no model (the heads are the clients')
    expect(row(lines, 'accuracy')).toMatch(/^- {2}\(split mode: the heads are on the clients/);
    // its own body update labelled low; nobody served; no error yet; many clients are cut short
    const idle = formatStatus({ ...miner, flagged: ['miner-1'], split: { ...minerSplit, clients: [], lastError: null } }, base);
    expect(row(idle, 'split clients')).toBe('none in the last 60 s (no client is training with this miner)');
    expect(row(idle, 'body updates')).toMatch(/; labelled low in the newest aggregation$/);
    expect(row(idle, 'split error')).toBe('none since the node started');
    const many = formatStatus({ ...miner, split: { ...minerSplit, clients: Array.from({ length: 11 }, (_, i) => `client-${i + 1}`) } }, base);
    expect(row(many, 'split clients')).toBe('11 trained with it in the last 60 s: client-1, client-2, client-3, client-4, client-5, client-6, client-7, client-8, … (3 more)');
  });

  it('a split client: rounds with its miner and the last loss, the last error, head sharing; no federated "updates" row', () => {
    const lines = formatStatus({ ...client, mode: 'split', headSharing: null, split: clientSplit }, base);
    expect(row(lines, 'split rounds')).toBe('12 trained with a miner (the last with miner-2 at 05:01:02 UTC, loss 0.3123), 1 failed');
    expect(row(lines, 'split error')).toBe('round with miner-1 at 05:00:02 UTC: RATE_LIMITED: too many requests');
    expect(row(lines, 'updates')).toBe('');
    const fresh = formatStatus({ ...client, mode: 'split', headSharing: null, split: { rounds: 0, failed: 0, miner: null, lastLoss: null, lastRoundAt: null, lastError: null } }, base);
    expect(row(fresh, 'split rounds')).toBe('0 trained with a miner (no miner has answered a round yet), 0 failed');
    expect(row(fresh, 'split error')).toBe('none since the node started');
  });

  it('shows a sharing client\'s shares and (ε, δ), a private head as private, nothing in federated mode', () => {
    expect(line({ ...client, mode: 'split', headSharing: { every: 2, shares: 2, clip: 5, noise: 0.5, delta: 1e-5, epsilon: 41.64549328386881 } })).toMatch(/head sharing\s+2 shares every 2 rounds \(eq\. 4, clip 5, noise 0\.5\): \(ε, δ\) = \(41\.65, 0\.00001\)$/);
    expect(line({ ...client, mode: 'split', headSharing: { every: 1, shares: 3, clip: 1, noise: 0, delta: 1e-5, epsilon: null } })).toMatch(/\(ε, δ\) = \(∞, no noise, 0\.00001\)$/);
    expect(line({ ...client, mode: 'split', headSharing: null })).toMatch(/head sharing\s+none \(split mode: the head stays private\)$/);
    expect(line(client)).toBeUndefined();
  });

  it('federated nodes print no split rows; a split node of an older version (no split object) still prints its rounds', () => {
    const fedMiner = formatStatus({ ...miner, lastAccuracy: 0.9123 }, base);
    const fedClient = formatStatus(client, base);
    for (const lines of [fedMiner, fedClient]) expect(lines.filter((l) => /^ {2}(split|body updates|head shares)/.test(l))).toEqual([]);
    expect(row(fedMiner, 'accuracy')).toMatch(/^91\.23 %/);
    expect(row(fedClient, 'updates')).toBe('4 trained, 4 uploaded, 0 buffered');
    const older = formatStatus({ ...client, mode: 'split', headSharing: null }, base);
    expect(row(older, 'updates')).toBe('4 trained, 4 uploaded, 0 buffered');
    expect(row(older, 'split rounds')).toBe('');
  });
});
