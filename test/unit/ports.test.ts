import { type Server, createServer, connect } from 'node:net';
import { afterAll, expect, it } from 'vitest';
import { ephemeralRange, freePort } from '../../src/node/testnet.ts';

const servers: Server[] = [];
afterAll(() => servers.forEach((s) => s.close()));
const listen = (port: number) =>
  new Promise<Server>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => (servers.push(s), resolve(s)));
  });

it('testnet ports lie outside the range outgoing connections take their local ports from, and are free', async () => {
  const [lo, hi] = ephemeralRange();
  for (let i = 0; i < 20; i++) {
    const p = await freePort();
    expect(p < lo || p > hi, `${p} in ${lo}-${hi}`).toBe(true);
    await listen(p); // free: binds
  }
  // an outgoing connection's local port is ephemeral: the reason for the range above
  const target = servers[0].address() as { port: number };
  const sock = connect(target.port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  expect(sock.localPort! >= lo && sock.localPort! <= hi).toBe(true);
  sock.destroy();
});

it('a taken port is skipped, and so are ports already handed out', async () => {
  const busy = (await listen(0).then((s) => s.address())) as { port: number };
  const from = busy.port;
  // with the search confined to [busy, busy + 2), the busy port is never the answer
  for (let i = 0; i < 5; i++) expect(await freePort({ from, to: from + 2 })).toBe(from + 1);
  await expect(freePort({ from, to: from + 2, exclude: new Set([from + 1]) })).rejects.toThrow(/no free TCP port/);
});
