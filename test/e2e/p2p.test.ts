import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { afterEach, expect, it } from 'vitest';
import { type P2PNode, createP2P } from '../../src/net/p2p.ts';
import { freePort } from '../../src/node/testnet.ts';

const nodes: P2PNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop();
});

async function node(o: { listen: string; bootstrap: string[]; redialMs?: number }): Promise<P2PNode> {
  const key = await generateKeyPair('Ed25519');
  const n = await createP2P({ privateKey: key, listen: [o.listen], bootstrap: o.bootstrap, networkId: 't', gossip: false, mdns: false, ipColocationPenalty: false, maxMessageBytes: 65536, redialMs: o.redialMs });
  nodes.push(n);
  return n;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A configured peer that is not up yet when we start (two miners starting together). */
async function lateStart(redialMs: number): Promise<boolean> {
  const port = await freePort();
  const lateKey = await generateKeyPair('Ed25519');
  const late = peerIdFromPrivateKey(lateKey);
  const early = await node({ listen: '/ip4/127.0.0.1/tcp/0', bootstrap: [`/ip4/127.0.0.1/tcp/${port}/p2p/${late}`], redialMs });
  await sleep(1000); // bootstrap has dialled and failed by now
  expect(early.getConnections(late)).toHaveLength(0);
  const n = await createP2P({ privateKey: lateKey, listen: [`/ip4/127.0.0.1/tcp/${port}`], bootstrap: [], networkId: 't', gossip: false, mdns: false, ipColocationPenalty: false, maxMessageBytes: 65536 });
  nodes.push(n);
  for (const until = Date.now() + 6000; Date.now() < until; await sleep(100)) if (early.getConnections(late).length > 0) return true;
  return false;
}

it('a node keeps dialling configured peers it is not connected to, so a late starter is reached', { timeout: 30_000 }, async () => {
  expect(await lateStart(300)).toBe(true);
});

it('without the redial loop the late starter stays unreached (what the loop is for)', { timeout: 30_000 }, async () => {
  expect(await lateStart(0)).toBe(false);
});

it("the transport forgets a disconnected peer: libp2p's peer store keeps an outsider's record for hours otherwise (the peer book asks this for outsiders)", async () => {
  const { Libp2pTransport } = await import('../../src/net/transport.ts');
  const a = await node({ listen: '/ip4/127.0.0.1/tcp/0', bootstrap: [] });
  const b = await node({ listen: '/ip4/127.0.0.1/tcp/0', bootstrap: [] });
  const t = new Libp2pTransport(a);
  const forgotten: Promise<void>[] = [];
  t.onDisconnect((p) => forgotten.push(t.forget(p)));
  await b.dial(a.getMultiaddrs()[0]);
  for (let i = 0; i < 20 && !(await a.peerStore.has(b.peerId)); i++) await sleep(100);
  expect(await a.peerStore.has(b.peerId)).toBe(true);
  await b.stop();
  for (let i = 0; i < 20 && forgotten.length === 0; i++) await sleep(100);
  await Promise.all(forgotten);
  expect(await a.peerStore.has(b.peerId)).toBe(false);
});
