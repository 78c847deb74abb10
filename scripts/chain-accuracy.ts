/**
 * Each aggregation of a stopped testnet's chain, evaluated on the test half, with the
 * staleness of every update it aggregated (docs/decisions.md, "Stale updates take a shorter
 * step"):
 *
 *   npx bfl-node testnet --dir DIR        (the directory is kept when --dir is given)
 *   node scripts/chain-accuracy.ts DIR [MINER]      (MINER: default miner-1)
 *
 * Prints per aggregation: height, round, accuracy, then per update client:τ:weight (L = low).
 * The last line counts the updates by staleness τ.
 */
import { join } from 'node:path';
import { ChainStore } from '../src/chain/store.ts';
import { loadNetworkConfig } from '../src/config/network.ts';
import { toHex } from '../src/core/bytes.ts';
import { aggregationTxOf } from '../src/core/chain.ts';
import type { RecordTx } from '../src/core/types.ts';
import { payloadToDelta } from '../src/core/update.ts';
import { InThreadVerifier } from '../src/crypto/verifier.ts';
import { loadTestSet } from '../src/learn/data.ts';
import { ModelRuntime } from '../src/learn/runtime.ts';
import { evaluate } from '../src/learn/train.ts';
import { modelSpecOf } from '../src/node/daemon.ts';

const [dir, miner = 'miner-1'] = process.argv.slice(2);
if (!dir) {
  console.error('usage: node scripts/chain-accuracy.ts TESTNET_DIR [MINER]');
  process.exit(2);
}
const cfg = await loadNetworkConfig(join(dir, 'network.json'));
const rt = await ModelRuntime.create(modelSpecOf(cfg));
const test = loadTestSet(cfg.learning.dataset);
const store = await ChainStore.open({ datadir: join(dir, 'data', miner, 'chain'), signatures: new InThreadVerifier(), readOnly: true });
const roundOf = new Map<string, number>();
const records = new Map<string, RecordTx>();
const byTau = new Map<number, number>();
for (let h = 0; h <= store.tip.height; h++) {
  const block = (await store.blockAt(h))!;
  for (const t of block.txs) if (t.type === 'record') records.set(toHex(t.updateDigest), t);
  const agg = aggregationTxOf(block);
  if (!agg) continue;
  roundOf.set(toHex(agg.modelHash), agg.round);
  if (agg.round === 0) continue;
  const accuracy = (await evaluate(rt, payloadToDelta(agg.model), test)).accuracy;
  const entries = agg.entries.map((e) => {
    const base = roundOf.get(toHex(records.get(toHex(e.updateDigest))!.baseModelHash));
    const tau = base === undefined ? NaN : agg.round - 1 - base;
    byTau.set(tau, (byTau.get(tau) ?? 0) + 1);
    return `${e.clientId}:${tau}:${e.weight.toFixed(3)}${e.high ? '' : 'L'}`;
  });
  console.log(`height ${h} round ${agg.round} accuracy ${accuracy.toFixed(4)}  ${entries.join(' ')}`);
}
console.log(`updates by staleness: ${[...byTau].sort(([a], [b]) => a - b).map(([t, n]) => `τ=${t}: ${n}`).join(', ')}`);
await store.close();
await rt.close();
