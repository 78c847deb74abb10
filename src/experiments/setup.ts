/**
 * What every simulator experiment sets up the same way: the simulation settings from the
 * common flags, and the seeded choice of which clients misbehave.
 */
import type { AggregationConfig } from '../config/network.ts';
import { Rng } from '../core/random.ts';
import type { SimOptions } from '../sim/harness.ts';
import { type Attack, attackRound } from './attacks.ts';
import type { MobilityOptions } from '../sim/mobility.ts';
import type { Partition } from '../learn/partition.ts';

export interface ExperimentBase {
  seed: number;
  miners: number;
  clients: number;
  phi?: number; // default: min(clients, 10)
  partition: Partition;
  /** mnist (embedded), fashion or idx:DIR. */
  dataset?: string;
  aggregations: number;
  N: number;
  E: number;
  B: number;
  lr: number;
  /** 'sim' (default) or 'libp2p' (real daemons in this process; small scale). */
  transport?: 'sim' | 'libp2p';
  /** Clients walk in and out of the miners' coverage (simulator only). */
  mobility?: MobilityOptions;
}

/** The simulation of an experiment: 10 samples/s per client, a block every ~2 virtual s per miner. */
export function simBase(o: ExperimentBase, aggregation: Partial<AggregationConfig>): Omit<SimOptions, 'onRound'> {
  return {
    seed: o.seed,
    miners: o.miners,
    clients: o.clients,
    phi: o.phi ?? Math.min(o.clients, 10),
    learning: { N: o.N, E: o.E, B: o.B, lr: o.lr, rate: 10, partition: o.partition, ...(o.dataset ? { dataset: o.dataset } : {}) },
    aggregation,
    meanBlockMs: 2000,
    aggregations: o.aggregations,
    transport: o.transport,
    mobility: o.mobility,
  };
}

/** The first ⌊f·K⌉ clients of a seeded shuffle, and the generator (for later random choices). */
export function pickClients(seed: number, clients: number, fraction: number): { chosen: Set<number>; rng: Rng } {
  const rng = new Rng(seed * 31 + 7);
  const order = rng.shuffle(Array.from({ length: clients }, (_, i) => i));
  return { chosen: new Set(order.slice(0, Math.round(fraction * clients))), rng };
}

/** The simulator's behaviours from the attack of each client (by index) in each round. */
export function attacksOf(attackOf: (client: number, round: number) => Attack): NonNullable<SimOptions['behaviourOf']> {
  return (client, round, honest) => attackRound(attackOf(client, round), honest);
}
