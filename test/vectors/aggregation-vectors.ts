/** Golden aggregation vectors: fixed updates (stored as bytes) and every aggregator's output. */
import { createHash } from 'node:crypto';
import { AGGREGATORS, createAggregator } from '../../src/core/aggregation/index.ts';
import type { UpdateInput } from '../../src/core/aggregation/types.ts';
import { makeUpdates } from '../helpers/updates.ts';

export interface AggregationVectorFile {
  input: { previous: string; baseReward: string; updates: { clientId: string; digest: string; delta: string; sampleCount: number; staleness: number }[] };
  expected: Record<string, { labels: boolean[]; weights: number[]; rewards: [string, string][]; modelSha256: string }>;
}

const b64 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const f32 = (s: string) => {
  const b = Buffer.from(s, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

export function vectorInput(file?: AggregationVectorFile): { previous: Float32Array; updates: UpdateInput[]; baseReward: bigint } {
  if (file) {
    return {
      previous: f32(file.input.previous),
      baseReward: BigInt(file.input.baseReward),
      updates: file.input.updates.map((u) => ({ clientId: u.clientId, digest: Buffer.from(u.digest, 'hex'), delta: f32(u.delta), sampleCount: u.sampleCount, staleness: u.staleness })),
    };
  }
  const { updates, previous } = makeUpdates({ seed: 42, honest: 7, attackers: 3, attack: 'sign-flip', dim: 100 });
  updates[2].staleness = 2;
  return { previous, updates, baseReward: 100_000_000n };
}

export function computeAggregationVectors(file?: AggregationVectorFile): AggregationVectorFile {
  const input = vectorInput(file);
  const expected: AggregationVectorFile['expected'] = {};
  for (const name of AGGREGATORS) {
    const a = createAggregator(name);
    const r = a.aggregate(input, a.initialState()).result;
    expected[name] = {
      labels: r.entries.map((e) => e.high),
      weights: r.entries.map((e) => e.weight),
      rewards: r.rewards.map((x) => [x.id, x.amount.toString()]),
      modelSha256: createHash('sha256').update(r.model).digest('hex'),
    };
  }
  return {
    input: {
      previous: b64(input.previous),
      baseReward: input.baseReward.toString(),
      updates: input.updates.map((u) => ({ clientId: u.clientId, digest: Buffer.from(u.digest).toString('hex'), delta: b64(u.delta), sampleCount: u.sampleCount, staleness: u.staleness })),
    },
    expected,
  };
}
