import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chainParamsOf, defaultAggregationConfig, defaultAssociationConfig, defaultChainConfig, defaultLearningConfig, defaultP2PConfig, loadNetworkConfig, parseNetworkConfig, rulesOf } from '../../src/config/network.ts';
import { BflError } from '../../src/core/errors.ts';
import { generateIdentity, writeKeyFile } from '../../src/crypto/keyfile.ts';
import { tmpDir } from '../helpers/tmp.ts';

const BIN = new URL('../../bin/bfl-node.js', import.meta.url).pathname;
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
    expect(cfg.association).toEqual(defaultAssociationConfig);
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

  it('key files that cannot be used are reported with every other problem, each at its member', async () => {
    const dir = await tmpDir('bfl-cfg-');
    const example = JSON.parse(await readFile(EXAMPLE, 'utf8'));
    await writeFile(join(dir, 'network.json'), JSON.stringify({ ...example, chain: { ...example.chain, phi: 0 } }));
    await mkdir(join(dir, 'keys'));
    // miner-1's file is fine, miner-2's is damaged, the clients' are missing
    await writeKeyFile(join(dir, 'keys', 'miner-1.json'), generateIdentity('miner-1', 'miner').json);
    await writeFile(join(dir, 'keys', 'miner-2.json'), '{ not json', { mode: 0o600 });
    const e = (await loadNetworkConfig(join(dir, 'network.json')).catch((x) => x)) as BflError;
    expect(e).toBeInstanceOf(BflError);
    expect(e.code).toBe('BAD_CONFIG');
    expect(e.message).toMatch(/^5 problems: /);
    expect(e.message).toMatch(/chain\.phi: expected an integer >= 1/);
    expect(e.message).not.toMatch(/members\[0\]/);
    expect(e.message).toMatch(/members\[1\]\.keyFile: key file \S+keys\/miner-2\.json: not JSON/);
    for (const [i, id] of [[2, 'client-1'], [3, 'client-2'], [4, 'client-3']] as const) expect(e.message).toMatch(new RegExp(`members\\[${i}\\]\\.keyFile: key file \\S+keys/${id}\\.json does not exist \\(bfl-node keygen writes one`));
  });

  it('bad settings give errors that name the field', async () => {
    const pk = generateIdentity('m', 'miner').json.publicKey;
    const base = { networkId: 'n', genesisTime: 0, members: [{ id: 'miner-1', role: 'miner', publicKey: pk }] };
    expect(configError(() => parseNetworkConfig({ ...base, chain: { phi: 0 } }))).toMatch(/^chain\.phi: expected an integer >= 1/);
    expect(configError(() => parseNetworkConfig({ ...base, chain: { difficulty: '-5' } }))).toMatch(/^chain\.difficulty/);
    expect(configError(() => parseNetworkConfig({ ...base, chain: { phy: 3 } }))).toMatch(/chain\.phy: unknown setting/);
    expect(configError(() => parseNetworkConfig({ ...base, aggregation: { stalenessDamping: -0.5 } }))).toMatch(/^aggregation\.stalenessDamping: expected a number >= 0 <= 10, got -0\.5$/);
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

  it('every problem is reported at once, each with its JSON path', () => {
    const pk = generateIdentity('m', 'miner').json.publicKey;
    const bad = {
      networkId: 'n',
      genesisTime: 0,
      chain: { phi: 0, phy: 1, difficulty: '-5' },
      learning: { layers: [784], partition: { kind: 'dirichlet' } },
      p2p: { mdns: 'yes' },
      members: [{ id: 'miner-1', role: 'miner', publicKey: pk }, { id: 'miner-1', role: 'boss', publicKey: pk }, { id: 'c', role: 'client' }],
    };
    let err: BflError | undefined;
    try {
      parseNetworkConfig(bad as never);
    } catch (e) {
      err = e as BflError;
    }
    expect(err?.code).toBe('BAD_CONFIG');
    const issues = (err!.details!.issues as { path: string }[]).map((i) => i.path);
    expect(issues.sort()).toEqual(['chain.difficulty', 'chain.phi', 'chain.phy', 'learning.layers', 'learning.partition.alpha', 'members[1].id', 'members[1].role', 'members[2]', 'p2p.mdns'].sort());
    expect(err!.message).toMatch(/^9 problems: /);
    expect(err!.message).toContain('chain.difficulty: expected a whole number >= 1 (number or decimal string), got "-5"');
    expect(err!.message).not.toContain('\n'); // one line
  });

  it('bfl-node config schema prints a JSON Schema that network.example.json satisfies and typos fail', async () => {
    const r = spawnSync(process.execPath, [BIN, 'config', 'schema'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const schema = JSON.parse(r.stdout);
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    const validate = new Ajv2020({ strict: false, allErrors: true }).compile(schema);
    const example = JSON.parse(await readFile(EXAMPLE, 'utf8'));
    expect(validate(example), JSON.stringify(validate.errors)).toBe(true);
    // the schema checks what the loader checks
    for (const [edit, where] of [
      [(x: any) => (x.chain.phy = 3), '/chain'],
      [(x: any) => (x.chain.phi = 0), '/chain/phi'],
      [(x: any) => (x.aggregation.aggregator = 'mean'), '/aggregation/aggregator'],
      [(x: any) => (x.members[0].role = 'boss'), '/members/0/role'],
      [(x: any) => delete x.networkId, ''],
    ] as const) {
      const copy = structuredClone(example);
      edit(copy);
      expect(validate(copy), where).toBe(false);
      expect(validate.errors!.map((e) => e.instancePath)).toContain(where);
    }
  });

  it('bfl-node config check lists every problem of a file on one line, exit 1', async () => {
    const file = join(await tmpDir('bfl-cfg-'), 'bad.json');
    await writeFile(file, JSON.stringify({ networkId: 'a b', genesisTime: -1, members: [] }));
    const r = spawnSync(process.execPath, [BIN, 'config', 'check', '--config', file], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: 3 problems: networkId: .*; genesisTime: expected an integer >= 0, got -1; members: expected at least one miner, got \[\] \(BAD_CONFIG\)\n$/);
  });

  it('unreadable or non-JSON files are BAD_CONFIG', async () => {
    const dir = await tmpDir('bfl-cfg-');
    await writeFile(join(dir, 'x.json'), '{ nope');
    await expect(loadNetworkConfig(join(dir, 'x.json'))).rejects.toThrow(/not JSON/);
    await expect(loadNetworkConfig(join(dir, 'missing.json'))).rejects.toThrow(/cannot read network config/);
  });
});
