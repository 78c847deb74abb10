/**
 * Merkle root over transaction ids, RFC 6962 style: leaves H(0x00 || txid), inner nodes
 * H(0x01 || left || right), an odd node is carried up unpaired. Domain-separated leaves and no
 * duplication of the last node avoid Bitcoin's CVE-2012-2459 (two tx lists, one root).
 */
import { concatBytes } from './bytes.ts';
import { sha256 } from './hash.ts';

const LEAF = Uint8Array.of(0);
const NODE = Uint8Array.of(1);

export function merkleRoot(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256(new Uint8Array(0));
  let level = leaves.map((l) => sha256(concatBytes(LEAF, l)));
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(i + 1 < level.length ? sha256(concatBytes(NODE, level[i], level[i + 1])) : level[i]);
    }
    level = next;
  }
  return level[0];
}
