/**
 * Pipelined frames on one long-lived stream (net/frames.ts) over real libp2p: order, the same
 * error codes and onError as request-response, a bad frame does not end the stream, an oversized
 * frame and a slow frame do, an idle stream closes without blame, and the member gate.
 */
import { MessageChannel } from 'node:worker_threads';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { afterEach, describe, expect, it } from 'vitest';
import { BflError, ErrorCode } from '../../src/core/errors.ts';
import { FrameChannel, FrameReader, type FrameServeOptions, recycleFrameBuffer, serveFrames, takeFrameBuffer } from '../../src/net/frames.ts';
import { type P2PNode, createP2P } from '../../src/net/p2p.ts';
import { RemoteError } from '../../src/net/reqres.ts';

const nodes: P2PNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop();
});

async function pair(): Promise<[P2PNode, P2PNode]> {
  const make = async () => {
    const n = await createP2P({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], networkId: 't', gossip: false, mdns: false, ipColocationPenalty: false, maxMessageBytes: 65536 });
    nodes.push(n);
    return n;
  };
  const [a, b] = [await make(), await make()];
  await a.dial(b.getMultiaddrs()[0]);
  return [a, b];
}

const P = '/t/frames/1';
const serveOpts = (o: Partial<FrameServeOptions> = {}): FrameServeOptions => ({ maxRequestBytes: 1 << 20, timeoutMs: 5000, maxInFlight: 4, idleMs: 10_000, maxStreams: 2, ...o });
const codeOf = (e: unknown) => (e instanceof RemoteError ? e.code : `local:${(e as Error).message}`);
const until = async (f: () => boolean, ms = 5000) => {
  for (const end = Date.now() + ms; !f() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
};

describe('FrameReader', () => {
  it('splits frames across any chunking, with multi-byte prefixes and empty frames', () => {
    const frames = [new Uint8Array(300).map((_, i) => i), new Uint8Array(0), Uint8Array.of(7), new Uint8Array(20_000).fill(9)];
    const wire: number[] = [];
    for (const f of frames) {
      for (let n = f.length; ; n = Math.floor(n / 128)) {
        wire.push(n >= 128 ? (n % 128) | 128 : n);
        if (n < 128) break;
      }
      wire.push(...f);
    }
    const bytes = Uint8Array.from(wire);
    for (const step of [1, 2, 3, 301, 5000, bytes.length]) {
      const out: Uint8Array[] = [];
      const r = new FrameReader(1 << 20);
      for (let i = 0; i < bytes.length; i += step) r.push(bytes.subarray(i, i + step), (f) => out.push(f.slice()));
      expect(out.map((f) => Buffer.from(f).toString('hex'))).toEqual(frames.map((f) => Buffer.from(f).toString('hex')));
      expect(r.partial).toBe(false);
    }
  });

  it('refuses a length above the limit (OVERSIZED) from the prefix alone, and a prefix that never ends (MALFORMED)', () => {
    expect(() => new FrameReader(1000).push(Uint8Array.of(0xe9, 0x07), () => undefined)).toThrow(expect.objectContaining({ code: ErrorCode.OVERSIZED }));
    expect(() => new FrameReader(2 ** 40).push(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x01), () => undefined)).toThrow(expect.objectContaining({ code: ErrorCode.MALFORMED }));
  });
});

describe('serveFrames and FrameChannel', () => {
  it('a handler may take its frame\'s buffer (to transfer it): the server then never reuses it, and a buffer given back serves later frames', { timeout: 30_000 }, async () => {
    const [a, b] = await pair();
    const seen: { taken: boolean; buffer: ArrayBuffer }[] = [];
    const { port1, port2 } = new MessageChannel();
    await serveFrames(
      b,
      P,
      async (req) => {
        const sum = req.reduce((x, y) => x + y, 0);
        const first = req[0];
        // odd frames are taken and transferred away (as the intake does to the verifier's worker)
        const taken = first % 2 === 1 ? takeFrameBuffer(req) : undefined;
        if (taken) {
          expect(takeFrameBuffer(req)).toBeUndefined(); // once only
          port1.postMessage(taken, [taken]);
          expect(req.byteLength).toBe(0); // detached: the frame's view is gone with it
        }
        seen.push({ taken: taken !== undefined, buffer: req.buffer as ArrayBuffer });
        return Uint8Array.of(first, sum & 0xff);
      },
      serveOpts(),
    );
    const back: ArrayBuffer[] = [];
    port2.on('message', (data: ArrayBuffer) => back.push(data));
    const ch = new FrameChannel(a, b.peerId, P, { maxResponseBytes: 100, timeoutMs: 5000, maxInFlight: 4 });
    const frame = (i: number) => new Uint8Array(50_000).fill(i);
    const sums = (i: number) => (i * 50_000) & 0xff;
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => ch.send(frame(i))));
    expect(answers.map((r) => [...r])).toEqual(Array.from({ length: 12 }, (_, i) => [i, sums(i)]));
    // a request's bytes that are no frame's are never handed out
    expect(takeFrameBuffer(new Uint8Array(8))).toBeUndefined();
    // the transferred buffers arrived whole; given back, the next frames are read into them
    await until(() => back.length === 6);
    expect(back.map((x) => x.byteLength)).toEqual(Array(6).fill(50_000));
    for (const x of back) recycleFrameBuffer(x);
    const before = seen.length;
    // even frames only (kept by the server): the spare buffers go round, the given-back ones among them
    const again = await Promise.all(Array.from({ length: 16 }, (_, i) => ch.send(frame(2 * i))));
    expect(again.map((r) => [...r])).toEqual(Array.from({ length: 16 }, (_, i) => [2 * i, sums(2 * i)]));
    const used = new Set(seen.slice(before).map((x) => x.buffer));
    expect(back.filter((x) => used.has(x)).length).toBeGreaterThan(0);
    // never a buffer that was taken (it is detached: a frame read into it would have thrown)
    expect(seen.slice(before).every((x) => x.buffer.byteLength > 0)).toBe(true);
    await ch.close();
    port1.close();
  });

  it('answers pipelined frames in order, at most maxInFlight handled at once; a refused frame keeps its code and the stream goes on', { timeout: 30_000 }, async () => {
    const [a, b] = await pair();
    let now = 0;
    let most = 0;
    const refused: string[] = [];
    await serveFrames(
      b,
      P,
      async (req) => {
        most = Math.max(most, ++now);
        await new Promise((r) => setTimeout(r, 5 + (req[0] % 3) * 10)); // later frames may finish first
        now--;
        if (req[0] === 13) throw new BflError(ErrorCode.BAD_SIGNATURE, 'frame 13 is bad');
        return Uint8Array.of(req[0], req.length & 0xff);
      },
      serveOpts({ onError: (_p, e) => refused.push((e as BflError).code) }),
    );
    const ch = new FrameChannel(a, b.peerId, P, { maxResponseBytes: 1024, timeoutMs: 5000, maxInFlight: 4 });
    // sizes vary, so reused receive buffers must be cut to each frame's own length
    const sizes = [70_000, 10, 300_000, 1, 5000];
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => ch.send(new Uint8Array(sizes[i % sizes.length]).fill(i)).then((r) => [...r], codeOf)));
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => (i === 13 ? ErrorCode.BAD_SIGNATURE : [i, sizes[i % sizes.length] & 0xff])));
    expect(refused).toEqual([ErrorCode.BAD_SIGNATURE]);
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(4);
    await ch.close();
  });

  it('an oversized frame is OVERSIZED, penalised through onError, and ends the stream; the next send opens a new one', { timeout: 30_000 }, async () => {
    const [a, b] = await pair();
    const refused: string[] = [];
    await serveFrames(b, P, async (req) => req.subarray(0, 1), serveOpts({ maxRequestBytes: 1000, onError: (_p, e) => refused.push((e as BflError).code) }));
    const ch = new FrameChannel(a, b.peerId, P, { maxResponseBytes: 1024, timeoutMs: 5000, maxInFlight: 4 });
    expect([...(await ch.send(Uint8Array.of(1, 2)))]).toEqual([1]);
    expect(await ch.send(new Uint8Array(2000)).catch(codeOf)).toBe(ErrorCode.OVERSIZED);
    expect(refused).toEqual([ErrorCode.OVERSIZED]);
    await until(() => a.getConnections()[0]?.streams.every((s) => s.protocol !== P) ?? true);
    expect([...(await ch.send(Uint8Array.of(5, 6)))]).toEqual([5]);
    await ch.close();
  });

  it('a frame not completed in time is UNAVAILABLE (IGNORE: no penalty for slow peers) and ends the stream', { timeout: 30_000 }, async () => {
    const [a, b] = await pair();
    const refused: { code?: string; action?: string }[] = [];
    await serveFrames(b, P, async (req) => req, serveOpts({ timeoutMs: 300, onError: (_p, e) => refused.push(e as never) }));
    const stream = await a.dialProtocol(b.peerId, P);
    stream.send(Uint8Array.of(0xe8, 0x07, 1, 2, 3)); // a length prefix of 1000, then 3 bytes, then nothing
    await until(() => refused.length > 0 && stream.status !== 'open');
    expect(refused).toMatchObject([{ code: ErrorCode.UNAVAILABLE, action: 'IGNORE' }]);
    expect(stream.status).not.toBe('open');
  });

  it('a stream idle between frames is closed without blame; the channel reopens on its next send', { timeout: 30_000 }, async () => {
    const [a, b] = await pair();
    const refused: unknown[] = [];
    await serveFrames(b, P, async (req) => req, serveOpts({ idleMs: 200, onError: (_p, e) => refused.push(e) }));
    const ch = new FrameChannel(a, b.peerId, P, { maxResponseBytes: 1024, timeoutMs: 5000, maxInFlight: 4 });
    expect([...(await ch.send(Uint8Array.of(1)))]).toEqual([1]);
    await until(() => (a.getConnections()[0]?.streams.filter((s) => s.protocol === P).length ?? 0) === 0, 3000);
    expect(a.getConnections()[0].streams.filter((s) => s.protocol === P)).toEqual([]);
    expect([...(await ch.send(Uint8Array.of(2)))]).toEqual([2]);
    expect(refused).toEqual([]);
    await ch.close();
  });

  it('the gate refuses a stream before any frame is read, with its code', { timeout: 30_000 }, async () => {
    const [a, b] = await pair();
    let handled = 0;
    const refused: string[] = [];
    await serveFrames(
      b,
      P,
      async (req) => {
        handled++;
        return req;
      },
      serveOpts({
        gate: async () => {
          throw new BflError(ErrorCode.UNAUTHORIZED, 'members only');
        },
        onError: (_p, e) => refused.push((e as BflError).code),
      }),
    );
    const ch = new FrameChannel(a, b.peerId, P, { maxResponseBytes: 1024, timeoutMs: 5000, maxInFlight: 4 });
    expect(await ch.send(new Uint8Array(100)).catch(codeOf)).toBe(ErrorCode.UNAUTHORIZED);
    expect(handled).toBe(0);
    expect(refused).toEqual([ErrorCode.UNAUTHORIZED]);
  });
});
