import { describe, expect, it } from 'vitest';
import { codeOf } from '../helpers/errors.ts';
import { Reader, Writer } from '../../src/core/bytes.ts';
import { sha256 } from '../../src/core/hash.ts';
import { decodeAnnouncement, decodeSignedUpdate, deltaToPayload, encodeAnnouncement, encodeSignedUpdate, payloadToDelta } from '../../src/core/update.ts';
import { decodeBlockAnnouncement, decodeChainRequest, decodeModelAfter, decodePeerRecord, encodeChainRequest, encodeModelAfter } from '../../src/net/messages.ts';


function update(floats = 8) {
  const payload = deltaToPayload(Float32Array.from({ length: floats }, (_, i) => i * 0.5 - 1));
  return { clientId: 'client-1', minerId: 'miner-1', baseModelHash: new Uint8Array(32).fill(1), updateDigest: sha256(payload), sampleCount: 100, createdAt: 1_700_000_000_000, signature: new Uint8Array(2420).fill(3), payloadBytes: payload.length, payload };
}

describe('wire messages', () => {
  it('payloadToDelta reads the right floats from a Node Buffer at an unaligned offset (regression)', () => {
    const delta = Float32Array.of(1.5, -2.25, 3e-5, 7);
    const inner = Buffer.from(deltaToPayload(delta));
    const outer = Buffer.concat([Buffer.from([9, 9, 9]), inner]); // offset 3 in a bigger buffer
    const view = outer.subarray(3);
    expect(Array.from(payloadToDelta(view))).toEqual(Array.from(delta));
    // and through the codec: fields read from a Buffer are copies, not views
    const bytes = Buffer.concat([Buffer.alloc(5), Buffer.from(new Writer().bytes(inner).finish())]).subarray(5);
    const got = new Reader(bytes).bytes();
    bytes.fill(0);
    expect(Array.from(payloadToDelta(got))).toEqual(Array.from(delta));
  });

  it('signed updates round-trip; the payload must hash to the digest and fit the limit', () => {
    const u = update();
    const bytes = encodeSignedUpdate(u);
    const back = decodeSignedUpdate(bytes, 1024);
    expect(Array.from(payloadToDelta(back.payload))).toEqual(Array.from(payloadToDelta(u.payload)));
    expect(codeOf(() => decodeSignedUpdate(bytes, 16))).toBe('OVERSIZED');
    const tampered = encodeSignedUpdate({ ...u, payload: deltaToPayload(Float32Array.from({ length: 8 }, () => 0)) });
    expect(codeOf(() => decodeSignedUpdate(tampered, 1024))).toBe('MALFORMED');
    const odd = { ...u, payload: new Uint8Array(7) };
    expect(codeOf(() => decodeSignedUpdate(encodeSignedUpdate({ ...odd, updateDigest: sha256(odd.payload) }), 1024))).toBe('MALFORMED');
    expect(codeOf(() => decodeSignedUpdate(bytes.subarray(0, 100), 1024))).toBe('MALFORMED');
  });

  it('announcements, chain requests and models decode what was encoded and refuse junk', () => {
    const a = update();
    const { payload: _p, ...ann } = a;
    expect(decodeAnnouncement(encodeAnnouncement(ann))).toEqual(ann);
    expect(codeOf(() => decodeAnnouncement(new Uint8Array(10000)))).toBe('OVERSIZED');
    expect(codeOf(() => decodeAnnouncement(Uint8Array.of(200, 1, 2)))).toBe('MALFORMED');
    for (const q of [{ kind: 'head' }, { kind: 'block', hash: new Uint8Array(32).fill(2) }, { kind: 'hashes', from: 5, count: 9 }, { kind: 'balance', id: 'client-1' }] as const) {
      expect(decodeChainRequest(encodeChainRequest(q))).toEqual(q);
    }
    expect(codeOf(() => decodeChainRequest(Uint8Array.of(77)))).toBe('MALFORMED');
    const model = deltaToPayload(Float32Array.of(1, 2, 3));
    const m = { newer: true, blockHash: new Uint8Array(32), height: 3, round: 1, modelHash: sha256(model), model };
    expect(decodeModelAfter(encodeModelAfter(m), 100)).toEqual(m);
    expect(codeOf(() => decodeModelAfter(encodeModelAfter({ ...m, modelHash: new Uint8Array(32) }), 100))).toBe('MALFORMED');
    expect(codeOf(() => decodeBlockAnnouncement(new Uint8Array(600)))).toBe('OVERSIZED');
    expect(codeOf(() => decodePeerRecord(Uint8Array.of(1)))).toBe('MALFORMED');
  });
});
