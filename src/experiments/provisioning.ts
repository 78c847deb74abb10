/**
 * `bfl-node experiment provisioning`: the paper's Figs. 5-8 (§VI-C/D) on NSFNET and USNET:
 * the cost structure against the per-request reservation (Fig. 5), and the deployment cost of
 * SIP, QBN-EVF and QBN-Random against the number of requests (Fig. 6), the number of scenarios
 * (Fig. 7) and the on-demand price factor (Fig. 8). Seeded: the same options give the same
 * numbers (HiGHS runs single-threaded with a fixed seed).
 */
import { HighsWorker, type SolveOptions } from '../qkd/lp.ts';
import { loadTopology } from '../qkd/model.ts';
import { METHODS, type Method, type PlanResult, paperInstance, solveMethod, uniformReservationCost } from '../qkd/plan.ts';
import { barChart, lineChart } from './plot.ts';
import { Report } from './report.ts';

export interface ProvisioningOptions {
  topologies: string[];
  /** |R| for Figs. 6 per topology name (other names use `requests.default`). */
  requests: Record<string, number[]>;
  /** |R| for Figs. 5, 7, 8: the paper's 100 on NSFNET, 200 on USNET. */
  defaultRequests: Record<string, number>;
  scenarios: number[];
  factors: number[];
  /** Reservation levels of Fig. 5: 0 … |Ω|. */
  levels: number;
  seed: number;
  timeLimit: number;
  out: string;
  onStep?: (label: string) => void;
}

export const defaultProvisioning: ProvisioningOptions = {
  topologies: ['nsfnet', 'usnet'],
  // the paper's Fig. 6 x-axis goes up to its defaults (100 on NSFNET, 200 on USNET)
  requests: { nsfnet: [20, 40, 60, 80, 100], usnet: [40, 80, 120, 160, 200] },
  defaultRequests: { nsfnet: 100, usnet: 200 },
  scenarios: [4, 6, 8, 10, 12],
  factors: [0.5, 1, 2],
  levels: 10,
  seed: 1,
  // every solve here finished in seconds; the limit only bounds a pathological one
  timeLimit: 120,
  out: 'out',
};

type Cost = Pick<PlanResult, 'status' | 'firstStageCost' | 'secondStageCost' | 'totalCost' | 'gap' | 'solveMs'>;
const cost = (r: PlanResult): Cost => ({ status: r.status, firstStageCost: r.firstStageCost, secondStageCost: r.secondStageCost, totalCost: r.totalCost, gap: r.gap, solveMs: Math.round(r.solveMs) });

export interface TopologyResults {
  costStructure: { reserved: number; firstStageCost: number; secondStageCost: number; totalCost: number }[];
  /** Level with the lowest total cost in Fig. 5. */
  bestReserved: number;
  requests: ({ requests: number } & Record<Method, Cost>)[];
  scenarios: ({ scenarios: number } & Record<Method, Cost>)[];
  factors: ({ factor: number } & Record<Method, Cost>)[];
  /** At the default |R|, |Ω| = 10, factor 1: cost ratios to SIP and the SIP solve time. */
  atDefault: { requests: number; evfOverSip: number; randomOverSip: number; sipSolveMs: number };
}

export async function runProvisioning(o: ProvisioningOptions) {
  const report = new Report(o.out);
  const so: Partial<SolveOptions> = { timeLimit: o.timeLimit };
  const worker = new HighsWorker();
  const results: Record<string, TopologyResults> = {};
  try {
    for (const name of o.topologies) {
      const topology = await loadTopology(name);
      const R = o.defaultRequests[name] ?? 100;
      const three = async (label: string, inst: ReturnType<typeof paperInstance>) => {
        const out = {} as Record<Method, Cost>;
        for (const m of METHODS) {
          o.onStep?.(`${name} ${label} ${m}`);
          out[m] = cost(await solveMethod(m, inst, worker, o.seed, so));
        }
        return out;
      };
      const base = paperInstance(topology, { requests: R, seed: o.seed });
      const costStructure = [];
      for (let w = 0; w <= o.levels; w++) {
        o.onStep?.(`${name} Fig. 5 reserve ${w}`);
        const r = await uniformReservationCost(base, w, worker, so);
        costStructure.push({ reserved: w, firstStageCost: r.firstStageCost, secondStageCost: r.secondStageCost, totalCost: r.totalCost });
      }
      const bestReserved = costStructure.reduce((b, c) => (c.totalCost < b.totalCost ? c : b)).reserved;
      const requests = [];
      for (const n of o.requests[name] ?? [R]) requests.push({ requests: n, ...(await three(`Fig. 6 |R|=${n}`, paperInstance(topology, { requests: n, seed: o.seed }))) });
      const scenarios = [];
      for (const s of o.scenarios) scenarios.push({ scenarios: s, ...(await three(`Fig. 7 |Ω|=${s}`, paperInstance(topology, { requests: R, scenarios: s, seed: o.seed }))) });
      const factors = [];
      for (const f of o.factors) factors.push({ factor: f, ...(await three(`Fig. 8 ×${f}`, paperInstance(topology, { requests: R, onDemandFactor: f, seed: o.seed }))) });
      const d: Record<Method, Cost> = factors.find((f) => f.factor === 1) ?? (await three('default', base));
      // keyed and filed by the topology's own name (a file path would make bad file names)
      results[topology.name] = {
        costStructure,
        bestReserved,
        requests,
        scenarios,
        factors,
        atDefault: { requests: R, evfOverSip: d.evf.totalCost / d.sip.totalCost, randomOverSip: d.random.totalCost / d.sip.totalCost, sipSolveMs: d.sip.solveMs },
      };
      await writeTopology(report, topology.name, results[topology.name]);
    }
  } finally {
    await worker.close();
  }
  const summary = {
    seed: o.seed,
    topologies: Object.fromEntries(Object.entries(results).map(([n, r]) => [n, { bestReserved: r.bestReserved, ...r.atDefault }])),
  };
  await report.json('provisioning', { options: { ...o, onStep: undefined }, summary, results });
  return { summary, results, files: report.files };
}

const M = (v: number) => v / 1e6;

async function writeTopology(report: Report, name: string, r: TopologyResults): Promise<void> {
  await report.csv(`provisioning-${name}-cost-structure`, ['reserved', 'first_stage', 'second_stage', 'total'], r.costStructure.map((c) => [c.reserved, c.firstStageCost, c.secondStageCost, c.totalCost]));
  await report.plot(
    `provisioning-${name}-cost-structure`,
    lineChart({
      title: `Fig. 5: cost structure, ${name}`,
      xLabel: 'QKD links reserved per request and link',
      yLabel: 'cost (million units)',
      series: [
        { name: 'first stage', points: r.costStructure.map((c) => [c.reserved, M(c.firstStageCost)]) },
        { name: 'second stage', points: r.costStructure.map((c) => [c.reserved, M(c.secondStageCost)]) },
        { name: 'total', points: r.costStructure.map((c) => [c.reserved, M(c.totalCost)]) },
      ],
    }),
  );
  const sweep = async (fig: string, key: 'requests' | 'scenarios', rows: ({ [k: string]: number | Cost } & Record<Method, Cost>)[], xLabel: string) => {
    await report.csv(`provisioning-${name}-${key}`, [key, ...METHODS.flatMap((m) => [`${m}_first`, `${m}_second`, `${m}_total`, `${m}_ms`])], rows.map((row) => [row[key] as number, ...METHODS.flatMap((m) => [row[m].firstStageCost, row[m].secondStageCost, row[m].totalCost, row[m].solveMs])]));
    await report.plot(
      `provisioning-${name}-${key}`,
      lineChart({ title: `${fig}: deployment cost, ${name}`, xLabel, yLabel: 'cost (million units)', series: METHODS.map((m) => ({ name: LABEL[m], points: rows.map((row) => [row[key] as number, M(row[m].totalCost)] as [number, number]) })) }),
    );
  };
  await sweep('Fig. 6', 'requests', r.requests, 'secure model-transmission requests |R|');
  await sweep('Fig. 7', 'scenarios', r.scenarios, 'scenarios |Ω|');
  await report.csv(`provisioning-${name}-factors`, ['factor', ...METHODS.flatMap((m) => [`${m}_first`, `${m}_second`, `${m}_total`, `${m}_ms`])], r.factors.map((row) => [row.factor, ...METHODS.flatMap((m) => [row[m].firstStageCost, row[m].secondStageCost, row[m].totalCost, row[m].solveMs])]));
  await report.plot(
    `provisioning-${name}-factors`,
    barChart({ title: `Fig. 8: on-demand cost factor, ${name}`, xLabel: 'on-demand prices × factor', yLabel: 'cost (million units)', categories: r.factors.map((f) => `${f.factor}×`), groups: METHODS.map((m) => LABEL[m]), values: METHODS.map((m) => r.factors.map((f) => M(f[m].totalCost))) }),
  );
}

const LABEL: Record<Method, string> = { sip: 'SIP', evf: 'QBN-EVF', random: 'QBN-Random' };
