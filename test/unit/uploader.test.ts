/**
 * The client's upload path (node/uploader.ts) against a stub of the narrow Transport: the stream
 * when the transport has one, the miner's refusal final, one request when the stream fails, and
 * requests only to a miner that does not serve the stream protocol.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/core/errors.ts';
import { RemoteError } from '../../src/net/reqres.ts';
import type { Transport, UploadChannel } from '../../src/net/transport.ts';
import { Uploader } from '../../src/node/uploader.ts';
import { silentLogger } from '../../src/util/logger.ts';

function stub(channelSend?: (body: Uint8Array) => Promise<Uint8Array>) {
  const calls = { channel: 0, streamSends: 0, requests: [] as number[], closed: 0 };
  const t: Pick<Transport, 'request' | 'channel'> = {
    request: async (_to, _p, body) => {
      calls.requests.push(body[0]);
      return Uint8Array.of(2);
    },
    channel: channelSend
      ? (): UploadChannel => {
          calls.channel++;
          return {
            send: (body) => {
              calls.streamSends++;
              return channelSend(body);
            },
            close: async () => void calls.closed++,
          };
        }
      : undefined,
  };
  return { t: t as Transport, calls };
}

const opts = { maxResponseBytes: 1024, timeoutMs: 1000 };
let n = 0;
const body = () => Uint8Array.of(++n);

describe('Uploader', () => {
  it('uploads on one stream per miner and keeps it', async () => {
    const { t, calls } = stub(async () => Uint8Array.of(1));
    const u = new Uploader(t, silentLogger);
    expect([...(await u.send('m1', 's', 'r', body, opts))]).toEqual([1]);
    expect([...(await u.send('m1', 's', 'r', body, opts))]).toEqual([1]);
    expect(calls).toMatchObject({ channel: 1, streamSends: 2, requests: [] });
    await u.close();
    expect(calls.closed).toBe(1);
  });

  it("a miner's refusal on the stream is final: no request after it", async () => {
    const { t, calls } = stub(async () => {
      throw new RemoteError(ErrorCode.BAD_SIGNATURE, 'no');
    });
    await expect(new Uploader(t, silentLogger).send('m1', 's', 'r', body, opts)).rejects.toMatchObject({ code: ErrorCode.BAD_SIGNATURE });
    expect(calls.requests).toEqual([]);
  });

  it('a broken stream: this upload goes as one request with a body built afresh; the next tries the stream again', async () => {
    let fail = true;
    const { t, calls } = stub(async () => {
      if (fail) throw new Error('stream reset');
      return Uint8Array.of(1);
    });
    const u = new Uploader(t, silentLogger);
    n = 10;
    expect([...(await u.send('m1', 's', 'r', body, opts))]).toEqual([2]);
    expect(calls.requests).toEqual([12]); // 11 went on the stream
    fail = false;
    expect([...(await u.send('m1', 's', 'r', body, opts))]).toEqual([1]);
    expect(calls.streamSends).toBe(2);
  });

  it('a miner without the stream protocol gets requests from then on', async () => {
    const { t, calls } = stub(async () => {
      throw Object.assign(new Error('protocol selection failed'), { name: 'UnsupportedProtocolError' });
    });
    const u = new Uploader(t, silentLogger);
    await u.send('m1', 's', 'r', body, opts);
    await u.send('m1', 's', 'r', body, opts);
    expect(calls.streamSends).toBe(1);
    expect(calls.requests.length).toBe(2);
    expect(calls.closed).toBe(1);
  });

  it('a transport without streams (the simulator) sends requests', async () => {
    const { t, calls } = stub();
    expect([...(await new Uploader(t, silentLogger).send('m1', 's', 'r', body, opts))]).toEqual([2]);
    expect(calls.requests.length).toBe(1);
  });
});
