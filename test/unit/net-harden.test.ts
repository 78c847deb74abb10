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
