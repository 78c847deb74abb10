/**
 * `bfl-node experiment association`: the DT paper's Figs. 6-9 in our twin. Every scheduler
 * schedules the same rounds (one twin seed: the same positions and fading for all), and we
 * record each round's weighted cost, time, energy and the scheduler's execution time.
 */
import { join } from 'node:path';
import { DEFAULT_POLICY, type D3qnOptions, type PolicyMeta, d3qnScheduler, defaultD3qnOptions, savePolicy, trainD3qn } from '../association/d3qn.ts';
import { type Scheduler, type SchedulerName, SCHEDULERS, heuristicScheduler } from '../association/schedulers.ts';
import { type MobilityOptions, type TwinParams, Twin, checkOneToOne, defaultMobility, defaultTwinParams, roundCost } from '../association/twin.ts';
import { readFile } from 'node:fs/promises';
import { lineChart, scatterChart } from './plot.ts';
import { Report } from './report.ts';

export interface AssociationOptions {
  /** Rounds every scheduler schedules (the paper: 2500, 100 epochs; 1000 keeps a run of all five
   * schedulers within minutes on 2 shared cores). */
  rounds: number;
  schedulers: SchedulerName[];
  seed: number;
  twin: TwinParams;
  mobility: MobilityOptions;
  /** Train the D3QN first (written to `policy`, default `<out>/d3qn-policy`), else load `policy`. */
  train: boolean;
  policy?: string;
  d3qn: D3qnOptions;
  out: string;
  onRound?: (scheduler: string, round: number) => void;
  onEpisode?: (e: { episode: number; loss: number; cost: number; epsilon: number }) => void;
}

export const defaultAssociation: Omit<AssociationOptions, 'out'> = {
  rounds: 1000,
  schedulers: [...SCHEDULERS],
  // evaluation seed apart from the training episodes' (seed · 1,000,003 + episode)
  seed: 424242,
  twin: defaultTwinParams,
  mobility: defaultMobility,
  train: false,
  d3qn: defaultD3qnOptions,
};

export interface SchedulerSummary {
  meanCost: number;
  meanTimeS: number;
  meanEnergyJ: number;
  execMsPerRound: number;
  medianCost: number;
  p95Cost: number;
}

export interface AssociationResult {
  rounds: number;
  clients: number;
  servers: number;
  channels: number;
  schedulers: Record<string, SchedulerSummary>;
  policy: string | null;
  training: PolicyMeta['curve'] | null;
  files: string[];
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

export async function runAssociation(o: AssociationOptions): Promise<AssociationResult> {
  const p = o.twin;
  const report = new Report(o.out);
  let policy: string | null = null;
  let training: PolicyMeta['curve'] | null = null;
  if (o.schedulers.includes('d3qn') || o.train) {
    policy = o.policy ?? (o.train ? join(o.out, 'd3qn-policy') : DEFAULT_POLICY);
    if (o.train) {
      const r = await trainD3qn(p, o.d3qn, o.onEpisode);
      report.files.push(...(await savePolicy(policy, r, p, `npx bfl-node experiment association --train --policy ${policy} --episodes ${o.d3qn.episodes}`)));
    }
    training = (JSON.parse(await readFile(`${policy}.json`, 'utf8')) as PolicyMeta).curve;
  }
  const perRound: Record<string, { cost: number[]; time: number[]; energy: number[]; ms: number[] }> = {};
  for (const name of o.schedulers) {
    const sched: Scheduler = name === 'd3qn' ? await d3qnScheduler(policy!) : heuristicScheduler(name, o.seed + 1);
    try {
      // warm-up on other rounds: onnxruntime's first runs and V8's first compiles are not the
      // scheduler's steady-state execution time
      const warm = new Twin(p, o.seed + 99, o.mobility);
      for (let r = 0; r < 3; r++) await sched.assign(warm.next());
      const twin = new Twin(p, o.seed, o.mobility);
      const rec: { cost: number[]; time: number[]; energy: number[]; ms: number[] } = (perRound[name] = { cost: [], time: [], energy: [], ms: [] });
      for (let r = 0; r < o.rounds; r++) {
        const s = twin.next();
        const t0 = performance.now();
        const a = await sched.assign(s);
        rec.ms.push(performance.now() - t0);
        checkOneToOne(p, a);
        const c = roundCost(s, a);
        twin.record(a, c);
        rec.cost.push(c.cost);
        rec.time.push(c.timeS);
        rec.energy.push(c.energyJ);
        o.onRound?.(name, r + 1);
      }
    } finally {
      await sched.close?.();
    }
  }
  const schedulers: Record<string, SchedulerSummary> = {};
  for (const [name, r] of Object.entries(perRound)) {
    schedulers[name] = { meanCost: mean(r.cost), meanTimeS: mean(r.time), meanEnergyJ: mean(r.energy), execMsPerRound: mean(r.ms), medianCost: quantile(r.cost, 0.5), p95Cost: quantile(r.cost, 0.95) };
  }
  const names = Object.keys(perRound);
  await report.csv('association-rounds', ['scheduler', 'round', 'cost', 'time_s', 'energy_j', 'exec_ms'], names.flatMap((n) => perRound[n].cost.map((c, i) => [n, i + 1, c, perRound[n].time[i], perRound[n].energy[i], perRound[n].ms[i]])));
  await plots(report, perRound, training);
  const result: AssociationResult = { rounds: o.rounds, clients: p.clients, servers: p.servers, channels: p.channels, schedulers, policy, training, files: report.files };
  await report.json('association', result);
  return result;
}

/** Figs. 6-9. Axes are clipped at the 99th percentile of all schedulers but the nearest-server
 * one (whose deep fades run to hundreds of times the others' cost). */
async function plots(report: Report, perRound: Record<string, { cost: number[]; time: number[]; energy: number[]; ms: number[] }>, training: PolicyMeta['curve'] | null): Promise<void> {
  const names = Object.keys(perRound);
  const metrics = [
    ['cost', 'weighted cost λT + μΣE', 'cost'],
    ['time', 'round time T (s)', 'time'],
    ['energy', 'clients\' energy ΣE (J)', 'energy'],
  ] as const;
  for (const [key, label, file] of metrics) {
    const rest = names.filter((n) => n !== 'nearest').flatMap((n) => perRound[n][key]);
    const top = quantile(rest.length ? rest : perRound[names[0]][key], 0.99);
    const yRange: [number, number] = [0, top * 1.1];
    await report.plot(`association-fig6-${file}`, scatterChart({ title: `Per-round ${label} vs scheduling time`, xLabel: 'log10 execution time per round (ms)', yLabel: label, yRange, series: names.map((n) => ({ name: n, points: perRound[n][key].map((v, i) => [Math.log10(Math.max(1e-4, perRound[n].ms[i])), v] as [number, number]) })) }));
    // a moving mean over 25 rounds (one data epoch) so that five schedulers stay readable
    const w = 25;
    const smooth = (xs: number[]) => xs.map((_, i) => [i + 1, mean(xs.slice(Math.max(0, i - w + 1), i + 1))] as [number, number]);
    await report.plot(`association-fig7-${file}`, lineChart({ title: `${label} over rounds (mean of the last ${w})`, xLabel: 'round', yLabel: label, yRange, series: names.map((n) => ({ name: n, points: smooth(perRound[n][key]) })) }));
    const ecdf = (xs: number[]) => [...xs].sort((a, b) => a - b).map((v, i) => [Math.min(v, yRange[1]), (i + 1) / xs.length] as [number, number]);
    await report.plot(`association-fig8-${file}`, lineChart({ title: `ECDF of the per-round ${label}`, xLabel: label, yLabel: 'ECDF', yRange: [0, 1], series: names.map((n) => ({ name: n, points: ecdf(perRound[n][key]) })) }));
  }
  await report.plot('association-exec-time', lineChart({ title: 'Scheduling time per round', xLabel: 'round', yLabel: 'log10 execution time (ms)', series: names.map((n) => ({ name: n, points: perRound[n].ms.map((v, i) => [i + 1, Math.log10(Math.max(1e-4, v))] as [number, number]) })) }));
  if (training && training.length) {
    await report.plot('association-fig9-loss', lineChart({ title: 'D3QN training loss (mean per episode)', xLabel: 'episode', yLabel: 'loss (22)', series: [{ name: 'shared network', points: training.filter((e) => Number.isFinite(e.loss)).map((e) => [e.episode, e.loss] as [number, number]) }] }));
  }
}
