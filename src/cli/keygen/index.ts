import { basename, extname } from 'node:path';
import { Command, Option } from 'commander';
import { ID_PATTERN } from '../../core/bytes.ts';
import type { Role } from '../../core/types.ts';
import { generateIdentity, rotateKemInKeyFile, withPeerKey, writeKeyFile } from '../../crypto/keyfile.ts';
import { DEFAULT_ROTATION_OVERLAP_MS } from '../../crypto/kem-keys.ts';
import { parseNumberFlag } from '../exit.ts';
import { isBflError } from '../../core/errors.ts';
import { pathError } from '../datadir.ts';
import { UsageError } from '../exit.ts';
import { print, printJson } from '../output.ts';

export function keygenCommand(): Command {
  return new Command('keygen')
    .description('generate an ML-DSA-44 (FIPS 204) identity, a libp2p peer key and, for miners, an ML-KEM-768 (FIPS 203) key; write them to a key file with mode 0600')
    .requiredOption('--out <file>', 'key file to write')
    .addOption(new Option('--role <role>', 'what the key is for').choices(['miner', 'client']).default('client'))
    .option('--id <name>', `identity name, ${ID_PATTERN.source} (default: the file name without extension)`)
    .option('--force', 'overwrite an existing key file', false)
    .option('--rotate-kem', "instead: add a fresh ML-KEM-768 key to the miner's existing key file --out; the older keys stay accepted for --kem-overlap-min", false)
    .option('--kem-valid-days <d>', 'with --rotate-kem: validity of the new key (default: no end)', parseNumberFlag('--kem-valid-days', 0.001, 36_500))
    .option('--kem-overlap-min <m>', 'with --rotate-kem: minutes the older keys stay accepted', parseNumberFlag('--kem-overlap-min', 0, 525_600), DEFAULT_ROTATION_OVERLAP_MS / 60_000)
    .option('--json', 'print the result as JSON', false)
    .action(async (o: { out: string; role: Role; id?: string; force: boolean; rotateKem: boolean; kemValidDays?: number; kemOverlapMin: number; json: boolean }) => {
      if (o.rotateKem) {
        const { key } = await rotateKemInKeyFile(o.out, Date.now(), { validForMs: o.kemValidDays && o.kemValidDays * 86_400_000, overlapMs: o.kemOverlapMin * 60_000 });
        const summary = { file: o.out, kemPublicKey: Buffer.from(key.publicKey).toString('hex'), notBefore: key.notBefore, notAfter: Number.isSafeInteger(key.notAfter) && key.notAfter < Number.MAX_SAFE_INTEGER ? key.notAfter : null };
        if (o.json) printJson(summary);
        else print(`rotated the ML-KEM-768 key of ${o.out}: new key ${summary.kemPublicKey.slice(0, 16)}… valid from ${new Date(key.notBefore).toISOString()}${summary.notAfter ? ` to ${new Date(summary.notAfter).toISOString()}` : ''}; restart the miner to announce it`);
        return;
      }
      const id = o.id ?? basename(o.out, extname(o.out));
      if (!ID_PATTERN.test(id)) throw new UsageError(`identity name "${id}" must match ${ID_PATTERN} (pass --id)`);
      const json = await withPeerKey(generateIdentity(id, o.role).json);
      await writeKeyFile(o.out, json, { force: o.force }).catch((e) => {
        throw isBflError(e) ? e : pathError(e, o.out, '--out', 'key file');
      });
      const summary = { file: o.out, id, role: o.role, algorithm: json.algorithm, publicKey: json.publicKey, peerId: json.peerId };
      if (o.json) printJson(summary);
      else print(`wrote ${o.out}: ${o.role} "${id}", ${json.algorithm}, public key ${json.publicKey.slice(0, 16)}… (${json.publicKey.length / 2} bytes)`);
    });
}
