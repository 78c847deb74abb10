import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chainParamsOf, defaultAggregationConfig, defaultChainConfig, defaultLearningConfig, defaultP2PConfig, loadNetworkConfig, parseNetworkConfig, rulesOf } from '../../src/config/network.ts';
import { BflError } from '../../src/core/errors.ts';
import { generateIdentity, writeKeyFile } from '../../src/crypto/keyfile.ts';
import { tmpDir } from '../helpers/tmp.ts';

const EXAMPLE = new URL('../../network.example.json', import.meta.url).pathname;

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BflError);
    expect((e as BflError).code).toBe('BAD_CONFIG');
    return (e as Error).message;
  }
  throw new Error('expected BAD_CONFIG');
}

describe('network config', () => {
  it('network.example.json loads with its key files and states the defaults', async () => {
    const dir = await tmpDir('bfl-cfg-');
    await copyFile(EXAMPLE, join(dir, 'network.json'));
    await mkdir(join(dir, 'keys'));
    const ids = { 'miner-1': 'miner', 'miner-2': 'miner', 'client-1': 'client', 'client-2': 'client', 'client-3': 'client' } as const;
    const pks: Record<string, string> = {};
    for (const [id, role] of Object.entries(ids)) {
      const { json } = generateIdentity(id, role);
      pks[id] = json.publicKey;
      await writeKeyFile(join(dir, 'keys', `${id}.json`), json);
    }
    const cfg = await loadNetworkConfig(join(dir, 'network.json'));
    expect(cfg.networkId).toBe('bfl-example');
    // the example documents the defaults: loading it gives exactly them
    expect(cfg.chain).toEqual(defaultChainConfig);
    expect(cfg.aggregation).toEqual(defaultAggregationConfig);
    expect(cfg.learning).toEqual(defaultLearningConfig);
    expect(cfg.p2p).toEqual(defaultP2PConfig);
    expect(cfg.addresses.get('miner-1')).toMatchObject({ listen: '/ip4/127.0.0.1/tcp/40000', api: '127.0.0.1:41000' });
    expect(cfg.addresses.get('miner-2')!.peerId).toMatch(/^12D3KooW/);
    expect(cfg.members.map((m) => [m.id, m.role, Buffer.from(m.publicKey).toString('hex')])).toEqual(Object.entries(ids).map(([id, role]) => [id, role, pks[id]]));
    const params = chainParamsOf(cfg, new Uint8Array(8));
    expect(params.phi).toBe(10);
    expect(params.difficulty).toBe(1_000_000n);
    expect(params.rules).toBe(rulesOf(defaultAggregationConfig));
  });

  it('a missing key file is a BAD_CONFIG naming the file', async () => {
    const dir = await tmpDir('bfl-cfg-');
    await copyFile(EXAMPLE, join(dir, 'network.json'));
    await expect(loadNetworkConfig(join(dir, 'network.json'))).rejects.toThrow(/keys\/miner-1\.json/);
  });

  it('bad settings give errors that name the field', async () => {
    const pk = generateIdentity('m', 'miner').json.publicKey;
    const base = { networkId: 'n', genesisTime: 0, members: [{ id: 'miner-1', role: 'miner', publicKey: pk }] };
    expect(configError(() => parseNetworkConfig({ ...base, chain: { phi: 0 } }))).toMatch(/^chain\.phi: expected an integer >= 1/);
    expect(configError(() => parseNetworkConfig({ ...base, chain: { difficulty: '-5' } }))).toMatch(/^chain\.difficulty/);
    expect(configError(() => parseNetworkConfig({ ...base, chain: { phy: 3 } }))).toMatch(/chain\.phy: unknown setting/);
    expect(configError(() => parseNetworkConfig({ ...base, networkId: 'has space' }))).toMatch(/^networkId/);
    expect(configError(() => parseNetworkConfig({ ...base, members: [{ id: 'miner-1', role: 'boss', publicKey: pk }] }))).toMatch(/members\[0\]\.role: expected one of "miner", "client"/);
    expect(configError(() => parseNetworkConfig({ ...base, members: [{ id: 'miner-1', role: 'miner', publicKey: 'abcd' }] }))).toMatch(/members\[0\]\.publicKey: expected 1312 bytes/);
    expect(configError(() => parseNetworkConfig({ ...base, members: [{ id: 'c', role: 'client', publicKey: pk }] }))).toMatch(/at least one miner/);
    expect(configError(() => parseNetworkConfig({ ...base, members: [base.members[0], base.members[0]] }))).toMatch(/members\[1\]\.id: expected a unique id/);
    expect(configError(() => parseNetworkConfig([] as never))).toMatch(/\(root\): expected an object/);
    expect(configError(() => parseNetworkConfig({ ...base, aggregation: { aggregator: 'mean' } }))).toMatch(/aggregation\.aggregator: expected one of "bfl-mec"/);
    expect(configError(() => parseNetworkConfig({ ...base, learning: { partition: { kind: 'dirichlet' } } }))).toMatch(/learning\.partition\.alpha/);
    expect(configError(() => parseNetworkConfig({ ...base, learning: { layers: [784] } }))).toMatch(/learning\.layers: expected at least two/);
    expect(configError(() => parseNetworkConfig({ ...base, p2p: { mdns: 'yes' } }))).toMatch(/p2p\.mdns: expected true or false/);
    expect(configError(() => parseNetworkConfig({ ...base, members: [{ ...base.members[0], listen: 'localhost:4000' }] }))).toMatch(/members\[0\]\.listen/);
    expect(configError(() => parseNetworkConfig({ ...base, extra: 1 }))).toMatch(/extra: unknown setting/);
    // changing an aggregation rule changes the genesis commitment
    const a = parseNetworkConfig(base);
    const b = parseNetworkConfig({ ...base, aggregation: { eps: 0.4 } });
    expect(rulesOf(a.aggregation)).not.toBe(rulesOf(b.aggregation));
  });

  it('unreadable or non-JSON files are BAD_CONFIG', async () => {
    const dir = await tmpDir('bfl-cfg-');
    await writeFile(join(dir, 'x.json'), '{ nope');
    await expect(loadNetworkConfig(join(dir, 'x.json'))).rejects.toThrow(/not JSON/);
    await expect(loadNetworkConfig(join(dir, 'missing.json'))).rejects.toThrow(/cannot read network config/);
  });
});
