/**
 * Frame limits end to end over real libp2p (issue 13, item 8): what our protocols allow
 * (maxUpdateBytes + headroom, maxBlockBytes) must also pass libp2p's stream buffers, whose
 * default is 4 MiB.
 */
import { generateKeyPair } from '@libp2p/crypto/keys';
import { afterEach, expect, it } from 'vitest';
import { ErrorCode } from '../../src/core/errors.ts';
import { type P2PNode, createP2P } from '../../src/net/p2p.ts';
import { request, serve } from '../../src/net/reqres.ts';

const nodes: P2PNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop();
});

async function node(maxFrameBytes: number): Promise<P2PNode> {
  const n = await createP2P({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], networkId: 't', gossip: false, mdns: false, ipColocationPenalty: false, maxMessageBytes: 65536, maxFrameBytes });
  nodes.push(n);
  return n;
}

const MiB = 1024 * 1024;

it('a 6 MiB request and a 6 MiB response pass when the frame limit allows them (above libp2p\'s 4 MiB default)', { timeout: 30_000 }, async () => {
  const [a, b] = [await node(8 * MiB), await node(8 * MiB)];
  const errors: string[] = [];
  await serve(b, '/t/echo', async (req) => req.map((x) => x ^ 0xff), { maxRequestBytes: 7 * MiB, timeoutMs: 20_000, onError: (_p, e) => errors.push((e as Error).message) });
  await a.dial(b.getMultiaddrs()[0]);
  const body = new Uint8Array(6 * MiB).map((_, i) => i & 0xff);
  const res = await request(a, b.peerId, '/t/echo', body, { maxResponseBytes: 7 * MiB, timeoutMs: 20_000 });
  expect(errors).toEqual([]);
  expect(res.length).toBe(body.length);
  expect(res[12345]).toBe((12345 & 0xff) ^ 0xff);
});

it('a request above the protocol limit is OVERSIZED (refused by its length prefix), not MALFORMED', { timeout: 30_000 }, async () => {
  const [a, b] = [await node(8 * MiB), await node(8 * MiB)];
  const codes: string[] = [];
  await serve(b, '/t/echo', async (req) => req, { maxRequestBytes: 1 * MiB, timeoutMs: 20_000, onError: (_p, e) => codes.push((e as { code?: string }).code ?? 'none') });
  await a.dial(b.getMultiaddrs()[0]);
  await expect(request(a, b.peerId, '/t/echo', new Uint8Array(2 * MiB), { maxResponseBytes: 1024, timeoutMs: 20_000 })).rejects.toMatchObject({ code: ErrorCode.OVERSIZED });
  expect(codes).toEqual([ErrorCode.OVERSIZED]);
});

it('a requester that resets its stream mid-request is UNAVAILABLE (IGNORE), not MALFORMED: honest peers give up too', { timeout: 30_000 }, async () => {
  const [a, b] = [await node(8 * MiB), await node(8 * MiB)];
  const errors: { code?: string; action?: string }[] = [];
  await serve(b, '/t/echo', async (req) => req, { maxRequestBytes: 1 * MiB, timeoutMs: 20_000, onError: (_p, e) => errors.push(e as never) });
  await a.dial(b.getMultiaddrs()[0]);
  const stream = await a.dialProtocol(b.peerId, '/t/echo');
  stream.send(Uint8Array.of(0xe8, 0x07, 1, 2, 3)); // a length prefix of 1000, then 3 bytes
  await new Promise((r) => setTimeout(r, 100));
  stream.abort(new Error('requester gave up'));
  for (const until = Date.now() + 5000; errors.length === 0 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 50));
  expect(errors).toMatchObject([{ code: ErrorCode.UNAVAILABLE, action: 'IGNORE' }]);
});
