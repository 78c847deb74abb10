/**
 * One request, one response, over a libp2p stream: both length-prefixed, both size-bounded.
 * The response starts with a status byte: 0 and the body, or 1 and an error (code, message) so
 * that a refusal reaches the caller with its code.
 */
import type { Libp2p, PeerId, Stream } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import { lpStream } from '@libp2p/utils';
import { Reader, Writer } from '../core/bytes.ts';
import { BflError, ErrorCode, isBflError } from '../core/errors.ts';
import { RemoteError } from './remote-error.ts';

export { RemoteError } from './remote-error.ts';

export interface ServeOptions {
  maxRequestBytes: number;
  timeoutMs: number;
  /** Called with every refused request (for penalties and logs). */
  onError?: (peer: PeerId, err: Error) => void;
  /** Checked before the request is read (throws to refuse): an outsider's upload is not
   * buffered only to be refused. The handler keeps its own checks (the simulator skips this). */
  gate?: (peer: string) => Promise<unknown>;
}

export type Handler = (request: Uint8Array, peer: PeerId) => Promise<Uint8Array>;

/**
 * libp2p's byte stream buffers at most 4 MiB by default (`maxBufferSize`), below our largest
 * frames (maxUpdateBytes + seal headroom, maxBlockBytes): a larger frame reset the stream and
 * was reported as MALFORMED (issue 13, item 8). The buffer holds the frame being read plus
 * what arrived behind it: one yamux receive window (256 KiB) is all a sender may push unread.
 */
export const bufferFor = (maxDataLength: number): number => maxDataLength + 16 + 256 * 1024;

/** Errors of a stream the other side closed or reset: not provably malicious (a requester may give up). */
const GONE = /StreamReset|StreamAborted|StreamState|StreamClosed|UnexpectedEOF|ConnectionClosed|ConnectionClosing|MuxerClosed/;

export async function serve(node: Libp2p, protocol: string, handler: Handler, opts: ServeOptions): Promise<void> {
  await node.handle(
    protocol,
    async (stream: Stream, connection) => {
      const signal = AbortSignal.timeout(opts.timeoutMs);
      const lp = lpStream(stream, { maxDataLength: opts.maxRequestBytes, maxBufferSize: bufferFor(opts.maxRequestBytes) });
      let response: Uint8Array;
      try {
        await opts.gate?.(connection.remotePeer.toString());
        let req: Uint8Array;
        try {
          req = (await lp.read({ signal })).subarray();
        } catch (e) {
          const name = (e as Error).name;
          // a length prefix above the limit: refused before the bytes are read
          if (/DataLength/.test(name)) throw new BflError(ErrorCode.OVERSIZED, `request on ${protocol} exceeds ${opts.maxRequestBytes} bytes`);
          // slow, vanished or resetting peers are not provably malicious
          if (name === 'AbortError' || name === 'TimeoutError') throw new BflError(ErrorCode.UNAVAILABLE, `no request on ${protocol} in time`, { action: 'IGNORE' });
          if (GONE.test(name)) throw new BflError(ErrorCode.UNAVAILABLE, `request on ${protocol} not completed: ${name}`, { action: 'IGNORE' });
          throw new BflError(ErrorCode.MALFORMED, `bad request on ${protocol}: ${(e as Error).message}`);
        }
        const body = await handler(req, connection.remotePeer);
        response = concat(Uint8Array.of(0), body);
      } catch (e) {
        opts.onError?.(connection.remotePeer, e as Error);
        const code = isBflError(e) ? e.code : 'INTERNAL';
        const msg = isBflError(e) ? e.message : 'internal error';
        response = new Writer(128).u8(1).str(code).bytes(new TextEncoder().encode(msg.slice(0, 1000))).finish();
      }
      try {
        await lp.write(response, { signal });
        await stream.close({ signal });
      } catch {
        stream.abort(new Error('response not delivered'));
      }
    },
    { runOnLimitedConnection: false, maxInboundStreams: 64 },
  );
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

export interface RequestOptions {
  maxResponseBytes: number;
  timeoutMs: number;
}

/** Send a request and return the response body; a remote refusal throws RemoteError. */
export async function request(node: Libp2p, peer: PeerId | Multiaddr, protocol: string, body: Uint8Array, opts: RequestOptions): Promise<Uint8Array> {
  const signal = AbortSignal.timeout(opts.timeoutMs);
  const stream = await node.dialProtocol(peer, protocol, { signal });
  try {
    const lp = lpStream(stream, { maxDataLength: opts.maxResponseBytes + 1, maxBufferSize: bufferFor(opts.maxResponseBytes + 1) });
    await lp.write(body, { signal });
    const res = (await lp.read({ signal })).subarray();
    await stream.close({ signal }).catch(() => undefined);
    if (res.length === 0) throw new RemoteError(ErrorCode.MALFORMED, 'empty response');
    if (res[0] === 0) return res.subarray(1);
    const r = new Reader(res.subarray(1), 'error response');
    const code = r.str('code');
    throw new RemoteError(code, new TextDecoder().decode(r.bytes('message', 2000)));
  } catch (e) {
    stream.abort(e as Error);
    throw e;
  }
}
