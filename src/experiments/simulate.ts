import type { SimOptions, SimResult } from '../sim/harness.ts';

/**
 * The simulator's runSimulation, its module loaded on the first run: the harness brings the whole
 * node (chain store, miner, client, the daemon for `--transport libp2p`), which the CLI's other
 * commands and an experiment's flag checks do not need (docs/decisions.md, "A process starts
 * without libp2p").
 */
export async function runSimulation(o: SimOptions): Promise<SimResult> {
  return (await import('../sim/harness.ts')).runSimulation(o);
}
