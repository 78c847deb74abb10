/**
 * `bfl-node experiment fedsac`: the QKD paper's Fig. 9, the network cost per epoch of FedSAC,
 * DecSAC and DecPPO with the SIP optimum (HiGHS) as the reference line, on NSFNET or USNET.
 */
import { HighsWorker } from '../qkd/lp.ts';
import { loadTopology } from '../qkd/model.ts';
import { paperInstance, solveSip } from '../qkd/plan.ts';
import { QkdEnv } from '../qkd/rl/env.ts';
import { RL_METHODS, type RlMethod, type RlOptions, type RlRun, defaultRlOptions, runRl } from '../qkd/rl/learners.ts';
import { lineChart } from './plot.ts';
import { Report } from './report.ts';

export interface FedSacExperimentOptions extends RlOptions {
  topology: string;
  methods: RlMethod[];
  out: string;
  onEpoch?: (method: RlMethod, epoch: number, ratio: number) => void;
}

export async function runFedSacExperiment(o: FedSacExperimentOptions) {
  const topology = await loadTopology(o.topology);
  // §VI-A: |R| = 100 on NSFNET, 200 on USNET, |Ω| = 10
  const inst = paperInstance(topology, { requests: o.topology === 'nsfnet' ? 100 : 200, seed: o.seed });
  const worker = new HighsWorker();
  let sipCost: number;
  try {
    sipCost = (await solveSip(inst, worker)).totalCost;
  } finally {
    await worker.close();
  }
  const env = new QkdEnv(inst);
  const runs: Partial<Record<RlMethod, RlRun>> = {};
  for (const m of o.methods) runs[m] = await runRl(env, m, sipCost, o, (e) => o.onEpoch?.(m, e.epoch, e.ratioToSip));
  const report = new Report(o.out);
  const name = `fedsac-${o.topology}`;
  const methods = Object.fromEntries(Object.entries(runs).map(([m, r]) => [m, { epochsToConverge: r.epochsToConverge, finalCostRatioToSip: r.finalCostRatioToSip, seconds: Math.round(r.seconds) }]));
  const summary = { topology: o.topology, sipCost, fixedRoutingOptimum: env.optimalCost, agents: env.agents.length, managers: Math.ceil(env.agents.length / 2), links: env.links.length, epochs: o.epochs, methods };
  const list = Object.values(runs);
  await report.csv(name, ['epoch', ...list.map((r) => `${r.method}_cost`), 'sip_cost'], Array.from({ length: o.epochs }, (_, i) => [i + 1, ...list.map((r) => r.curve[i].cost), sipCost]));
  await report.plot(
    name,
    lineChart({
      title: `Fig. 9: convergence, ${o.topology}`,
      xLabel: 'epoch',
      yLabel: 'deployment cost (million units)',
      series: [...list.map((r) => ({ name: LABEL[r.method], points: r.curve.map((c) => [c.epoch, c.cost / 1e6] as [number, number]) })), { name: 'SIP optimum', points: [[1, sipCost / 1e6], [o.epochs, sipCost / 1e6]] }],
    }),
  );
  await report.json(name, { options: { ...o, onEpoch: undefined }, summary, curves: Object.fromEntries(list.map((r) => [r.method, r.curve])) });
  return { ...summary, files: report.files };
}

const LABEL: Record<RlMethod, string> = { fedsac: 'FedSAC', decsac: 'DecSAC', decppo: 'DecPPO' };

export const defaultFedSacExperiment: Omit<FedSacExperimentOptions, 'onEpoch'> = { ...defaultRlOptions, topology: 'nsfnet', methods: RL_METHODS, out: 'out' };
