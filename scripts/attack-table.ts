/**
 * Markdown table of attack-experiment summaries: `node scripts/attack-table.ts DIR` reads every
 * attack-*.json that `bfl-node experiment attack --out DIR` wrote (docs/experiments.md).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node scripts/attack-table.ts DIR\n');
  process.exit(2);
}
interface Summary {
  attack: string;
  aggregator: string;
  partition: string;
  detectionRate: number | null;
  falsePositiveRate: number;
  accuracy: number;
  accuracyNoAttack: number;
  accuracyDrop: number;
  settings?: Record<string, unknown>;
}
const rows: (Summary & { variant: string })[] = [];
for (const f of readdirSync(dir).filter((x) => /^attack-.*\.json$/.test(x)).sort()) {
  const s = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Summary;
  const variant = Object.entries(s.settings ?? {}).map(([k, v]) => `${k} ${v === null ? 'off' : v}`).join(', ');
  rows.push({ ...s, variant });
}
const order = ['sign-flip', 'scale:10', 'noise:0.05', 'label-flip', 'alie:1', 'ipm:0.5'];
rows.sort((a, b) => a.partition.localeCompare(b.partition) || order.indexOf(a.attack) - order.indexOf(b.attack) || a.aggregator.localeCompare(b.aggregator) || a.variant.localeCompare(b.variant));
const f3 = (x: number | null) => (x === null ? '-' : x.toFixed(3));
console.log('| partition | attack | aggregator | detection | false positives | accuracy | no attack | drop (points) |');
console.log('|---|---|---|---:|---:|---:|---:|---:|');
for (const r of rows) {
  const name = r.aggregator + (r.variant ? ` (${r.variant})` : '');
  const det = r.aggregator.startsWith('bfl-mec') ? f3(r.detectionRate) : '-';
  const fp = r.aggregator.startsWith('bfl-mec') ? f3(r.falsePositiveRate) : '-';
  console.log(`| ${r.partition} | ${r.attack} | ${name} | ${det} | ${fp} | ${r.accuracy.toFixed(4)} | ${r.accuracyNoAttack.toFixed(4)} | ${r.accuracyDrop.toFixed(2)} |`);
}
