/** Aggregators by name (config `aggregation.aggregator`, experiment flags). */
import { BflMecAggregator, type BflMecOptions } from './bflmec.ts';
import { FedAvgAggregator, FedProxDropAggregator, FlameAggregator, FoolsGoldAggregator, MedianAggregator, MultiKrumAggregator, TrimmedMeanAggregator } from './baselines.ts';
import type { Aggregator } from './types.ts';
import { AgreementAggregator, type AgreementOptions } from './agreement.ts';

export const AGGREGATORS = ['bfl-mec', 'bfl-mec-paper', 'bfl-mec-dbscan', 'bfl-mec-keep', 'fedavg', 'fedprox', 'multi-krum', 'median', 'trimmed-mean', 'flame', 'foolsgold'] as const;
export type AggregatorName = (typeof AGGREGATORS)[number];

export interface AggregatorOptions {
  bflmec?: Partial<BflMecOptions>;
  agreement?: Partial<AgreementOptions>;
  fedproxDrop?: number;
  krumF?: number;
  krumM?: number;
  trim?: number;
  stalenessExponent?: number;
}

/** Defaults of the baselines' settings, used by createAggregator and the network config. */
export const defaultAggregatorOptions = {
  // FedProx with drop-outs: the fraction of updates dropped as stragglers (the FedProx paper's
  // lowest setting, 2 %).
  fedproxDrop: 0.02,
  // Trimmed mean: 10 % cut at each end per coordinate, a common choice that tolerates up to
  // 10 % attackers.
  trim: 0.1,
};

export function createAggregator(name: AggregatorName, o: AggregatorOptions = {}): Aggregator<unknown> {
  switch (name) {
    case 'bfl-mec':
      return new AgreementAggregator({ stalenessExponent: o.stalenessExponent, maxNormRatio: o.bflmec?.maxNormRatio, ...o.agreement });
    case 'bfl-mec-paper':
      // Algorithm 4 as the paper writes it: no length check
      return new BflMecAggregator({ stalenessExponent: o.stalenessExponent, ...o.bflmec, maxNormRatio: null }, 'bfl-mec-paper');
    case 'bfl-mec-dbscan':
      // the paper's rule with our length check (the default until issue 11)
      return new BflMecAggregator({ stalenessExponent: o.stalenessExponent, ...o.bflmec }, 'bfl-mec-dbscan');
    case 'bfl-mec-keep':
      return new BflMecAggregator({ stalenessExponent: o.stalenessExponent, ...o.bflmec, strategy: 'keep' }, 'bfl-mec-keep');
    case 'fedavg':
      return new FedAvgAggregator({ stalenessExponent: o.stalenessExponent });
    case 'fedprox':
      return new FedProxDropAggregator({ dropFraction: o.fedproxDrop ?? defaultAggregatorOptions.fedproxDrop });
    case 'multi-krum':
      return new MultiKrumAggregator({ f: o.krumF, m: o.krumM });
    case 'median':
      return new MedianAggregator();
    case 'trimmed-mean':
      return new TrimmedMeanAggregator({ trim: o.trim ?? defaultAggregatorOptions.trim });
    case 'flame':
      return new FlameAggregator();
    case 'foolsgold':
      return new FoolsGoldAggregator() as Aggregator<unknown>;
  }
}

/** How a state is persisted: the aggregator's own codec, or the null codec (empty bytes) of a stateless one. */
export function stateCodecOf<S>(a: Aggregator<S>): { stateless: boolean; encode(s: S): Uint8Array; decode(b: Uint8Array): S } {
  if (a.encodeState && a.decodeState) return { stateless: false, encode: (s) => a.encodeState!(s), decode: (b) => a.decodeState!(b) };
  return {
    stateless: true,
    encode: (s) => {
      if (s !== null) throw new TypeError(`aggregator ${a.name} keeps a state but has no encodeState/decodeState`);
      return new Uint8Array(0);
    },
    decode: () => null as S,
  };
}

export type { Aggregator, AggregationContext, AggregationInput, AggregationResult, UpdateInput } from './types.ts';
export { BflMecAggregator, defaultBflMecOptions, scoreAndAggregate } from './bflmec.ts';
export { dampStaleSteps } from './damping.ts';
