/**
 * Which updates some block of the store may record: a Bloom filter over the record index's keys
 * (client id, update digest), every branch alike (issue 12, sixth pass). The intake asks the
 * store whether each new upload is recorded on the canonical chain; almost every upload is new,
 * and each question was a LevelDB read (3 % of a miner's event loop under `bench ingest`). The
 * filter answers "never recorded" from memory; "maybe" (recorded somewhere, or a false
 * positive) falls through to the read, so the answer is the store's either way. Keys are only
 * added (the record index is never deleted from, and a record on a branch that lost a reorg
 * stays in it): correct across reorgs with no bookkeeping, derived from the chain at open.
 *
 * Hand-written rather than a Bloom filter from npm: the keys carry a SHA-256 digest already, so
 * the bit positions are its words mixed with a hash of the client id, no hashing of the key per
 * look-up (a general library hashes its string keys; ~20 lines here).
 */

/** 2^23 bits (1 MiB): below 1e-5 false positives up to 100,000 records, 2 % at a million (then a LevelDB read each, as before). */
const BITS_LOG2 = 23;
/** Bit positions per key: the optimum k = (m/n) ln 2 is ~58 at 100,000 keys; 4 keeps a look-up at four reads while the rate stays far below one read in a thousand. */
const PROBES = 4;

/** FNV-1a, 32 bits, of a string's UTF-16 code units: a client id's share of the positions. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export class RecordFilter {
  private readonly bits = new Uint32Array(1 << (BITS_LOG2 - 5));
  private count = 0;

  /** Keys added (a key added twice counts twice). */
  get size(): number {
    return this.count;
  }

  private positions(clientId: string, digest: Uint8Array): number[] {
    if (digest.length < 4 * PROBES) throw new Error(`record filter: a ${digest.length}-byte digest`);
    const c = fnv1a(clientId);
    const v = new DataView(digest.buffer, digest.byteOffset, digest.byteLength);
    const mask = (1 << BITS_LOG2) - 1;
    const out: number[] = [];
    // each probe its own 32-bit word of the digest, the client's hash rotated per probe
    for (let k = 0; k < PROBES; k++) out.push(((v.getUint32(4 * k) ^ ((c << (8 * k)) | (c >>> (32 - 8 * k)))) >>> 0) & mask);
    return out;
  }

  add(clientId: string, digest: Uint8Array): void {
    for (const p of this.positions(clientId, digest)) this.bits[p >>> 5] |= 1 << (p & 31);
    this.count++;
  }

  /** False: no block records this update. True: one may (the caller reads the index). */
  mayHave(clientId: string, digest: Uint8Array): boolean {
    for (const p of this.positions(clientId, digest)) if ((this.bits[p >>> 5] & (1 << (p & 31))) === 0) return false;
    return true;
  }
}
