/**
 * Secret-key demand of a running federation, from its own chain (read-only): the model size
 * (parameters × 4 bytes, from the genesis model), the aggregation frequency (timestamps of
 * the aggregating blocks), the updates per aggregation and the miners. Every update and every
 * global model travels between miners; to be information-theoretically secure (the paper's
 * one-time pad, §III-A) each bit needs one bit of fresh QKD key.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ChainStore } from '../chain/store.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import { InThreadVerifier } from '../crypto/verifier.ts';
import { type Request, type Topology, TABLE_II, poissonScenarios, scalePrices } from './model.ts';
import { type InstanceOptions, type PlanInstance, defaultInstanceOptions } from './plan.ts';

export interface FederationTraffic {
  networkId: string;
  miners: string[];
  modelParameters: number;
  modelBytes: number;
  height: number;
  /** Aggregations after genesis on the canonical chain. */
  aggregations: number;
  /** Mean updates per aggregation. */
  updatesPerAggregation: number;
  /** Mean seconds between aggregations (first to last aggregating block). */
  aggregationIntervalSeconds: number;
}

/** The chain store of a node's data directory (DATADIR/chain, as the daemon keeps it) or the
 * store directory itself. Checked before opening: LevelDB would create an empty store in any
 * directory it is pointed at, and this reader must never write. */
async function storeDir(datadir: string): Promise<string> {
  for (const dir of [join(datadir, 'chain'), datadir]) {
    try {
      if ((await stat(join(dir, 'CURRENT'))).isFile()) return dir;
    } catch {
      // not a store: try the next candidate
    }
  }
  throw new BflError(ErrorCode.DATA_NOT_FOUND, `no chain store in ${datadir} (give the --datadir of a miner or client that has synced the chain)`);
}

/** Reads the traffic figures through ChainStore; never writes (the store must exist). */
export async function readFederationTraffic(datadir: string): Promise<FederationTraffic> {
  const store = await ChainStore.open({ datadir: await storeDir(datadir), signatures: new InThreadVerifier(), readOnly: true });
  try {
    const times: number[] = [];
    let updates = 0;
    for (let h = 1; h <= store.tip.height; h++) {
      const b = (await store.blockAt(h))!;
      for (const tx of b.txs) {
        if (tx.type !== 'aggregation') continue;
        times.push(b.header.timestamp);
        updates += tx.entries.length;
      }
    }
    const miners = store.params.members.filter((m) => m.role === 'miner').map((m) => m.id).sort();
    return {
      networkId: store.params.networkId,
      miners,
      modelParameters: store.params.initialModel.length / 4,
      modelBytes: store.params.initialModel.length,
      height: store.tip.height,
      aggregations: times.length,
      updatesPerAggregation: times.length ? updates / times.length : 0,
      // the genesis time starts the first round, so n aggregations span n intervals
      aggregationIntervalSeconds: times.length ? (times[times.length - 1] - store.params.genesisTime) / 1000 / times.length : NaN,
    };
  } finally {
    await store.close();
  }
}

export interface KeyDemandOptions {
  /** K_L: secret-key rate (bit/s) one QKD link of L = 160 km sustains. The paper never gives a
   * number; 10 kbit/s is our assumption for a trusted-relay MDI-QKD span. Set the real figure. */
  linkKeyRate: number;
}

export const defaultKeyDemandOptions: KeyDemandOptions = { linkKeyRate: 10_000 };

/**
 * Key rate per miner pair (bit/s). Each update reaches the miners from one of them (uniformly)
 * and is forwarded to all others; each global model leaves the miner that mined it for all
 * others. An unordered pair {i, j} thus carries a share 2/M of both, per aggregation:
 * k = 8 · modelBytes · (U + 1) · (2/M) / interval. Summed over the M(M−1)/2 pairs it is
 * 8 · modelBytes · (U + 1) · (M − 1) / interval: model size × aggregation frequency × miners.
 */
export function pairKeyRate(t: FederationTraffic): number {
  const M = t.miners.length;
  return (8 * t.modelBytes * (t.updatesPerAggregation + 1) * (2 / M)) / t.aggregationIntervalSeconds;
}

/** Miners (sorted by id) to topology nodes: spread evenly over the node list, or as given. */
export function placeMiners(miners: string[], topology: Topology, nodes?: string[]): Map<string, string> {
  if (nodes) {
    if (nodes.length !== miners.length) throw new BflError(ErrorCode.BAD_CONFIG, `--miner-nodes lists ${nodes.length} nodes for ${miners.length} miners (${miners.join(', ')}); give one node per miner, in miner-id order`);
    for (const n of nodes) if (!topology.nodes.includes(n)) throw new BflError(ErrorCode.BAD_CONFIG, `--miner-nodes: ${n} is not a node of ${topology.name} (${topology.nodes.join(', ')})`);
    if (new Set(nodes).size !== nodes.length) throw new BflError(ErrorCode.BAD_CONFIG, '--miner-nodes: two miners on one node need no QKD link between them; list distinct nodes');
    return new Map(miners.map((m, i) => [m, nodes[i]]));
  }
  if (miners.length > topology.nodes.length) throw new BflError(ErrorCode.BAD_CONFIG, `${miners.length} miners do not fit on the ${topology.nodes.length} nodes of ${topology.name}; use a larger topology file`);
  return new Map(miners.map((m, i) => [m, topology.nodes[Math.floor((i * topology.nodes.length) / miners.length)]]));
}

/**
 * The planning instance of a federation: one request per miner pair; the measured key rate is
 * the mean demand, and scenario ω ∈ {0, …, |Ω|−1} (Poisson, mean λ = ⌊|Ω|/3⌋, as eq. 46) scales
 * it by ω/λ, so ρ_r(ω) = ⌈(ω/λ) · k_r / K_L⌉.
 */
export function federationInstance(topology: Topology, traffic: FederationTraffic, o: Partial<InstanceOptions & KeyDemandOptions & { minerNodes: string[] }> = {}): { instance: PlanInstance; pairKeyRate: number; meanLinks: number } {
  const opts = { ...defaultInstanceOptions, ...defaultKeyDemandOptions, ...o };
  if (traffic.miners.length < 2) throw new BflError(ErrorCode.BAD_CONFIG, `network ${traffic.networkId} has ${traffic.miners.length} miner: key distribution needs at least two`);
  if (traffic.aggregations === 0 || !(traffic.aggregationIntervalSeconds > 0)) {
    throw new BflError(ErrorCode.DATA_NOT_FOUND, `the chain of ${traffic.networkId} holds no aggregation yet (height ${traffic.height}): let the network run until it aggregates, then plan`);
  }
  const place = placeMiners(traffic.miners, topology, o.minerNodes);
  const requests: Request[] = [];
  for (let i = 0; i < traffic.miners.length; i++) {
    for (let j = i + 1; j < traffic.miners.length; j++) requests.push({ source: place.get(traffic.miners[i])!, destination: place.get(traffic.miners[j])! });
  }
  const k = pairKeyRate(traffic);
  const sc = poissonScenarios(opts.scenarios);
  const lambda = Math.max(1, Math.floor(opts.scenarios / 3));
  // the 1e-9 keeps a rate of exactly n links at n (floating-point noise must not add a link)
  const level = (w: number) => Math.max(0, Math.ceil(((w / lambda) * k) / opts.linkKeyRate - 1e-9));
  return {
    instance: {
      topology,
      requests,
      probabilities: sc.map((s) => s.probability),
      demand: requests.map(() => sc.map((s) => level(s.level))),
      reserved: TABLE_II.reserved,
      onDemand: scalePrices(TABLE_II.onDemand, opts.onDemandFactor),
      capacity: opts.capacity,
      routing: opts.routing,
      paths: opts.paths,
    },
    pairKeyRate: k,
    meanLinks: k / opts.linkKeyRate,
  };
}
