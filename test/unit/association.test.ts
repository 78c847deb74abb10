import { describe, expect, it } from 'vitest';
import { isBflError } from '../../src/core/errors.ts';
import { heuristicScheduler, nearestScheduler, swapScheduler } from '../../src/association/schedulers.ts';
import { type Assignment, type TwinParams, type TwinState, Twin, checkOneToOne, dbmToW, pathLossDb, roundCost, twinParams } from '../../src/association/twin.ts';

/** A hand-made round: unit powers and noise (30 dBm = 1 W), 1 MHz, chosen gains. */
function handState(over: Partial<TwinParams>, gains: Record<string, number>): TwinState {
  const p = twinParams({
    clients: 2,
    servers: 2,
    channels: 2,
    bandwidthHz: 1e6,
    clientPowerDbm: 30,
    serverPowerDbm: 30,
    noiseDbm: 30,
    samplesPerRound: 10,
    bitsUpPerSample: 1e5,
    bitsDownPerSample: 2e5,
    clientFlopsPerSample: 1e8,
    clientFlops: 1e9,
    clientJPerSample: 0.01,
    serverFlopsPerSample: 1e9,
    serverFlops: 1e10,
    lambda: 0.5,
    mu: 0.5,
    ...over,
  });
  const gain = new Float64Array(8).fill(1e-9);
  // key "n,m,k"
  for (const [key, v] of Object.entries(gains)) {
    const [n, m, k] = key.split(',').map(Number);
    gain[(n * 2 + m) * 2 + k] = v;
  }
  return { params: p, clientPos: new Float64Array(4), serverPos: new Float64Array(4), gain, samples: Float64Array.of(10, 10), usedTimeS: 0, usedEnergyJ: new Float64Array(2), prevServerLoad: new Float64Array(2), prevChannelLoad: new Float64Array(2) };
}

const assign = (pairs: [number, number][]): Assignment => ({ server: Int32Array.from(pairs.map((x) => x[0])), channel: Int32Array.from(pairs.map((x) => x[1])) });

describe('the twin: cost model of eqs. (5)-(19)', () => {
  it('Table I conversions: 30 dBm is 1 W, −114 dBm noise, PL(100 m) = 35.3 + 37.6·2 dB', () => {
    expect(dbmToW(30)).toBe(1);
    expect(dbmToW(-114)).toBeCloseTo(3.98e-15, 17);
    expect(pathLossDb(twinParams(), 100)).toBeCloseTo(110.5, 10);
    expect(pathLossDb(twinParams(), 0)).toBe(35.3); // clamped at 1 m
  });

  it('two co-channel clients at two servers: SINR with interference, rates, times, energy, cost by hand', () => {
    // client 0 → (server 0, channel 0), client 1 → (server 1, channel 0)
    // uplink SINR0 = 6/(1 + g(1→0)=1) = 3 → 2 bit/s/Hz; SINR1 = 2/(1 + g(0→1)=1) = 1 → 1 bit/s/Hz
    // downlink (reciprocal gains): client 0 hears server 1 at 1 → 6/2 = 3; client 1 hears server 0 at 1 → 2/2 = 1
    const s = handState({}, { '0,0,0': 6, '1,0,0': 1, '0,1,0': 1, '1,1,0': 2 });
    const c = roundCost(s, assign([[0, 0], [1, 0]]));
    expect(Array.from(c.rateUp)).toEqual([2e6, 1e6]);
    expect(Array.from(c.rateDown)).toEqual([2e6, 1e6]);
    // local 10·1e8/1e9 = 1 s; edge 1e9·10/1e10 = 1 s; up 10·1e5/rate; down 10·2e5/rate
    expect(c.clientTimeS[0]).toBeCloseTo(1 + 1 + 0.5 + 1, 12);
    expect(c.clientTimeS[1]).toBeCloseTo(1 + 1 + 1 + 2, 12);
    expect(c.timeS).toBeCloseTo(5, 12); // eq. (17): the slowest
    // eq. (18): 10 · 0.01 J + 1 W · upload time
    expect(c.clientEnergyJ[0]).toBeCloseTo(0.1 + 0.5, 12);
    expect(c.clientEnergyJ[1]).toBeCloseTo(0.1 + 1, 12);
    expect(c.energyJ).toBeCloseTo(1.7, 12);
    expect(c.cost).toBeCloseTo(0.5 * 5 + 0.5 * 1.7, 12);
    expect(c.withinBudget).toBe(true);
  });

  it('two clients on one server share its GPU (eq. (7)) and do not interfere on different channels', () => {
    // SINR0 = 3/1 = 3 → 2 bit/s/Hz; SINR1 = 1/1 → 1; edge time 1e9 · 20 / 1e10 = 2 s each
    const s = handState({}, { '0,0,0': 3, '1,0,1': 1, '1,0,0': 100, '0,0,1': 100 });
    const c = roundCost(s, assign([[0, 0], [0, 1]]));
    expect(Array.from(c.rateUp)).toEqual([2e6, 1e6]);
    expect(c.clientTimeS[0]).toBeCloseTo(1 + 2 + 0.5 + 1, 12);
    expect(c.clientTimeS[1]).toBeCloseTo(1 + 2 + 1 + 2, 12);
    expect(c.cost).toBeCloseTo(0.5 * 6 + 0.5 * 1.7, 12);
  });

  it('budgets (19b-c): a round that would exceed a client\'s energy or the time budget is flagged', () => {
    const g = { '0,0,0': 6, '1,0,0': 1, '0,1,0': 1, '1,1,0': 2 };
    const a = assign([[0, 0], [1, 0]]);
    expect(roundCost({ ...handState({ energyBudgetJ: 1.5 }, g), usedEnergyJ: Float64Array.of(0, 0.3) }, a).withinBudget).toBe(true);
    expect(roundCost({ ...handState({ energyBudgetJ: 1.5 }, g), usedEnergyJ: Float64Array.of(0, 0.5) }, a).withinBudget).toBe(false);
    expect(roundCost({ ...handState({ latencyBudgetS: 10 }, g), usedTimeS: 6 }, a).withinBudget).toBe(false);
  });

  it('is seeded: the same seed gives the same rounds; Rayleigh power fading has mean 1', () => {
    const p = twinParams();
    const [a, b] = [new Twin(p, 3).next(), new Twin(p, 3).next()];
    expect(Buffer.from(a.gain.buffer)).toEqual(Buffer.from(b.gain.buffer));
    expect(Buffer.from(new Twin(p, 4).next().gain.buffer)).not.toEqual(Buffer.from(a.gain.buffer));
    // fading = gain / path loss; its mean over many draws is E|h|² = 1
    let sum = 0;
    let count = 0;
    const twin = new Twin(p, 9);
    for (let r = 0; r < 50; r++) {
      const s = twin.next();
      for (let n = 0; n < p.clients; n++)
        for (let m = 0; m < p.servers; m++) {
          const d = Math.hypot(s.clientPos[2 * n] - s.serverPos[2 * m], s.clientPos[2 * n + 1] - s.serverPos[2 * m + 1]);
          for (let k = 0; k < p.channels; k++) sum += s.gain[(n * p.servers + m) * p.channels + k] / 10 ** (-pathLossDb(p, d) / 10);
          count += p.channels;
        }
    }
    expect(sum / count).toBeGreaterThan(0.95);
    expect(sum / count).toBeLessThan(1.05);
  });

  it('rejects more clients than (server, channel) pairs with BAD_CONFIG', () => {
    try {
      twinParams({ clients: 41 });
      expect.unreachable();
    } catch (e) {
      expect(isBflError(e, 'BAD_CONFIG')).toBe(true);
    }
  });
});

describe('schedulers', () => {
  it('checkOneToOne catches a shared pair and a missing one', () => {
    const p = twinParams({ clients: 2, servers: 2, channels: 2 });
    expect(() => checkOneToOne(p, assign([[0, 1], [0, 1]]))).toThrow(/shares/);
    expect(() => checkOneToOne(p, assign([[0, 1], [-1, -1]]))).toThrow(/no valid/);
    expect(() => checkOneToOne(p, assign([[0, 1], [1, 1]]))).not.toThrow();
  });

  for (const over of [{}, { clients: 12, servers: 3, channels: 4 }, { clients: 20, servers: 2, channels: 10 }] as Partial<TwinParams>[]) {
    it(`every heuristic is one-to-one on (server, channel) (${JSON.stringify(over)})`, async () => {
      const p = twinParams(over);
      for (const name of ['nearest', 'greedy', 'decomposition', 'swap'] as const) {
        const twin = new Twin(p, 5);
        const sched = heuristicScheduler(name, 1);
        for (let r = 0; r < 3; r++) checkOneToOne(p, await sched.assign(twin.next()));
      }
    });
  }

  it('swap matching never ends worse than its nearest-server start, and ends exchange-stable', () => {
    const p = twinParams();
    const twin = new Twin(p, 6);
    for (let r = 0; r < 3; r++) {
      const s = twin.next();
      const start = roundCost(s, nearestScheduler(7).assign(s) as Assignment).cost;
      const a = swapScheduler(7).assign(s) as Assignment;
      const cost = roundCost(s, a).cost;
      expect(cost).toBeLessThanOrEqual(start);
      // no single move to a free pair lowers the cost
      const K = p.channels;
      const used = new Set(Array.from(a.server, (m, n) => m * K + a.channel[n]));
      for (let n = 0; n < p.clients; n++)
        for (let pair = 0; pair < p.servers * K; pair++) {
          if (used.has(pair)) continue;
          const b = { server: Int32Array.from(a.server), channel: Int32Array.from(a.channel) };
          b.server[n] = Math.floor(pair / K);
          b.channel[n] = pair % K;
          expect(roundCost(s, b).cost).toBeGreaterThanOrEqual(cost * (1 - 1e-9));
        }
    }
  });

  it('greedy, decomposition and swap all beat the nearest server with a random channel over 20 rounds', async () => {
    const p = twinParams();
    const mean = async (name: 'nearest' | 'greedy' | 'decomposition' | 'swap') => {
      const twin = new Twin(p, 8);
      const s = heuristicScheduler(name, 1);
      let sum = 0;
      for (let r = 0; r < 20; r++) {
        const st = twin.next();
        sum += roundCost(st, await s.assign(st)).cost;
      }
      return sum / 20;
    };
    const nearest = await mean('nearest');
    for (const name of ['greedy', 'decomposition', 'swap'] as const) expect(await mean(name), name).toBeLessThan(nearest);
  });
});
