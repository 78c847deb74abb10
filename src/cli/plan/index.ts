import { Command } from 'commander';
import { HighsWorker } from '../../qkd/lp.ts';
import { loadTopology } from '../../qkd/model.ts';
import { federationInstance, readFederationTraffic } from '../../qkd/demand.ts';
import { METHODS, type Method, type PlanInstance, type PlanResult, defaultInstanceOptions, paperInstance, solveMethod } from '../../qkd/plan.ts';
import { isLockError, lockedError } from '../datadir.ts';
import { UsageError, parseIntFlag, parseNumberFlag } from '../exit.ts';
import { print, printJson } from '../output.ts';

export function planCommand(): Command {
  const plan = new Command('plan').description('capacity planning for the federation');
  plan
    .command('qkd')
    .description('QKD resource planner (two-stage stochastic integer program, HiGHS): wavelengths and devices to reserve per link, and the cost against the QBN-EVF and QBN-Random baselines')
    .option('--topology <t>', 'nsfnet, usnet or a JSON file {"nodes": [...], "links": [{"a", "b", "km"}]}', 'nsfnet')
    .option('--requests <n>', 'random requests |R| (default: 100 on nsfnet, 200 on usnet and files, as the paper)', parseIntFlag('--requests', 1, 10_000))
    .option('--scenarios <n>', 'demand scenarios |Ω| (Poisson, mean ⌊|Ω|/3⌋)', parseIntFlag('--scenarios', 1, 100), defaultInstanceOptions.scenarios)
    .option('--on-demand-factor <f>', 'multiplies the on-demand prices of Table II', parseNumberFlag('--on-demand-factor', 0.01, 100), defaultInstanceOptions.onDemandFactor)
    .option('--method <m>', 'sip, evf, random or all', 'all')
    .option('--seed <n>', 'seed of the random requests and of QBN-Random', parseIntFlag('--seed', 0, 2 ** 32 - 1), defaultInstanceOptions.seed)
    .option('--routing <r>', 'paths (k shortest candidates per request) or arcs (arc-flow, eq. 22; slower)', defaultInstanceOptions.routing)
    .option('--paths <k>', 'candidate paths per request with --routing paths', parseIntFlag('--paths', 1, 50), defaultInstanceOptions.paths)
    .option('--km-wavelengths <n>', '|κ|: KM wavelengths per link (default: no limit)', parseIntFlag('--km-wavelengths', 1, 1_000_000))
    .option('--qkd-wavelengths <n>', '|σ|: QKD wavelengths per link (default: no limit)', parseIntFlag('--qkd-wavelengths', 1, 1_000_000))
    .option('--time-limit <s>', 'seconds per HiGHS solve', parseNumberFlag('--time-limit', 0.1, 86_400), 60)
    .option('--from-chain <datadir>', "derive the requests from a node's chain: one per miner pair, key rate from model size, aggregation frequency and miners")
    .option('--link-key-rate <bps>', 'K_L with --from-chain: secret-key bit/s of one QKD link (L = 160 km)', parseNumberFlag('--link-key-rate', 1e-6, 1e15), 10_000)
    .option('--miner-nodes <list>', 'with --from-chain: topology node of each miner, in miner-id order (default: spread evenly)')
    .option('--json', 'print the result as JSON', false)
    .action(async (o: PlanFlags) => {
      const methods = methodList(o.method);
      if (o.routing !== 'paths' && o.routing !== 'arcs') throw new UsageError('--routing must be paths or arcs');
      if (o.fromChain === undefined && (o.minerNodes !== undefined)) throw new UsageError('--miner-nodes needs --from-chain');
      if (o.fromChain !== undefined && o.requests !== undefined) throw new UsageError('--requests and --from-chain exclude each other: the chain gives one request per miner pair');
      const topology = await loadTopology(o.topology);
      const common = {
        scenarios: o.scenarios,
        onDemandFactor: o.onDemandFactor,
        seed: o.seed,
        routing: o.routing as 'paths' | 'arcs',
        paths: o.paths,
        capacity: { km: o.kmWavelengths ?? Infinity, qkd: o.qkdWavelengths ?? Infinity },
      };
      let instance: PlanInstance;
      let demand: Record<string, unknown> | undefined;
      if (o.fromChain !== undefined) {
        const traffic = await readFederationTraffic(o.fromChain).catch((e) => {
          // a running node holds its store's lock: say which node, as `chain show` does
          throw isLockError(e) ? lockedError(o.fromChain!, 'stop the node first (or copy its datadir and plan from the copy)') : e;
        });
        const f = federationInstance(topology, traffic, { ...common, linkKeyRate: o.linkKeyRate, minerNodes: o.minerNodes?.split(',') });
        instance = f.instance;
        demand = { ...traffic, pairKeyRateBitsPerSecond: f.pairKeyRate, linkKeyRateBitsPerSecond: o.linkKeyRate, meanQkdLinksPerPair: f.meanLinks, requests: instance.requests };
      } else {
        instance = paperInstance(topology, { ...common, requests: o.requests ?? (o.topology === 'nsfnet' ? 100 : 200) });
      }
      const worker = new HighsWorker();
      const results: Partial<Record<Method, PlanResult>> = {};
      try {
        for (const m of methods) results[m] = await solveMethod(m, instance, worker, o.seed, { timeLimit: o.timeLimit });
      } finally {
        await worker.close();
      }
      const out = {
        topology: topology.name,
        nodes: topology.nodes.length,
        links: topology.links.length,
        requests: instance.requests.length,
        scenarios: instance.probabilities.length,
        onDemandFactor: o.onDemandFactor,
        ...(demand ? { demand } : {}),
        methods: Object.fromEntries(Object.entries(results).map(([m, r]) => [m, { status: r.status, firstStageCost: r.firstStageCost, secondStageCost: r.secondStageCost, totalCost: r.totalCost, gap: r.gap, solveMs: Math.round(r.solveMs), links: r.links }])),
      };
      if (o.json) {
        printJson(out);
        return;
      }
      if (demand) {
        print(`network ${String(demand.networkId)}: ${(demand.miners as string[]).length} miners, model ${String(demand.modelParameters)} parameters, ${Number(demand.updatesPerAggregation).toFixed(1)} updates per aggregation every ${Number(demand.aggregationIntervalSeconds).toFixed(2)} s`);
        print(`  key rate per miner pair ${(Number(demand.pairKeyRateBitsPerSecond) / 1e6).toFixed(3)} Mbit/s = ${Number(demand.meanQkdLinksPerPair).toFixed(1)} QKD links of ${o.linkKeyRate} bit/s`);
      }
      print(`${topology.name}: ${topology.nodes.length} nodes, ${topology.links.length} links, ${instance.requests.length} requests, ${instance.probabilities.length} scenarios, on-demand ×${o.onDemandFactor}`);
      const best = results.sip?.totalCost;
      for (const [m, r] of Object.entries(results)) {
        const ratio = best !== undefined && m !== 'sip' && Number.isFinite(best) ? `  (${(r.totalCost / best).toFixed(3)}× SIP)` : '';
        print(`  ${m.padEnd(7)} ${r.status.padEnd(10)} first stage ${fmt(r.firstStageCost)}  second stage ${fmt(r.secondStageCost)}  total ${fmt(r.totalCost)}${ratio}  ${Math.round(r.solveMs)} ms`);
      }
      const shown = results.sip ?? Object.values(results)[0]!;
      print('');
      print(`${shown.method} plan (reserved wavelengths; expected on-demand):`);
      print(`  ${'link'.padEnd(28)} ${'km'.padStart(6)} ${'KM'.padStart(6)} ${'QKD'.padStart(7)} ${'+KM'.padStart(7)} ${'+QKD'.padStart(8)}`);
      for (const l of shown.links) {
        if (l.reservedKm + l.reservedQkd + l.expectedOnDemandKm + l.expectedOnDemandQkd === 0) continue;
        print(`  ${`${l.a}-${l.b}`.padEnd(28)} ${String(l.km).padStart(6)} ${String(l.reservedKm).padStart(6)} ${String(l.reservedQkd).padStart(7)} ${l.expectedOnDemandKm.toFixed(2).padStart(7)} ${l.expectedOnDemandQkd.toFixed(2).padStart(8)}`);
      }
    });
  return plan;
}

type PlanFlags = { topology: string; requests?: number; scenarios: number; onDemandFactor: number; method: string; seed: number; routing: string; paths: number; kmWavelengths?: number; qkdWavelengths?: number; timeLimit: number; fromChain?: string; linkKeyRate: number; minerNodes?: string; json: boolean };

const fmt = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '-');

function methodList(v: string): Method[] {
  if (v === 'all') return [...METHODS];
  const xs = v.split(',');
  for (const x of xs) if (!(METHODS as readonly string[]).includes(x)) throw new UsageError(`unknown method ${x}: use ${METHODS.join(', ')} or all`);
  return xs as Method[];
}
