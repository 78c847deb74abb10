/**
 * How a client's uploads reach a miner (issue 12): on one long-lived stream per miner where the
 * transport has them (`Transport.channel`, net/frames.ts), else, or when the stream fails, as
 * one request. A refusal on the stream is final, as it is over request-response; a miner that
 * does not serve the stream protocol (an older version) gets requests from then on.
 */
import { RemoteError } from '../net/remote-error.ts';
import type { Transport, UploadChannel } from '../net/transport.ts';
import type { Logger } from '../util/logger.ts';

export class Uploader {
  private readonly transport: Transport;
  private readonly log: Logger;
  private readonly channels = new Map<string, UploadChannel>();
  private readonly noStream = new Set<string>();

  constructor(transport: Transport, log: Logger) {
    this.transport = transport;
    this.log = log;
  }

  /**
   * Send one upload and return the miner's answer. `body` is built per attempt: a sealed upload
   * is sealed afresh for the fallback request (the miner refuses a replayed envelope).
   */
  async send(peer: string, streamProtocol: string, protocol: string, body: () => Uint8Array, opts: { maxResponseBytes: number; timeoutMs: number }): Promise<Uint8Array> {
    const t = this.transport;
    if (t.channel && !this.noStream.has(`${peer} ${streamProtocol}`)) {
      const key = `${peer} ${streamProtocol}`;
      let ch = this.channels.get(key);
      // one upload at a time: a client uploads once a round
      if (!ch) this.channels.set(key, (ch = t.channel(peer, streamProtocol, { ...opts, maxInFlight: 1 })));
      try {
        return await ch.send(body());
      } catch (e) {
        if (e instanceof RemoteError) throw e;
        if ((e as Error).name === 'UnsupportedProtocolError') {
          this.noStream.add(key);
          this.channels.delete(key);
          await ch.close();
        }
        this.log.debug({ err: (e as Error).message }, 'upload stream failed: one request instead');
      }
    }
    return t.request(peer, protocol, body(), opts);
  }

  async close(): Promise<void> {
    for (const ch of this.channels.values()) await ch.close();
    this.channels.clear();
  }
}
