import { fromHex, toHex } from '../core/bytes.ts';
import type { ChainState } from '../core/validation.ts';

export interface StateJson {
  hash: string;
  parentHash: string;
  height: number;
  timestamp: number;
  work: string;
  rounds: number;
  anchor: string;
  modelHash: string;
  /** [client, digest, base model, sample count]; states stored before the claim was kept: [client, digest] */
  pending: ([string, string] | [string, string, string, number])[];
}

export function stateToJson(s: ChainState): StateJson {
  return {
    hash: toHex(s.hash),
    parentHash: toHex(s.parentHash),
    height: s.height,
    timestamp: s.timestamp,
    work: s.work.toString(),
    rounds: s.rounds,
    anchor: toHex(s.anchor),
    modelHash: toHex(s.modelHash),
    pending: s.pending.map((p) => (p.baseModelHash && p.sampleCount !== undefined ? [p.clientId, toHex(p.updateDigest), toHex(p.baseModelHash), p.sampleCount] : [p.clientId, toHex(p.updateDigest)])),
  };
}

export function stateFromJson(j: StateJson): ChainState {
  return {
    hash: fromHex(j.hash),
    parentHash: fromHex(j.parentHash),
    height: j.height,
    timestamp: j.timestamp,
    work: BigInt(j.work),
    rounds: j.rounds,
    anchor: fromHex(j.anchor),
    modelHash: fromHex(j.modelHash),
    pending: j.pending.map(([clientId, d, base, sampleCount]) => (base === undefined ? { clientId, updateDigest: fromHex(d) } : { clientId, updateDigest: fromHex(d), baseModelHash: fromHex(base), sampleCount })),
  };
}
