/** Hostile peers on the network side (issue 13, items 1, 5, 7 and 8): the parts that need no sockets. */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/core/errors.ts';
import { sha256 } from '../../src/core/hash.ts';
import { decodeModelAfter, encodeModelAfter } from '../../src/net/messages.ts';

describe('a global model from a miner (model-after)', () => {
  it('NaN or an infinity in a served model is refused at decode with NON_FINITE, even when it hashes right', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const model = new Uint8Array(new Float32Array([0.5, bad, -1]).buffer);
      const bytes = encodeModelAfter({ newer: true, blockHash: new Uint8Array(32), height: 3, round: 1, modelHash: sha256(model), model });
      expect(() => decodeModelAfter(bytes, 1024)).toThrow(expect.objectContaining({ code: ErrorCode.NON_FINITE }));
    }
    const fine = new Uint8Array(new Float32Array([0.5, 3.4e38, -1]).buffer);
    expect(decodeModelAfter(encodeModelAfter({ newer: true, blockHash: new Uint8Array(32), height: 3, round: 1, modelHash: sha256(fine), model: fine }), 1024).model).toEqual(fine);
  });
});

// ---------------------------------------------------------------------------------------------
// Budgets, the penalty ledger and the peer book, on a small in-memory transport.

import { Buckets, PenaltyLedger } from '../../src/net/budget.ts';
import { PeerBook, type PeerPolicy } from '../../src/net/peer-book.ts';
import { protocols } from '../../src/net/protocols.ts';
import { Membership } from '../../src/core/params.ts';
import { generateIdentity, type Identity } from '../../src/crypto/keyfile.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { silentLogger } from '../../src/util/logger.ts';
import type { Clock } from '../../src/util/clock.ts';
import { Hub, HubTransport, testClock } from '../helpers/hub.ts';

describe('token buckets', () => {
  it('refuse past the burst, refill at the rate, and may be overdrawn once by a large charge', () => {
    const b = new Buckets(100);
    const took = Array.from({ length: 12 }, () => b.take('a', 1, 2, 10, 0));
    expect(took.filter(Boolean)).toHaveLength(10);
    expect(b.take('b', 1, 2, 10, 0)).toBe(true); // another subject is untouched
    expect(b.take('a', 1, 2, 10, 500)).toBe(true); // 0.5 s at 2/s: one token back
    expect(b.take('a', 1, 2, 10, 500)).toBe(false);
    b.charge('c', 25, 2, 10, 0); // a response bigger than the burst is served once...
    expect(b.take('c', 0, 2, 10, 1000)).toBe(false); // ...then the subject waits off its debt
    expect(b.take('c', 0, 2, 10, 8000)).toBe(true);
  });

  it('hold at most maxSubjects subjects, whatever the number of keys seen', () => {
    const b = new Buckets(50);
    for (let i = 0; i < 10_000; i++) b.take(`ip:10.0.${i >> 8}.${i & 255}`, 1, 1, 1, 0);
    expect(b.size).toBe(50);
  });
});

describe('the penalty ledger', () => {
  const o = { threshold: 100, banMs: 60_000, graceMs: 600_000, halfLifeMs: 600_000, maxSubjects: 64 };

  it('bans at the threshold for banMs; a served ban starts from zero', () => {
    const l = new PenaltyLedger(o);
    for (let i = 0; i < 9; i++) expect(l.add('x', 10, 0).banned).toBe(false);
    expect(l.add('x', 10, 1000)).toMatchObject({ banned: true, total: 100 });
    expect(l.isBanned('x', 60_999)).toBe(true);
    expect(l.isBanned('x', 61_001)).toBe(false);
    expect(l.pointsOf('x', 61_001)).toBe(0);
  });

  it('keeps the points of a steady offender; halves those of a quiet one after the grace period, then forgets them', () => {
    const l = new PenaltyLedger(o);
    l.add('slip', 20, 0);
    expect(l.pointsOf('slip', 599_000)).toBe(20);
    expect(l.pointsOf('slip', 1_200_000)).toBeCloseTo(10, 6);
    expect(l.report(1_200_000)).toEqual({ slip: 10 });
    expect(l.report(600_000 + 600_000 * 6)).toEqual({}); // 20 / 64 < 1 point: gone
    expect(l.size.penalties).toBe(0);
  });

  it('stays bounded under a flood of subjects (fresh keys, many addresses)', () => {
    const l = new PenaltyLedger(o);
    for (let i = 0; i < 5000; i++) l.add(`ip:${i}`, 100, i);
    expect(l.size.penalties + l.size.bans).toBeLessThanOrEqual(2 * o.maxSubjects);
    expect(l.isBanned('ip:4999', 5000)).toBe(true);
  });
});

const ids = {
  miner: generateIdentity('miner-1', 'miner').identity,
  honest: generateIdentity('client-1', 'client').identity,
  rogue: generateIdentity('client-2', 'client').identity,
};
const membership = new Membership(Object.values(ids).map((i) => ({ id: i.id, role: i.role, publicKey: i.publicKey })));
const verifier = new InThreadVerifier();
const settle = () => new Promise((r) => setTimeout(r, 60));

function book(hub: Hub, identity: Identity, peerId: string, ip: string, clock: Clock, policy: Partial<PeerPolicy> = {}, configuredPeers?: Map<string, string>) {
  const transport = new HubTransport(hub, peerId, ip);
  const peers = new PeerBook({ transport, identity, networkId: 'n', membership, verifier, timeoutMs: 1000, logger: silentLogger, clock, policy: { helloTimeoutMs: 200, ...policy }, configuredPeers });
  return { transport, peers };
}

describe('the peer book: who is penalised, and who is let in', () => {
  it('a banned member stays banned under a fresh libp2p key (the ban is on its member id), and its points follow it', async () => {
    const hub = new Hub();
    const clock = testClock();
    const miner = book(hub, ids.miner, 'M', '10.0.0.1', clock);
    await miner.peers.start();
    const k1 = book(hub, ids.rogue, 'R1', '10.0.0.2', clock);
    await k1.peers.start();
    hub.connect('M', 'R1');
    expect((await miner.peers.identify('R1'))?.memberId).toBe('client-2');
    for (let i = 0; i < 5; i++) miner.peers.penalise('R1', 'submit:BAD_SIGNATURE');
    // a fresh key, a newly signed peer record: the same member, the same 50 points
    const k2 = book(hub, ids.rogue, 'R2', '10.0.0.3', clock);
    await k2.peers.start();
    hub.connect('M', 'R2');
    await settle();
    expect(miner.peers.penaltyOf('R2')).toBe(50);
    for (let i = 0; i < 5; i++) miner.peers.penalise('R2', 'submit:BAD_SIGNATURE');
    expect(miner.peers.isBanned('R2')).toBe(true);
    expect(miner.transport.hungUp).toContain('R2');
    // a third key: refused at the hello, whatever it signs
    const k3 = book(hub, ids.rogue, 'R3', '10.0.0.4', clock);
    await k3.peers.start();
    hub.connect('M', 'R3');
    await settle();
    expect(miner.peers.isBanned('R3')).toBe(true);
    expect(miner.transport.hungUp).toContain('R3');
    await expect(miner.peers.admit('R3', 'chain')).rejects.toMatchObject({ code: ErrorCode.UNAUTHORIZED });
    expect(miner.peers.penaltyReport()).toEqual({ 'client-2': 100 });
    // the ban lasts banMs, then the member may come back, from zero
    clock.t += 10 * 60_000 + 1;
    expect(miner.peers.isBanned('R3')).toBe(false);
    expect(miner.peers.penaltyReport()).toEqual({});
  });

  it('an outsider is penalised by address: a ban there refuses other unknown keys from it, not a configured member behind the same address', async () => {
    const hub = new Hub();
    const clock = testClock();
    const miner = book(hub, ids.miner, 'M', '10.0.0.1', clock, {}, new Map([['H', 'client-1']]));
    await miner.peers.start();
    new HubTransport(hub, 'X1', '10.9.9.9'); // an outsider: no hello
    hub.connect('M', 'X1');
    for (let i = 0; i < 10; i++) await expect(miner.peers.admit('X1', 'chain')).rejects.toMatchObject({ code: ErrorCode.UNAUTHORIZED, action: 'REJECT' });
    for (let i = 0; i < 10; i++) miner.peers.penalise('X1', 'chain:UNAUTHORIZED');
    expect(miner.peers.penaltyReport()).toEqual({ 'ip:10.9.9.9': 100 });
    expect(miner.peers.refuses('X2', '10.9.9.9')).toBe(true); // a fresh key from the banned address
    expect(miner.peers.refuses('X3', '10.9.9.10')).toBe(false);
    expect(miner.peers.refuses('H', '10.9.9.9')).toBe(false); // client-1's configured PeerId
    expect(miner.peers.isMember('H')).toBe(true);
    expect(miner.peers.isMember('X2')).toBe(false);
    // a penalty that lands after the outsider was hung up still goes to its address
    new HubTransport(hub, 'X4', '10.8.8.8');
    hub.connect('M', 'X4');
    await miner.transport.hangUp('X4');
    miner.peers.penalise('X4', 'hello:MALFORMED');
    expect(miner.peers.penaltyReport()['ip:10.8.8.8']).toBe(10);
  });

  it('a banned address is refused before the handshake, unless a member connected from it', async () => {
    const hub = new Hub();
    const clock = testClock();
    const miner = book(hub, ids.miner, 'M', '10.0.0.1', clock);
    await miner.peers.start();
    // client-1 says hello from 10.7.7.7, a NAT that also hides an outsider
    const honest = book(hub, ids.honest, 'H', '10.7.7.7', clock);
    await honest.peers.start();
    hub.connect('M', 'H');
    expect((await miner.peers.identify('H'))?.memberId).toBe('client-1');
    for (const [peer, ip] of [['X1', '10.9.9.9'], ['X2', '10.7.7.7']]) {
      new HubTransport(hub, peer, ip);
      hub.connect('M', peer);
      for (let i = 0; i < 10; i++) miner.peers.penalise(peer, 'chain:UNAUTHORIZED');
    }
    expect(miner.peers.penaltyReport()).toMatchObject({ 'ip:10.9.9.9': 100, 'ip:10.7.7.7': 100 });
    expect(miner.peers.refusesAddress('10.9.9.9')).toBe(true);
    expect(miner.peers.refusesAddress('10.9.9.10')).toBe(false);
    // the member's address waits for the PeerId: a fresh outsider key from it is refused then
    expect(miner.peers.refusesAddress('10.7.7.7')).toBe(false);
    expect(miner.peers.refuses('X3', '10.7.7.7')).toBe(true);
    expect(miner.peers.refuses('H', '10.7.7.7')).toBe(false);
    // the ban runs out
    clock.t += 10 * 60_000 + 1;
    expect(miner.peers.refusesAddress('10.9.9.9')).toBe(false);
  });

  it('hellos from one address are rate-limited, but not a member\'s: strangers behind its NAT cannot stop it identifying us', async () => {
    const hub = new Hub();
    const clock = testClock();
    const miner = book(hub, ids.miner, 'M', '10.0.0.1', clock, {}, new Map([['H', 'client-1']]));
    await miner.peers.start();
    const codes: string[] = [];
    for (let i = 0; i < 30; i++) {
      const x = new HubTransport(hub, `X${i}`, '10.0.0.7');
      hub.connect('M', `X${i}`);
      codes.push(await x.request('M', protocols('n').hello, new Uint8Array(40).fill(i), { timeoutMs: 1000 }).then(() => 'OK', (e) => e.code));
    }
    expect(codes.slice(0, 20).filter((c) => c === ErrorCode.RATE_LIMITED || c === 'OK')).toEqual([]); // garbage: refused as such
    expect(codes.slice(20)).toEqual(Array(10).fill(ErrorCode.RATE_LIMITED));
    const honest = book(hub, ids.honest, 'H', '10.0.0.7', clock);
    await honest.peers.start();
    hub.connect('M', 'H');
    expect((await honest.peers.identify('M'))?.memberId).toBe('miner-1');
  });

  it('a peer that does not complete the hello in time is disconnected; one that does stays', async () => {
    const hub = new Hub();
    const clock = testClock();
    const miner = book(hub, ids.miner, 'M', '10.0.0.1', clock);
    await miner.peers.start();
    const staller = new HubTransport(hub, 'S', '10.0.0.5');
    staller.silent = true;
    new HubTransport(hub, 'N', '10.0.0.6'); // speaks none of our protocols
    const honest = book(hub, ids.honest, 'H', '10.0.0.7', clock);
    await honest.peers.start();
    hub.connect('M', 'S');
    hub.connect('M', 'N');
    hub.connect('M', 'H');
    await new Promise((r) => setTimeout(r, 400)); // past the 200 ms hello timeout
    expect(miner.transport.hungUp.sort()).toEqual(['N', 'S']);
    expect(miner.transport.connections()).toEqual(['H']);
    expect(miner.peers.info('H')?.memberId).toBe('client-1');
  });

  it("an outsider's record in the transport's peer store goes when its last connection closes; a member's stays", async () => {
    const hub = new Hub();
    const clock = testClock();
    const miner = book(hub, ids.miner, 'M', '10.0.0.1', clock);
    await miner.peers.start();
    new HubTransport(hub, 'X', '10.9.9.9');
    const honest = book(hub, ids.honest, 'H', '10.0.0.3', clock);
    await honest.peers.start();
    hub.connect('M', 'X');
    hub.connect('M', 'H');
    await settle();
    hub.disconnect('M', 'H');
    hub.disconnect('M', 'X');
    expect(miner.transport.forgotten).toEqual(['X']);
    expect(miner.peers.info('H')).toBeUndefined(); // the PeerId mapping goes for both
  });

  it('budgets: an outsider is refused; a member pulling in a loop is throttled (RATE_LIMITED) while another member is still served', async () => {
    const hub = new Hub();
    const clock = testClock();
    const miner = book(hub, ids.miner, 'M', '10.0.0.1', clock, { requestsPerSecond: 2, requestBurst: 5, downloadBytesPerSecond: 1000 });
    await miner.peers.start();
    const rogue = book(hub, ids.rogue, 'R', '10.0.0.2', clock);
    const honest = book(hub, ids.honest, 'H', '10.0.0.3', clock);
    await rogue.peers.start();
    await honest.peers.start();
    hub.connect('M', 'R');
    hub.connect('M', 'H');
    await settle();
    const results: string[] = [];
    for (let i = 0; i < 20; i++) results.push(await miner.peers.admit('R', 'chain').then(() => 'ok', (e) => e.code));
    expect(results.filter((r) => r === 'ok')).toHaveLength(5);
    expect(new Set(results.slice(5))).toEqual(new Set([ErrorCode.RATE_LIMITED]));
    expect(await miner.peers.admit('H', 'chain')).toMatchObject({ memberId: 'client-1' });
    expect(await miner.peers.admit('R', 'submit')).toMatchObject({ memberId: 'client-2' }); // per protocol
    // downloads: one large response is served, then the member waits it off (8 s of budget)
    clock.t += 10_000;
    miner.peers.charge('H', 20_000);
    await expect(miner.peers.admit('H', 'chain')).rejects.toMatchObject({ code: ErrorCode.RATE_LIMITED });
    clock.t += 13_000;
    expect(await miner.peers.admit('H', 'chain')).toMatchObject({ memberId: 'client-1' });
  });
});

describe('connection settings in the network config', () => {
  it('maxUnidentifiedConnections must leave members reserved slots: one BAD_CONFIG line naming the path', async () => {
    const { parseNetworkConfig } = await import('../../src/config/network.ts');
    const members = [{ id: 'miner-1', role: 'miner', publicKey: Buffer.from(ids.miner.publicKey).toString('hex') }];
    const base = { networkId: 'n', genesisTime: 0, members };
    expect(() => parseNetworkConfig({ ...base, p2p: { maxConnections: 64, maxUnidentifiedConnections: 64 } })).toThrow(/^p2p\.maxUnidentifiedConnections: expected fewer than p2p\.maxConnections \(64\)/);
    expect(() => parseNetworkConfig({ ...base, p2p: { helloTimeoutMs: 5 } })).toThrow(/^p2p\.helloTimeoutMs: expected an integer >= 100/);
    expect(parseNetworkConfig({ ...base, p2p: { maxConnections: 64, maxUnidentifiedConnections: 16 } }).p2p).toMatchObject({ maxConnections: 64, maxUnidentifiedConnections: 16, helloTimeoutMs: 5000 });
  });
});
