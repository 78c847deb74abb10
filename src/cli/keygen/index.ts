import { basename, extname } from 'node:path';
import { Command, Option } from 'commander';
import { ID_PATTERN } from '../../core/bytes.ts';
import type { Role } from '../../core/types.ts';
import { generateIdentity, withPeerKey, writeKeyFile } from '../../crypto/keyfile.ts';
import { isBflError } from '../../core/errors.ts';
import { pathError } from '../datadir.ts';
import { UsageError } from '../exit.ts';
import { print, printJson } from '../output.ts';

export function keygenCommand(): Command {
  return new Command('keygen')
    .description('generate an ML-DSA-44 (FIPS 204) identity and a libp2p peer key; write them to a key file with mode 0600')
    .requiredOption('--out <file>', 'key file to write')
    .addOption(new Option('--role <role>', 'what the key is for').choices(['miner', 'client']).default('client'))
    .option('--id <name>', `identity name, ${ID_PATTERN.source} (default: the file name without extension)`)
    .option('--force', 'overwrite an existing key file', false)
    .option('--json', 'print the result as JSON', false)
    .action(async (o: { out: string; role: Role; id?: string; force: boolean; json: boolean }) => {
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
