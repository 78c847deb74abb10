/**
 * Markdown table of attack-experiment summaries: `node scripts/attack-table.ts DIR [FIGDIR]` reads
 * every attack-*.json that `bfl-node experiment attack --out DIR` wrote (docs/experiments.md).
 * With FIGDIR, also the figures per partition, as small multiples (a panel per attack, one
 * colour per rule in every panel): attack-accuracy-PARTITION (accuracy per aggregation under
 * attack, and the default's run without attack) and attack-detection-PARTITION (detection and
 * false-positive rate per aggregation of the BFL-MEC variants). One chart per attack put the
 * rules' curves on top of each other within a point of accuracy (issue 14).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Series, smallMultiples, writePlot, zoomedRange } from '../src/experiments/plot.ts';

const [dir, figDir] = process.argv.slice(2);
if (!dir) {
  process.stderr.write('usage: node scripts/attack-table.ts DIR [FIGDIR]\n');
  process.exit(2);
}
interface Round {
  round: number;
  accuracy: number;
  attackerUpdates: number;
  detected: number;
  honestUpdates: number;
  falsePositives: number;
}
interface Summary {
  attack: string;
  aggregator: string;
  partition: string;
  detectionRate: number | null;
  detectionRateLast10: number | null;
  falsePositiveRate: number;
  accuracy: number;
  accuracyNoAttack: number;
  accuracyDrop: number;
  settings?: Record<string, unknown>;
  rounds?: Round[];
  baseline?: { round: number; accuracy: number }[];
}
const rows: (Summary & { variant: string })[] = [];
for (const f of readdirSync(dir).filter((x) => /^attack-.*\.json$/.test(x)).sort()) {
  const s = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Summary;
  const variant = Object.entries(s.settings ?? {}).map(([k, v]) => `${k} ${v === null ? 'off' : v}`).join(', ');
  rows.push({ ...s, variant });
}
const order = ['sign-flip', 'scale:10', 'noise:0.05', 'label-flip', 'alie:1', 'ipm:0.5'];
const rank = (a: string) => (order.includes(a) ? order.indexOf(a) : order.length);
rows.sort((a, b) => a.partition.localeCompare(b.partition) || rank(a.attack) - rank(b.attack) || a.attack.localeCompare(b.attack) || a.aggregator.localeCompare(b.aggregator) || a.variant.localeCompare(b.variant));
const f3 = (x: number | null) => (x === null ? '-' : x.toFixed(3));
const nameOf = (r: Summary & { variant: string }) => r.aggregator + (r.variant ? ` (${r.variant})` : '');
const scored = (r: Summary) => r.aggregator.startsWith('bfl-mec');
// legend labels short enough for the figures' legend column
const short: Record<string, string> = { 'bfl-mec': 'default', 'bfl-mec (maxNormRatio off)': 'default, no length', 'bfl-mec-dbscan': 'previous (DBSCAN)', 'bfl-mec-paper': 'paper rule', fedavg: 'FedAvg' };
const label = (r: Summary & { variant: string }) => short[nameOf(r)] ?? nameOf(r);
console.log('| partition | attack | aggregator | detection | last 10 | false positives | accuracy | no attack | drop (points) |');
console.log('|---|---|---|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  const s = scored(r);
  console.log(`| ${r.partition} | ${r.attack} | ${nameOf(r)} | ${s ? f3(r.detectionRate) : '-'} | ${s ? f3(r.detectionRateLast10 ?? null) : '-'} | ${s ? f3(r.falsePositiveRate) : '-'} | ${r.accuracy.toFixed(4)} | ${r.accuracyNoAttack.toFixed(4)} | ${r.accuracyDrop.toFixed(2)} |`);
}

if (figDir) {
  for (const partition of [...new Set(rows.map((r) => r.partition))]) {
    const here = rows.filter((r) => r.partition === partition && r.rounds);
    const attacks = [...new Set(here.map((r) => r.attack))];
    // the default's run without attack is the reference line in every panel
    const reference = here.find((r) => r.aggregator === 'bfl-mec' && !r.variant && r.baseline);
    const accuracyPanels = attacks.map((attack) => ({
      title: attack,
      series: [
        ...here.filter((r) => r.attack === attack).map((r): Series => ({ name: label(r), points: r.rounds!.map((x) => [x.round, x.accuracy]) })),
        ...(reference ? [{ name: 'default, no attack', points: reference.baseline!.map((x): [number, number] => [x.round, x.accuracy]) }] : []),
      ],
    }));
    const all = accuracyPanels.flatMap((p) => p.series);
    await writePlot(join(figDir, `attack-accuracy-${partition}`), smallMultiples({ title: `accuracy under attack, 3 of 10 clients rotating (${partition})`, xLabel: 'aggregation', yLabel: 'test accuracy', panels: accuracyPanels, yRange: zoomedRange(all, { lowQuantile: 0.05, step: 0.05, floor: 0, ceil: 1 }) }));
    const rate = (n: number, d: number): number => (d ? n / d : 0);
    const detectionPanels = attacks.map((attack) => ({
      title: attack,
      series: here
        .filter((r) => r.attack === attack && scored(r))
        .flatMap((r): Series[] => [
          { name: `${label(r)}: det.`, points: r.rounds!.filter((x) => x.attackerUpdates > 0).map((x) => [x.round, rate(x.detected, x.attackerUpdates)]) },
          { name: `${label(r)}: f.p.`, points: r.rounds!.map((x) => [x.round, rate(x.falsePositives, x.honestUpdates)]) },
        ]),
    }));
    // a margin around 0-1 so that lines at 0 (no false positives) and 1 do not hide in the frame
    await writePlot(join(figDir, `attack-detection-${partition}`), smallMultiples({ title: `detection and false positives per aggregation (${partition})`, xLabel: 'aggregation', yLabel: 'rate', panels: detectionPanels, yRange: [-0.05, 1.05] }));
  }
}
