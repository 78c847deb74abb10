/**
 * Pipelined frames on one long-lived libp2p stream (issue 12, update ingestion): the requests
 * of a protocol like `submit`, each length-prefixed as reqres.ts frames them (unsigned varint,
 * then the bytes), sent one after another without waiting, and the responses (reqres.ts's
 * status byte, then the body or the error) coming back in the order of the requests.
 *
 * Why beside request-response: one stream per update paid a new yamux stream, a multistream
 * negotiation and a round trip before the next upload could start, and lpStream assembled every
 * request from its pieces into a fresh buffer. Here a frame is read straight into one buffer of
 * its announced length (reused once its handler settled or lent to a worker and given back), the next frames are read while the
 * earlier ones are checked, and a stream serves any number of frames.
 *
 * Every frame passes the same checks as a request: the member gate when the stream opens, the
 * handler's own (admission and budget per frame, decode, signature), the same error codes and
 * the same `onError` (penalties). A length prefix above the limit is OVERSIZED and ends the
 * stream (the bytes behind it are never read); a frame not completed within `timeoutMs` of its
 * first byte is UNAVAILABLE (IGNORE) and ends the stream; a stream quiet for `idleMs` between
 * frames is closed without blame.
 */
import type { Libp2p, PeerId, Stream, StreamMessageEvent } from '@libp2p/interface';
import { Reader, Writer } from '../core/bytes.ts';
import { BflError, ErrorCode, isBflError } from '../core/errors.ts';
import { RemoteError } from './remote-error.ts';
import type { Handler, ServeOptions } from './reqres.ts';

export interface FrameServeOptions extends ServeOptions {
  /** Frames of one stream handled at once: the next ones are read while earlier ones are being
   * checked (signature worker, LevelDB), responses still go back in order. Memory per stream is
   * at most this many frames of `maxRequestBytes`. */
  maxInFlight: number;
  /** A stream with no frame in progress and none in flight for this long is closed (no blame). */
  idleMs: number;
  /** Streams of this protocol one connection may hold open at once. */
  maxStreams: number;
}

/** A client holds one stream per miner; a second one covers a reconnect racing the old stream's close. */
export const defaultFrameServe = { maxInFlight: 4, idleMs: 60_000, maxStreams: 2 } as const;

/**
 * Frame buffers of the servers: standalone ArrayBuffers, reused across frames and streams. A
 * buffer is the frame's (`lent`) until its handler settles, then spare again, unless the handler
 * took it (`takeFrameBuffer`: to transfer it to a worker thread, issue 12), and then it comes
 * back through `recycleFrameBuffer` or not at all. At most MAX_SPARE are kept: the frames in
 * flight of a few busy streams (maxInFlight each) find one without allocating.
 */
const lent = new WeakSet<ArrayBuffer>();
const spare: ArrayBuffer[] = [];
const MAX_SPARE = 16;

function frameBuffer(n: number): Uint8Array {
  const i = spare.findIndex((b) => b.byteLength >= n);
  const buffer = i >= 0 ? spare.splice(i, 1)[0] : new ArrayBuffer(n);
  lent.add(buffer);
  return new Uint8Array(buffer, 0, n);
}

/**
 * The whole buffer of a frame a server handed to its handler, now the caller's (the server will
 * not reuse it): undefined if `frame` is not such a frame (a request-response body, a frame
 * already taken), whose buffer the caller must not transfer or keep.
 */
export function takeFrameBuffer(frame: Uint8Array): ArrayBuffer | undefined {
  const b = frame.buffer as ArrayBuffer;
  return lent.delete(b) ? b : undefined;
}

/** A buffer the caller owns and is done with, for later frames (any standalone ArrayBuffer). */
export function recycleFrameBuffer(b: ArrayBuffer): void {
  if (b.byteLength > 0 && !lent.has(b) && !spare.includes(b) && spare.length < MAX_SPARE) spare.push(b);
}

/** Frames up to this size are sent with their prefix in one piece (copying them costs less than a second yamux frame). */
const SMALL_FRAME = 16 * 1024;

/** Bytes of an unsigned varint length prefix (values below 2^35; ours are below 2^32). */
const MAX_VARINT_BYTES = 5;

function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Uint8Array.from(out);
}

/**
 * Splits a byte stream into length-prefixed frames, each copied once into a buffer of its
 * announced length (taken from `alloc`, so a server can hand back buffers it reuses).
 * Errors are thrown from `push` as BflErrors (OVERSIZED, MALFORMED).
 */
export class FrameReader {
  private readonly maxBytes: number;
  private readonly alloc: (n: number) => Uint8Array;
  private prefix = 0;
  private prefixShift = 1;
  private prefixBytes = 0;
  private body?: Uint8Array;
  private filled = 0;

  constructor(maxBytes: number, alloc: (n: number) => Uint8Array = (n) => new Uint8Array(n)) {
    this.maxBytes = maxBytes;
    this.alloc = alloc;
  }

  /** A frame has begun (its prefix or part of its body arrived) and is not complete. */
  get partial(): boolean {
    return this.prefixBytes > 0 || this.body !== undefined;
  }

  /** Feed bytes; `frame` is called for every frame completed, in order. */
  push(data: StreamMessageEvent['data'], frame: (f: Uint8Array) => void): void {
    const chunks: Iterable<Uint8Array> = data instanceof Uint8Array ? [data] : data;
    for (const chunk of chunks) {
      let i = 0;
      while (i < chunk.length) {
        if (this.body === undefined) {
          const b = chunk[i++];
          this.prefix += (b & 0x7f) * this.prefixShift;
          this.prefixShift *= 0x80;
          this.prefixBytes++;
          if (this.prefix > this.maxBytes) throw new BflError(ErrorCode.OVERSIZED, `frame of ${this.prefix} bytes or more, limit ${this.maxBytes}`);
          if (b & 0x80) {
            if (this.prefixBytes >= MAX_VARINT_BYTES) throw new BflError(ErrorCode.MALFORMED, `frame length prefix longer than ${MAX_VARINT_BYTES} bytes`);
            continue;
          }
          const n = this.prefix;
          this.prefix = 0;
          this.prefixShift = 1;
          this.prefixBytes = 0;
          if (n === 0) {
            frame(new Uint8Array(0));
            continue;
          }
          this.body = this.alloc(n);
          this.filled = 0;
        }
        const take = Math.min(this.body.length - this.filled, chunk.length - i);
        this.body.set(chunk.subarray(i, i + take), this.filled);
        this.filled += take;
        i += take;
        if (this.filled === this.body.length) {
          const f = this.body;
          this.body = undefined;
          frame(f);
        }
      }
    }
  }
}

/** The status-byte response of reqres.ts for a handler's result or error. */
function responseOf(result: { body: Uint8Array } | { error: unknown }): Uint8Array {
  if ('body' in result) {
    const out = new Uint8Array(1 + result.body.length);
    out.set(result.body, 1);
    return out;
  }
  const e = result.error;
  const code = isBflError(e) ? e.code : 'INTERNAL';
  const msg = isBflError(e) ? e.message : 'internal error';
  return new Writer(128).u8(1).str(code).bytes(new TextEncoder().encode(msg.slice(0, 1000))).finish();
}

/** Write one frame; resolves once the stream took it (waits for drain when its buffer is full). */
async function sendFrame(stream: Stream, body: Uint8Array): Promise<void> {
  const prefix = varint(body.length);
  let ok: boolean;
  if (body.length <= SMALL_FRAME) {
    // one yamux frame (one Noise message, one socket write) for a response, not two
    const one = new Uint8Array(prefix.length + body.length);
    one.set(prefix);
    one.set(body, prefix.length);
    ok = stream.send(one);
  } else {
    // two sends, not one concatenation: a large body is not copied (yamux frames it as it is)
    stream.send(prefix);
    ok = stream.send(body);
  }
  if (!ok) await stream.onDrain();
}

/** After a bad frame (oversized, malformed, too slow): the error frame goes out, then the stream is reset (its sender is not read any more). */
async function closeThenReset(stream: Stream, timeoutMs: number, why: string): Promise<void> {
  await stream.close({ signal: AbortSignal.timeout(timeoutMs) }).catch(() => undefined);
  if (stream.status !== 'closed') stream.abort(new Error(why));
}

/** Serve `protocol` as a stream of pipelined frames (see the module comment). */
export async function serveFrames(node: Libp2p, protocol: string, handler: Handler, opts: FrameServeOptions): Promise<void> {
  await node.handle(protocol, (stream: Stream, connection) => serveStream(stream, connection.remotePeer, protocol, handler, opts), { runOnLimitedConnection: false, maxInboundStreams: opts.maxStreams });
}

async function serveStream(stream: Stream, peer: PeerId, protocol: string, handler: Handler, opts: FrameServeOptions): Promise<void> {
  const refuse = async (e: unknown) => {
    opts.onError?.(peer, e as Error);
    await sendFrame(stream, responseOf({ error: e })).catch(() => undefined);
  };
  try {
    await opts.gate?.(peer.toString());
  } catch (e) {
    await refuse(e);
    // as reqres.ts does: closed, not reset, so that the refusal reaches the sender whole
    await stream.close({ signal: AbortSignal.timeout(opts.timeoutMs) }).catch(() => stream.abort(new Error('refused')));
    return;
  }
  const reader = new FrameReader(opts.maxRequestBytes, frameBuffer);
  // The responses, in the order of their frames; the writer below sends them as they settle.
  const queue: Promise<Uint8Array>[] = [];
  let inFlight = 0;
  let ending = false;
  let failed = false;
  let wake: (() => void) | undefined;
  const poke = () => {
    wake?.();
    wake = undefined;
  };
  let frameTimer: NodeJS.Timeout | undefined;
  let idleTimer: NodeJS.Timeout | undefined;

  /** Stop reading; answer what is queued (and `e`, if given), then close. */
  const end = (e?: unknown) => {
    if (ending) return;
    ending = true;
    clearTimeout(frameTimer);
    clearTimeout(idleTimer);
    stream.removeEventListener('message', onMessage);
    if (e !== undefined) {
      failed = true;
      opts.onError?.(peer, e as Error);
      queue.push(Promise.resolve(responseOf({ error: e })));
    }
    poke();
  };
  const armIdle = () => {
    clearTimeout(idleTimer);
    if (!ending && inFlight === 0 && !reader.partial) idleTimer = setTimeout(() => end(), opts.idleMs);
  };
  const onFrame = (f: Uint8Array) => {
    clearTimeout(frameTimer);
    frameTimer = undefined;
    inFlight++;
    if (inFlight >= opts.maxInFlight) stream.pause();
    queue.push(
      handler(f, peer).then(
        (body) => responseOf({ body }),
        (error) => {
          opts.onError?.(peer, error as Error);
          return responseOf({ error });
        },
      ).finally(() => {
        // still the frame's (the handler did not take it): spare again
        const b = takeFrameBuffer(f);
        if (b) recycleFrameBuffer(b);
      }),
    );
    poke();
  };
  function onMessage(evt: StreamMessageEvent) {
    clearTimeout(idleTimer);
    const wasPartial = reader.partial;
    try {
      reader.push(evt.data, onFrame);
    } catch (e) {
      end(e);
      return;
    }
    // a frame has begun: it must be complete within timeoutMs of its first byte
    if (reader.partial && (!wasPartial || frameTimer === undefined)) {
      clearTimeout(frameTimer);
      frameTimer = setTimeout(() => end(new BflError(ErrorCode.UNAVAILABLE, `frame on ${protocol} not completed within ${opts.timeoutMs} ms`, { action: 'IGNORE' })), opts.timeoutMs);
    }
    armIdle();
  }
  stream.addEventListener('message', onMessage);
  stream.addEventListener('remoteCloseWrite', () => end(reader.partial ? new BflError(ErrorCode.UNAVAILABLE, `frame on ${protocol} not completed: the sender closed`, { action: 'IGNORE' }) : undefined));
  stream.addEventListener('close', () => end());
  armIdle();

  // The writer: responses in frame order, then the close.
  try {
    for (;;) {
      if (queue.length === 0) {
        if (ending) break;
        await new Promise<void>((r) => (wake = r));
        continue;
      }
      const response = await queue.shift()!;
      if (stream.status !== 'open') break;
      await sendFrame(stream, response);
      if (inFlight > 0) inFlight--;
      if (inFlight < opts.maxInFlight && stream.readStatus === 'paused') stream.resume();
      armIdle();
    }
    if (failed) await closeThenReset(stream, opts.timeoutMs, 'stream refused');
    else if (stream.status === 'open') await stream.close({ signal: AbortSignal.timeout(opts.timeoutMs) });
  } catch {
    stream.abort(new Error('responses not delivered'));
  } finally {
    clearTimeout(frameTimer);
    clearTimeout(idleTimer);
  }
}

export interface FrameChannelOptions {
  maxResponseBytes: number;
  /** Each frame's answer within this long, or the channel is broken (and reopened by the next send). */
  timeoutMs: number;
  /** Frames sent ahead of their answers at most (the server reads and checks that many at once). */
  maxInFlight: number;
}

/** A response frame: the body, or the peer's refusal as RemoteError (reqres.ts's format). */
function settle(p: { resolve: (body: Uint8Array) => void; reject: (e: Error) => void }, res: Uint8Array): void {
  if (res.length === 0) return p.reject(new RemoteError(ErrorCode.MALFORMED, 'empty response'));
  if (res[0] === 0) return p.resolve(res.subarray(1));
  try {
    const r = new Reader(res.subarray(1), 'error response');
    const code = r.str('code');
    p.reject(new RemoteError(code, new TextDecoder().decode(r.bytes('message', 2000))));
  } catch (e) {
    p.reject(e as Error);
  }
}

interface Pending {
  resolve: (body: Uint8Array) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * The sending side: one long-lived stream to a peer, opened on the first send and again after
 * it broke. `send` resolves with the response body or throws RemoteError (the peer's refusal)
 * or the stream's error; up to `maxInFlight` sends are on the wire at once, more wait. Keep
 * `maxInFlight` at most the server's: it stops reading beyond its own, and a sender that
 * pushes further fills the stream's read buffer until libp2p resets the stream.
 */
export class FrameChannel {
  private readonly node: Libp2p;
  private readonly peer: PeerId;
  private readonly protocol: string;
  private readonly o: FrameChannelOptions;
  private opening?: Promise<Stream>;
  private current?: Stream;
  private readonly pending: Pending[] = [];
  private readonly waiting: (() => void)[] = [];
  /** Responses that came before a frame was sent for them (a refusal when the stream opened). */
  private early: Uint8Array[] = [];
  private lastError?: Error;

  constructor(node: Libp2p, peer: PeerId, protocol: string, opts: FrameChannelOptions) {
    this.node = node;
    this.peer = peer;
    this.protocol = protocol;
    this.o = opts;
  }

  private open(): Promise<Stream> {
    if (this.current) return Promise.resolve(this.current);
    this.opening ??= (async () => {
      try {
        const stream = await this.node.dialProtocol(this.peer, this.protocol, { signal: AbortSignal.timeout(this.o.timeoutMs) });
        const reader = new FrameReader(this.o.maxResponseBytes + 1);
        this.early = [];
        stream.addEventListener('message', (evt) => {
          if (this.current !== stream) return; // a stream we gave up: its late answers are no one's
          try {
            reader.push(evt.data, (f) => this.answer(f));
          } catch (e) {
            this.broken(stream, e as Error);
          }
        });
        const gone = () => this.broken(stream, new BflError(ErrorCode.UNAVAILABLE, `${this.protocol} stream closed by the peer`, { action: 'IGNORE' }));
        stream.addEventListener('close', gone);
        stream.addEventListener('remoteCloseWrite', gone);
        this.current = stream;
        // closed before we listened (refused at once): the refusal itself is dispatched first
        if (stream.status !== 'open') queueMicrotask(gone);
        return stream;
      } finally {
        this.opening = undefined;
      }
    })();
    return this.opening;
  }

  private answer(res: Uint8Array): void {
    const p = this.pending.shift();
    if (!p) {
      this.early.push(res);
      return;
    }
    clearTimeout(p.timer);
    this.waiting.shift()?.();
    settle(p, res);
  }

  /** The stream failed: every frame on it fails, the next send opens a new one. */
  private broken(stream: Stream, e: Error): void {
    if (this.current !== stream) return;
    this.current = undefined;
    this.lastError = e;
    if (stream.status === 'open') stream.abort(e);
    this.fail(e);
  }

  private fail(e: Error): void {
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    for (const w of this.waiting.splice(0)) w();
  }

  async send(body: Uint8Array): Promise<Uint8Array> {
    for (;;) {
      const stream = await this.open();
      if (this.pending.length >= this.o.maxInFlight) {
        await new Promise<void>((r) => this.waiting.push(r));
        continue;
      }
      return new Promise<Uint8Array>((resolve, reject) => {
        // a refusal the peer sent as the stream opened (its gate), before any frame of ours
        const early = this.early.shift();
        if (early) return settle({ resolve, reject }, early);
        if (this.current !== stream) return reject(this.lastError ?? new BflError(ErrorCode.UNAVAILABLE, `${this.protocol} stream closed`, { action: 'IGNORE' }));
        const timer = setTimeout(() => this.broken(stream, new BflError(ErrorCode.UNAVAILABLE, `no answer on ${this.protocol} within ${this.o.timeoutMs} ms`, { action: 'IGNORE' })), this.o.timeoutMs);
        this.pending.push({ resolve, reject, timer });
        sendFrame(stream, body).catch((e) => this.broken(stream, e as Error));
      });
    }
  }

  /** Close the stream (frames still unanswered fail). */
  async close(): Promise<void> {
    const s = this.current ?? (await this.opening?.catch(() => undefined));
    if (!s) return;
    if (this.current === s) this.current = undefined;
    this.fail(new BflError(ErrorCode.UNAVAILABLE, `${this.protocol} channel closed`, { action: 'IGNORE' }));
    await s.close().catch(() => s.abort(new Error('closed')));
  }
}
