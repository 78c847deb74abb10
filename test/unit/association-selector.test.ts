/**
 * Association schedulers in the product (issue 17): the daemon's selector (measured RTT and
 * announced load as a twin round, a scheduler picks), the miners' load message, the
 * `association` config section.
 */
import { describe, expect, it } from 'vitest';
import { d3qnScheduler } from '../../src/association/d3qn.ts';
import { associationSelector, measuredTwinState } from '../../src/node/association-selector.ts';
import { SCHEDULERS, heuristicScheduler } from '../../src/association/schedulers.ts';
import { checkOneToOne } from '../../src/association/twin.ts';
import { ASSOCIATION_POLICIES, parseNetworkConfig } from '../../src/config/network.ts';
import { isBflError } from '../../src/core/errors.ts';
import { decodeChainRequest, decodeMinerLoad, encodeChainRequest, encodeMinerLoad } from '../../src/net/messages.ts';
import type { MinerObservation } from '../../src/node/miner-selector.ts';

const contact = (i: number) => ({ id: `miner-${i + 1}`, peerId: `peer-${i + 1}` });
const observe = (rtts: (number | null)[], clients: number[] = []): MinerObservation[] => rtts.map((rttMs, i) => ({ miner: contact(i), rttMs, load: clients[i] === undefined ? null : { pendingUpdates: 0, clients: clients[i] } }));
const ctx = { clientId: 'client-1', now: 0 };

describe('the measured twin (a daemon client\'s view)', () => {
  it('puts each miner at the distance its RTT stands for and its announced clients at it, on their own channels', () => {
    const s = measuredTwinState([20, 30, null], [{ pendingUpdates: 3, clients: 2 }, null, { pendingUpdates: 0, clients: 1 }]);
    const { clients: N, servers: M, channels: K } = s.params;
    expect([N, M]).toEqual([4, 3]);
    // 10 ms round trip at distance 0 and 10 ms per 100 m: 20 ms → 100 m, 30 ms → 200 m
    const d = (m: number) => Math.hypot(s.serverPos[2 * m], s.serverPos[2 * m + 1]);
    expect(d(0)).toBeCloseTo(100, 9);
    expect(d(1)).toBeCloseTo(200, 9);
    expect(d(2)).toBeGreaterThan(10_000); // unreachable: out of any scheduler's choice
    expect([...s.prevServerLoad]).toEqual([2, 0, 1]);
    expect(s.prevChannelLoad[0]).toBe(2);
    expect(s.prevChannelLoad[1]).toBe(1);
    // mean path loss, no fading: the same gain on every channel, lower farther away
    const g = (n: number, m: number, k: number) => s.gain[(n * M + m) * K + k];
    expect(g(0, 0, 0)).toBe(g(0, 0, K - 1));
    expect(g(0, 0, 0)).toBeGreaterThan(g(0, 1, 0));
    // an announced client is nearer its own miner than any other
    for (const [n, home] of [[1, 0], [2, 0], [3, 2]]) for (let m = 0; m < M; m++) if (m !== home) expect(g(n, home, 0)).toBeGreaterThan(g(n, m, 0));
  });

  it('leaves every miner a free pair: at most K − 1 announced clients each', () => {
    const s = measuredTwinState([20, 20], [{ pendingUpdates: 0, clients: 50 }, { pendingUpdates: 0, clients: 50 }]);
    expect(s.params.clients).toBe(1 + 2 * (s.params.channels - 1));
  });
});

describe('a client\'s MinerSelector from association.policy', () => {
  it('nearest: the BFL-MEC rule, lowest RTT first, unreachable left out, no load asked', async () => {
    const sel = await associationSelector({ policy: 'nearest', miners: 3 });
    expect(sel.wantsLoad).toBeFalsy();
    expect(sel.rank(observe([40, null, 20]), ctx).map((m) => m.id)).toEqual(['miner-3', 'miner-1']);
    await sel.close();
  });

  for (const policy of ['greedy', 'decomposition', 'swap'] as const) {
    it(`${policy}: the chosen miner is the scheduler's for this client (client 0) on the measured twin`, async () => {
      const sel = await associationSelector({ policy, miners: 4, seed: 3 });
      const rtts = [24, 21, 35, 60];
      const clients = [2, 6, 0, 1];
      await sel.refresh!(observe(rtts, clients), ctx);
      const a = await heuristicScheduler(policy, 3).assign(measuredTwinState(rtts, clients.map((c) => ({ pendingUpdates: 0, clients: c }))));
      expect(sel.chosen).toBe(`miner-${a.server[0] + 1}`);
      await sel.close();
    });
  }

  for (const policy of ['decomposition', 'swap'] as const) {
    it(`${policy}: picks the nearest miner when none is loaded, and moves away from a crowded one`, async () => {
      const sel = await associationSelector({ policy, miners: 2 });
      expect(sel.wantsLoad).toBe(true);
      await sel.refresh!(observe([20, 22], [0, 0]), ctx);
      expect(sel.chosen).toBe('miner-1');
      expect(sel.rank(observe([20, 22]), ctx).map((m) => m.id)).toEqual(['miner-1', 'miner-2']);
      // nine clients share miner-1's edge compute (eq. (7)); miner-2 is barely farther
      await sel.refresh!(observe([20, 22], [9, 0]), ctx);
      expect(sel.chosen).toBe('miner-2');
      expect(sel.rank(observe([20, 22]), ctx).map((m) => m.id)).toEqual(['miner-2', 'miner-1']);
      // the chosen miner unreachable now: the others by RTT
      expect(sel.rank(observe([20, null]), ctx).map((m) => m.id)).toEqual(['miner-1']);
      await sel.close();
    });
  }

  it('d3qn: the committed policy (4 miners × 10 channels) chooses a reachable miner; for 3 miners it is a BAD_CONFIG error at start', async () => {
    const sel = await associationSelector({ policy: 'd3qn', miners: 4 });
    await sel.refresh!(observe([20, 60, 60, 60], [0, 0, 0, 0]), ctx);
    expect(sel.chosen).toBe('miner-1');
    expect(sel.rank(observe([20, 60, 60, 60]), ctx)[0].id).toBe('miner-1');
    await sel.refresh!(observe([null, 20, 30, null], [0, 0, 0, 0]), ctx);
    expect(['miner-2', 'miner-3']).toContain(sel.chosen);
    await sel.close();
    const err = await associationSelector({ policy: 'd3qn', miners: 3 }).catch((e) => e);
    expect(isBflError(err) && err.code).toBe('BAD_CONFIG');
    expect((err as Error).message).toMatch(/association.policy "d3qn".*retrain/);
  });

  it('every scheduler on a measured twin is one-to-one, with the announced clients left at their miners', async () => {
    const s = measuredTwinState([20, 25, 30, 35], [{ pendingUpdates: 0, clients: 3 }, { pendingUpdates: 0, clients: 9 }, null, { pendingUpdates: 0, clients: 1 }]);
    const home = [-1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3];
    expect(s.params.clients).toBe(home.length);
    for (const sched of [...(['nearest', 'greedy', 'decomposition', 'swap'] as const).map((n) => heuristicScheduler(n, 2)), await d3qnScheduler()]) {
      const a = await sched.assign(s);
      checkOneToOne(s.params, a);
      for (let n = 1; n < home.length; n++) expect(a.server[n], `${sched.name}, announced client ${n}`).toBe(home[n]);
      await sched.close?.();
    }
  });
});

describe('the miners\' load announcement', () => {
  it('round-trips, and a truncated answer is MALFORMED', () => {
    expect(decodeChainRequest(encodeChainRequest({ kind: 'load' }))).toEqual({ kind: 'load' });
    expect(decodeMinerLoad(encodeMinerLoad({ pendingUpdates: 7, clients: 3 }))).toEqual({ pendingUpdates: 7, clients: 3 });
    const err = (() => {
      try {
        decodeMinerLoad(new Uint8Array(5));
      } catch (e) {
        return e;
      }
    })();
    expect(isBflError(err) && err.code).toBe('MALFORMED');
  });
});

describe('network.json association section', () => {
  const base = { networkId: 'n', genesisTime: 0, members: [{ id: 'miner-1', role: 'miner', publicKey: '00'.repeat(1312) }] };
  it('its policy names are the schedulers\' (config may not import src/association: a second list, kept equal here)', () => {
    expect([...ASSOCIATION_POLICIES]).toEqual([...SCHEDULERS]);
  });

  it('defaults to the nearest miner; names any scheduler; a policy file is relative to the config', () => {
    expect(parseNetworkConfig(base).association).toEqual({ policy: 'nearest', policyFile: null });
    for (const policy of SCHEDULERS) expect(parseNetworkConfig({ ...base, association: { policy } }).association.policy).toBe(policy);
    expect(parseNetworkConfig({ ...base, association: { policy: 'd3qn', policyFile: 'p/x' } }, '/etc/bfl/network.json').association.policyFile).toBe('/etc/bfl/p/x');
  });

  it('an unknown policy or setting is a BAD_CONFIG error naming the path and the choices', () => {
    for (const [association, path, what] of [
      [{ policy: 'fastest' }, 'association.policy', /one of "nearest", "greedy", "decomposition", "swap", "d3qn"/],
      [{ polcy: 'swap' }, 'association.polcy', /unknown setting/],
      [{ policyFile: 3 }, 'association.policyFile', /string/],
    ] as const) {
      const err = (() => {
        try {
          parseNetworkConfig({ ...base, association } as never);
        } catch (e) {
          return e;
        }
      })();
      expect(isBflError(err) && err.code).toBe('BAD_CONFIG');
      expect((err as Error).message).toContain(path);
      expect((err as Error).message).toMatch(what);
    }
  });
});
