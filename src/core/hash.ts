import { hash } from 'node:crypto';

/** SHA-256 (OpenSSL one-shot; deterministic, so it belongs to the pure core). */
export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(hash('sha256', data, 'buffer'));
}

export const ZERO_HASH = new Uint8Array(32);
