import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { ChainStore } from '../../chain/store.ts';
import { type VerifyReport, verifyChain } from '../../chain/verify.ts';
import { toHex } from '../../core/bytes.ts';
import { aggregationTxOf } from '../../core/chain.ts';
import { blockHash } from '../../core/encoding.ts';
import { InThreadVerifier } from '../../crypto/verifier.ts';
import { ErrorCode, isBflError } from '../../core/errors.ts';
import { chainDirOf, isLockError, lockedError, nodeDirOfChain } from '../datadir.ts';
import { Exit, parseIntFlag } from '../exit.ts';
import { repairLevel } from '../../chain/leveldb.ts';

// Read-only: nothing is created; LevelDB has no shared lock, so a running node's chain cannot be
// opened beside it (the error names the node's pid).
// Not a verdict on the chain but on the operator's input: these go to stderr as errors.
const OPERATOR_ERRORS = new Set<string>([ErrorCode.BAD_PATH, ErrorCode.NOT_FOUND, ErrorCode.STORE_LOCKED]);
const READ_HINT = 'stop the node first (or copy its datadir and read the copy)';
const DATADIR_HELP = 'the node\'s data directory (its chain/ store is read; a chain store directory itself also works). Opened read-only; stop the node first';
import { print, printJson } from '../output.ts';

/** How the aggregations were checked (VerifyReport.aggregationCheck). */
function aggregationLine(r: VerifyReport): string {
  const c = r.aggregationCheck;
  if (!c) return '';
  // the three kinds lie in bands (accepted on work oldest, recomputed newest): count and band; --json lists every height
  const ranges = (hs: number[]) => (hs.length === 0 ? 'none' : `${hs.length} (heights ${hs[0]}${hs.length > 1 ? `..${hs.at(-1)}` : ''})`);
  if (c.aggregator === null) return 'aggregations not recomputed: this build does not know the chain\'s aggregator';
  return `aggregations (${c.aggregator}): recomputed from the update pool ${ranges(c.recomputed)}; accepted on work while syncing ${ranges(c.acceptedOnWork)}; checked on arrival, updates pruned since ${ranges(c.checkedOnArrival)}`;
}

/** DATADIR/updates beside DATADIR/chain (a copied-out chain store has none). */
function poolDirOf(chainDir: string): string | undefined {
  const node = nodeDirOfChain(chainDir);
  return node === chainDir ? undefined : join(node, 'updates');
}

export function chainCommand(): Command {
  const chain = new Command('chain').description('inspect, check and repair a node\'s stored chain');

  chain
    .command('verify')
    .description('re-validate the stored chain from genesis (exit 0 valid, 1 invalid or damaged)')
    .requiredOption('--datadir <dir>', DATADIR_HELP)
    .option('--json', 'print the report as JSON', false)
    .action(async (o: { datadir: string; json: boolean }) => {
      let report: VerifyReport;
      try {
        const dir = chainDirOf(o.datadir);
        report = await verifyChain(dir, new InThreadVerifier(), { poolDir: poolDirOf(dir) });
        if (report.error?.code === ErrorCode.STORE_LOCKED) report.error.message = lockedError(nodeDirOfChain(dir), READ_HINT).message;
      } catch (e) {
        if (!isBflError(e)) throw e;
        report = { valid: false, height: -1, blocks: 0, records: 0, aggregations: 0, error: { code: e.code, message: e.message } };
      }
      if (o.json) printJson(report);
      else if (report.valid) {
        print(`valid: ${report.blocks} blocks to height ${report.height}, ${report.aggregations} aggregations, ${report.records} update records, tip ${report.tip}`);
        print(aggregationLine(report));
      }
      else if (OPERATOR_ERRORS.has(report.error?.code ?? '')) process.stderr.write(`error: ${report.error?.message} (${report.error?.code})\n`);
      else if (report.error?.code === ErrorCode.POOL_CORRUPT) print(`INVALID update pool: ${report.error.code}: ${report.error.message}`);
      else print(`INVALID at height ${report.error?.height ?? '?'}: ${report.error?.code}: ${report.error?.message}`);
      process.exitCode = report.valid ? Exit.OK : Exit.FAILURE;
    });

  chain
    .command('repair')
    .description('rebuild a damaged chain store and update pool with LevelDB\'s repair, then verify (exit 0 valid, 1 not)')
    .requiredOption('--datadir <dir>', 'the node\'s data directory (its chain/ and updates/ stores are repaired in place). Stop the node first')
    .option('--json', 'print the report as JSON', false)
    .action(async (o: { datadir: string; json: boolean }) => {
      const dir = chainDirOf(o.datadir);
      const pool = poolDirOf(dir);
      const repaired: string[] = [];
      try {
        await repairLevel('chain', dir);
        repaired.push(dir);
        if (pool && existsSync(pool)) {
          await repairLevel('pool', pool);
          repaired.push(pool);
        }
      } catch (e) {
        throw isLockError(e) ? lockedError(nodeDirOfChain(dir), 'stop it first') : e;
      }
      const report = await verifyChain(dir, new InThreadVerifier(), { poolDir: pool });
      if (o.json) printJson({ repaired, ...report });
      else if (report.valid) print(`repaired ${repaired.join(' and ')}; valid: ${report.blocks} blocks to height ${report.height}, ${report.aggregations} aggregations, tip ${report.tip}`);
      else print(`repaired ${repaired.join(' and ')}, but still INVALID at height ${report.error?.height ?? '?'}: ${report.error?.code}: ${report.error?.message}; move ${dir} aside and restart the node to sync the chain from the other miners`);
      process.exitCode = report.valid ? Exit.OK : Exit.FAILURE;
    });

  chain
    .command('show')
    .description('print the chain head and the most recent blocks')
    .requiredOption('--datadir <dir>', DATADIR_HELP)
    .option('--count <n>', 'how many recent blocks', parseIntFlag('--count', 1, 10_000), 10)
    .option('--json', 'print as JSON', false)
    .action(async (o: { datadir: string; count: number; json: boolean }) => {
      const dir = chainDirOf(o.datadir);
      const store = await ChainStore.open({ datadir: dir, signatures: new InThreadVerifier(), readOnly: true }).catch((e) => {
        throw isLockError(e) ? lockedError(nodeDirOfChain(dir), READ_HINT) : e;
      });
      try {
        const tip = store.tip;
        const blocks = [];
        for (let h = tip.height; h >= Math.max(0, tip.height - o.count + 1); h--) {
          const b = (await store.blockAt(h))!;
          const agg = aggregationTxOf(b);
          blocks.push({
            height: h,
            hash: toHex(blockHash(b.header)),
            miner: b.header.minerId,
            timestamp: new Date(b.header.timestamp).toISOString(),
            records: b.txs.filter((t) => t.type === 'record').length,
            aggregationRound: agg ? agg.round : null,
            aggregated: agg ? agg.entries.length : 0,
            acceptedOnWork: agg ? await store.acceptedOnWork(blockHash(b.header)) : false,
          });
        }
        const head = {
          networkId: store.params.networkId,
          genesis: toHex(store.genesisHash),
          height: tip.height,
          tip: toHex(tip.hash),
          work: tip.work.toString(),
          rounds: tip.rounds,
          anchor: toHex(tip.anchor),
          modelHash: toHex(tip.modelHash),
          pending: tip.pending.length,
          balances: Object.fromEntries([...(await store.balances())].map(([k, v]) => [k, v.toString()])),
        };
        if (o.json) printJson({ head, blocks });
        else {
          print(`network ${head.networkId}  height ${head.height}  tip ${head.tip}`);
          print(`aggregation rounds ${head.rounds}  unaggregated updates ${head.pending}  global model ${head.modelHash.slice(0, 16)}…`);
          print();
          for (const b of blocks) {
            const agg = b.aggregationRound !== null ? `  aggregation round ${b.aggregationRound} (${b.aggregated} updates${b.acceptedOnWork ? ', accepted on work while syncing' : ''})` : '';
            print(`${String(b.height).padStart(6)}  ${b.hash.slice(0, 16)}…  ${b.timestamp}  ${b.miner.padEnd(12)}  ${b.records} records${agg}`);
          }
        }
      } finally {
        await store.close();
      }
    });
  return chain;
}
