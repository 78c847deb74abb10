import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BflError } from '../../src/core/errors.ts';
import { generateIdentity, loadKeyFile, writeKeyFile } from '../../src/crypto/keyfile.ts';
import { NobleMlDsa } from '../../src/crypto/mldsa.ts';
import { tmpDir } from '../helpers/tmp.ts';

async function tmp(): Promise<string> {
  return tmpDir('bfl-key-');
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(BflError);
    return (e as BflError).code;
  }
  throw new Error('expected a BflError');
}

describe('key files', () => {
  it('writes mode 0600 with id, role, algorithm, public key and seed; loads back to the same key', async () => {
    const dir = await tmp();
    const file = join(dir, 'k.json');
    const { identity, json } = generateIdentity('client-7', 'client');
    await writeKeyFile(file, json);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const j = JSON.parse(await readFile(file, 'utf8'));
    expect(j).toMatchObject({ id: 'client-7', role: 'client', algorithm: 'ML-DSA-44', secretKeyFormat: 'fips204-seed' });
    expect(j.publicKey).toHaveLength(1312 * 2);
    expect(j.secretKey).toHaveLength(64);
    const loaded = await loadKeyFile(file);
    expect(Buffer.from(loaded.publicKey)).toEqual(Buffer.from(identity.publicKey));
    // the loaded key signs what the other implementation verifies
    const m = new Uint8Array([1, 2, 3]);
    expect(new NobleMlDsa().verify(loaded.publicKey, m, loaded.key.sign(m, 'bfl/peer/v1'), 'bfl/peer/v1')).toBe(true);
  });

  it('refuses to overwrite unless forced', async () => {
    const file = join(await tmp(), 'k.json');
    await writeKeyFile(file, generateIdentity('a', 'miner').json);
    const before = await readFile(file, 'utf8');
    expect(await code(writeKeyFile(file, generateIdentity('b', 'miner').json))).toBe('BAD_KEY_FILE');
    expect(await readFile(file, 'utf8')).toBe(before);
    await writeKeyFile(file, generateIdentity('b', 'miner').json, { force: true });
    expect(JSON.parse(await readFile(file, 'utf8')).id).toBe('b');
  });

  it('rejects damaged, foreign and loose-permission files with BAD_KEY_FILE', async () => {
    const dir = await tmp();
    const good = generateIdentity('m1', 'miner').json;
    const cases: [string, string][] = [
      ['not json', '{oops'],
      ['wrong algorithm', JSON.stringify({ ...good, algorithm: 'ML-DSA-65' })],
      ['bad role', JSON.stringify({ ...good, role: 'king' })],
      ['bad id', JSON.stringify({ ...good, id: 'has space' })],
      ['short seed', JSON.stringify({ ...good, secretKey: good.secretKey.slice(2) })],
      ['edited public key', JSON.stringify({ ...good, publicKey: 'ab' + good.publicKey.slice(2) })],
    ];
    for (const [name, text] of cases) {
      const f = join(dir, name.replace(/ /g, '-'));
      await writeFile(f, text, { mode: 0o600 });
      expect(await code(loadKeyFile(f)), name).toBe('BAD_KEY_FILE');
    }
    const loose = join(dir, 'loose.json');
    await writeFile(loose, JSON.stringify(good));
    await chmod(loose, 0o644);
    expect(await code(loadKeyFile(loose))).toBe('BAD_KEY_FILE');
    expect(await code(loadKeyFile(join(dir, 'missing.json')))).toBe('BAD_KEY_FILE');
  });
});
