import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ChainStore } from '../../src/chain/store.ts';
import { verifyChain } from '../../src/chain/verify.ts';
import { paramsToJson } from '../../src/core/params.ts';
import { generateIdentity } from '../../src/crypto/keyfile.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { makeNetwork } from '../helpers/network.ts';
import { tmpDir } from '../helpers/tmp.ts';

const WRITER = new URL('./fixtures/crash-writer.ts', import.meta.url).pathname;

function startWriter(datadir: string, spec: string): { child: ChildProcess; acks: [number, string][]; opened: Promise<void> } {
  const child = spawn(process.execPath, [WRITER, datadir, spec], { stdio: ['ignore', 'pipe', 'pipe'] });
  const acks: [number, string][] = [];
  let buf = '';
  let stderr = '';
  let onOpen!: () => void;
  const opened = new Promise<void>((res) => (onOpen = res));
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout!.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const [kind, h, hash] = line.split(' ');
      if (kind === 'OPEN') onOpen();
      if (kind === 'ACK') acks.push([Number(h), hash]);
    }
  });
  child.on('exit', (code, signal) => {
    if (signal !== 'SIGKILL') onOpen(), expect.fail(`writer exited on its own (code ${code}): ${stderr}`);
  });
  return { child, acks, opened };
}

it('a writer killed with SIGKILL at random moments loses nothing it acknowledged', async () => {
  const dir = await tmpDir('bfl-crash-');
  const datadir = join(dir, 'chain');
  const net = makeNetwork({ miners: 1, clients: 3, phi: 3, difficulty: 32n, now: Date.now() - 60_000 });
  // the child needs the secret keys: regenerate identities whose key files we can hand over
  const miner = generateIdentity('miner-1', 'miner');
  const clients = [1, 2, 3].map((i) => generateIdentity(`client-${i}`, 'client'));
  net.params.members = [miner, ...clients].map(({ identity: m }) => ({ id: m.id, role: m.role, publicKey: m.publicKey }));
  const spec = join(dir, 'network.json');
  await writeFile(spec, JSON.stringify({ params: paramsToJson(net.params), miner: miner.json, clients: clients.map((c) => c.json) }));

  const acked = new Map<number, string>();
  const rounds = 6;
  for (let round = 0; round < rounds; round++) {
    const w = startWriter(datadir, spec);
    await w.opened;
    await new Promise((r) => setTimeout(r, 100 + Math.floor(Math.random() * 500)));
    w.child.kill('SIGKILL');
    await new Promise((r) => w.child.once('exit', r));
    for (const [h, hash] of w.acks) acked.set(h, hash);

    const report = await verifyChain(datadir, new InThreadVerifier());
    expect(report.valid, JSON.stringify(report.error)).toBe(true);
    const store = await ChainStore.open({ datadir, signatures: new InThreadVerifier() });
    try {
      for (const [h, hash] of acked) expect(await store.hashAt(h)).toBe(hash);
      expect(store.tip.height).toBeGreaterThanOrEqual(Math.max(0, ...acked.keys()));
    } finally {
      await store.close();
    }
  }
  // the test is only meaningful if the writer got work done between kills
  expect(acked.size).toBeGreaterThan(rounds);
});
