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
      return new BflMecAggregator({ stalenessExponent: o.stalenessExponent, ...o.bflmec, strategy: 'keep' });
    case 'fedavg':
      return new FedAvgAggregator({ stalenessExponent: o.stalenessExponent });
    case 'fedprox':
      return new FedProxDropAggregator({ dropFraction: o.fedproxDrop });
    case 'multi-krum':
      return new MultiKrumAggregator({ f: o.krumF, m: o.krumM });
    case 'median':
      return new MedianAggregator();
    case 'trimmed-mean':
      return new TrimmedMeanAggregator({ trim: o.trim });
    case 'flame':
      return new FlameAggregator();
    case 'foolsgold':
      return new FoolsGoldAggregator() as Aggregator<unknown>;
  }
}

export type { Aggregator, AggregationInput, AggregationResult, UpdateInput } from './types.ts';
export { BflMecAggregator, defaultBflMecOptions, scoreAndAggregate } from './bflmec.ts';
