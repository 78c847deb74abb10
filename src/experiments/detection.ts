/**
 * Detection and false positives of a run, from the labels the aggregator gave each update
 * (RoundReport.updates[].high), with the definitions of `experiment attack`:
 *   detection rate      = attacker updates labelled low / attacker updates,
 *   false-positive rate = honest updates labelled low / honest updates.
 * Only for aggregators that label clients: FedAvg, the median and the trimmed mean label every
 * update high (their rates would be 0 whatever happens), FedProx's drops are the stalest
 * updates, not a verdict on them.
 */
import type { AggregatorName } from '../core/aggregation/index.ts';
import type { RoundReport } from '../sim/harness.ts';

/** Aggregators whose low label is a verdict on the update (left out of the aggregate or weighed to zero). */
export const LABELLING_AGGREGATORS: ReadonlySet<AggregatorName> = new Set(['bfl-mec', 'bfl-mec-paper', 'bfl-mec-dbscan', 'bfl-mec-keep', 'multi-krum', 'flame', 'foolsgold']);

export interface LabelRates {
  /** null where the run had no attacker update (no attack). */
  detectionRate: number | null;
  falsePositiveRate: number | null;
  attackerUpdates: number;
  honestUpdates: number;
}

export function labelRates(rounds: Pick<RoundReport, 'updates'>[]): LabelRates {
  let att = 0;
  let det = 0;
  let hon = 0;
  let fp = 0;
  for (const r of rounds) {
    for (const u of r.updates) {
      if (u.attack === 'none') {
        hon++;
        if (!u.high) fp++;
      } else {
        att++;
        if (!u.high) det++;
      }
    }
  }
  return { detectionRate: att ? det / att : null, falsePositiveRate: hon ? fp / hon : null, attackerUpdates: att, honestUpdates: hon };
}
