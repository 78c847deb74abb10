import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ChainStore } from '../../src/chain/store.ts';
import { main } from '../../src/cli/main.ts';
import { isBflError } from '../../src/core/errors.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { type FederationTraffic, federationInstance, pairKeyRate, placeMiners, readFederationTraffic } from '../../src/qkd/demand.ts';
import type { Topology } from '../../src/qkd/model.ts';
import { makeNetwork, mineBlock, nextAggregation, signedRecord } from '../helpers/network.ts';
import { tmpDir } from '../helpers/tmp.ts';

const line: Topology = {
  name: 'line',
  nodes: ['A', 'B', 'C', 'D'],
  links: [
    { a: 'A', b: 'B', km: 100 },
    { a: 'B', b: 'C', km: 400 },
    { a: 'C', b: 'D', km: 170 },
  ],
};

/** A chain of 3 miners, ϕ = 2, one record per block a second apart: aggregations at heights 2, 4, 6. */
async function chainDir(): Promise<string> {
  const net = makeNetwork({ miners: 3, phi: 2, modelFloats: 8 });
  const dir = await tmpDir('bfl-qkd-');
  // laid out as the daemon does: the store in DATADIR/chain
  const store = await ChainStore.open({ datadir: join(dir, 'chain'), params: net.params, signatures: new InThreadVerifier(), now: () => net.params.genesisTime + 60_000 });
  let p = store.tip;
  for (let i = 0; i < 6; i++) {
    const r = [signedRecord(net, net.clients[i % net.clients.length], net.miners[i % 3].id, p.modelHash)];
    const res = await store.addBlock(mineBlock(net, p, net.miners[i % 3], { records: r, aggregation: nextAggregation(net, p, r), timestamp: net.params.genesisTime + (i + 1) * 1000 }));
    expect(res.status).toBe('connected');
    p = store.tip;
  }
  await store.close();
  return dir;
}

const traffic = (o: Partial<FederationTraffic> = {}): FederationTraffic => ({
  networkId: 'n',
  miners: ['m1', 'm2', 'm3'],
  modelParameters: 8,
  modelBytes: 32,
  height: 6,
  aggregations: 3,
  updatesPerAggregation: 2,
  aggregationIntervalSeconds: 2,
  ...o,
});

describe('key-rate demand from a federation', () => {
  it('reads model size, aggregation frequency and miners from the chain', async () => {
    const dir = await chainDir();
    const t = await readFederationTraffic(dir);
    expect(t).toMatchObject({ networkId: 'test-net', miners: ['miner-1', 'miner-2', 'miner-3'], modelParameters: 8, modelBytes: 32, height: 6, aggregations: 3, updatesPerAggregation: 2 });
    expect(t.aggregationIntervalSeconds).toBeCloseTo(2, 12); // 6 s from genesis to the 3rd aggregation
    // the store directory itself works too
    expect((await readFederationTraffic(join(dir, 'chain'))).aggregations).toBe(3);
  });

  it('key rate per miner pair, by hand', () => {
    // 8 bits · 32 bytes · (2 updates + 1 model) · 2/3 of them per pair / 2 s = 256 bit/s
    expect(pairKeyRate(traffic())).toBeCloseTo(256, 9);
    // summed over the 3 pairs: 8 · 32 · 3 · (M − 1) / 2 = 768 = model size × frequency × miners
    expect(3 * pairKeyRate(traffic())).toBeCloseTo(8 * 32 * 3 * 2 / 2, 9);
  });

  it('one request per miner pair; scenario ω scales the measured rate by ω/λ', () => {
    const { instance, meanLinks } = federationInstance(line, traffic(), { linkKeyRate: 100, scenarios: 10 });
    expect(instance.requests).toEqual([{ source: 'A', destination: 'B' }, { source: 'A', destination: 'C' }, { source: 'B', destination: 'C' }]);
    expect(meanLinks).toBeCloseTo(2.56, 9);
    // λ = 3: ρ(ω) = ⌈ω/3 · 2.56⌉
    expect(instance.demand[0]).toEqual([0, 1, 2, 3, 4, 5, 6, 6, 7, 8]);
    expect(instance.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('placement of miners: spread evenly or as listed, with clear errors', () => {
    expect([...placeMiners(['x', 'y'], line).values()]).toEqual(['A', 'C']);
    expect([...placeMiners(['x', 'y'], line, ['D', 'B']).values()]).toEqual(['D', 'B']);
    for (const nodes of [['A'], ['A', 'Z'], ['A', 'A']]) expect(() => placeMiners(['x', 'y'], line, nodes)).toThrow(/--miner-nodes/);
    expect(() => placeMiners(['a', 'b', 'c', 'd', 'e'], line)).toThrow(/do not fit/);
  });

  it('refuses a network it cannot plan for, saying why', async () => {
    const codeOf = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isBflError(e) ? e.code : 'other';
      }
      return 'none';
    };
    expect(codeOf(() => federationInstance(line, traffic({ miners: ['m1'] })))).toBe('BAD_CONFIG');
    expect(codeOf(() => federationInstance(line, traffic({ aggregations: 0, aggregationIntervalSeconds: NaN })))).toBe('DATA_NOT_FOUND');
    await expect(readFederationTraffic('/nonexistent/datadir')).rejects.toMatchObject({ code: 'DATA_NOT_FOUND' });
    // an existing directory without a store is refused, and left as it was (no store created)
    const empty = await tmpDir('bfl-qkd-empty-');
    await expect(readFederationTraffic(empty)).rejects.toMatchObject({ code: 'DATA_NOT_FOUND' });
    expect(await readdir(empty)).toEqual([]);
  });
});

describe('bfl-node plan qkd', () => {
  let out = '';
  let err = '';
  const run = async (args: string[]) => {
    out = '';
    err = '';
    const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
    const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
    try {
      return await main(args);
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
  };
  afterEach(() => vi.restoreAllMocks());

  it('plans a user topology file and prints the three methods as JSON', async () => {
    const file = join(await tmpDir('bfl-qkd-'), 'topo.json');
    await writeFile(file, JSON.stringify(line));
    expect(await run(['plan', 'qkd', '--topology', file, '--requests', '4', '--scenarios', '4', '--json'])).toBe(0);
    const j = JSON.parse(out);
    expect(j).toMatchObject({ topology: 'line', nodes: 4, links: 3, requests: 4, scenarios: 4 });
    for (const m of ['sip', 'evf', 'random']) {
      expect(j.methods[m].status).toBe('optimal');
      expect(j.methods[m].totalCost).toBeCloseTo(j.methods[m].firstStageCost + j.methods[m].secondStageCost, 4);
      expect(j.methods[m].totalCost).toBeGreaterThanOrEqual(j.methods.sip.totalCost - 1e-6);
      expect(typeof j.methods[m].solveMs).toBe('number');
    }
  });

  it('--from-chain sizes the backbone for the miners of a stored chain', async () => {
    const dir = await chainDir();
    expect(await run(['plan', 'qkd', '--topology', 'nsfnet', '--from-chain', dir, '--link-key-rate', '100', '--method', 'sip', '--json'])).toBe(0);
    const j = JSON.parse(out);
    expect(j.requests).toBe(3);
    expect(j.demand).toMatchObject({ miners: ['miner-1', 'miner-2', 'miner-3'], modelParameters: 8, aggregations: 3 });
    expect(j.demand.pairKeyRateBitsPerSecond).toBeCloseTo(256, 6);
    expect(Object.keys(j.methods)).toEqual(['sip']);
    expect(j.methods.sip.totalCost).toBeGreaterThan(0);
  });

  it('--from-chain on the datadir of a running node (its store locked) says so (exit 1)', async () => {
    const dir = await chainDir();
    const held = await ChainStore.open({ datadir: join(dir, 'chain'), signatures: new InThreadVerifier(), readOnly: true });
    try {
      expect(await run(['plan', 'qkd', '--from-chain', dir, '--method', 'sip'])).toBe(1);
      expect(err).toMatch(/locked by a running node.*STORE_LOCKED/);
    } finally {
      await held.close();
    }
  });

  it('bad flags are usage errors (exit 2); a bad topology file fails with its reason (exit 1)', async () => {
    expect(await run(['plan', 'qkd', '--method', 'cheapest'])).toBe(2);
    expect(err).toMatch(/unknown method cheapest/);
    expect(await run(['plan', 'qkd', '--routing', 'teleport'])).toBe(2);
    expect(await run(['plan', 'qkd', '--requests', '0'])).toBe(2);
    expect(await run(['plan', 'qkd', '--miner-nodes', 'A,B'])).toBe(2);
    expect(err).toMatch(/--miner-nodes needs --from-chain/);
    expect(await run(['plan', 'qkd', '--topology', '/nonexistent.json'])).toBe(1);
    expect(err).toMatch(/cannot read topology .*BAD_CONFIG/);
  });
});
