/**
 * `bfl-node status` of a split-mode client: its head sharing and the (ε, δ) of it, as /status
 * gives them (node/split-client.ts privacyAccount), or that its head is private.
 */
import { describe, expect, it } from 'vitest';
import { formatStatus } from '../../src/cli/status/index.ts';

const client = { role: 'client', id: 'client-1', round: 3, modelHash: 'ab'.repeat(32), lastAccuracy: 0.9, trained: 4, uploaded: 4, buffered: 0, balance: null, miners: {}, nearest: null };
const line = (s: Record<string, unknown>) => formatStatus(s, { base: 'http://127.0.0.1:8080' }).find((l) => l.includes('head sharing'));

describe('bfl-node status, split mode', () => {
  it('shows a sharing client\'s shares and (ε, δ), a private head as private, nothing in federated mode', () => {
    expect(line({ ...client, mode: 'split', headSharing: { every: 2, shares: 2, clip: 5, noise: 0.5, delta: 1e-5, epsilon: 41.64549328386881 } })).toMatch(/head sharing\s+2 shares every 2 rounds \(eq\. 4, clip 5, noise 0\.5\): \(ε, δ\) = \(41\.65, 0\.00001\)$/);
    expect(line({ ...client, mode: 'split', headSharing: { every: 1, shares: 3, clip: 1, noise: 0, delta: 1e-5, epsilon: null } })).toMatch(/\(ε, δ\) = \(∞, no noise, 0\.00001\)$/);
    expect(line({ ...client, mode: 'split', headSharing: null })).toMatch(/head sharing\s+none \(split mode: the head stays private\)$/);
    expect(line(client)).toBeUndefined();
  });
});
