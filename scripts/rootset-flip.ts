// Does the root-set signal separate label-flipping clients (issue 11, "Where bfl-mec loses: label
// flip")? On a dump of scripts/scoring-dump.ts (e.g. DIR shards 50 10 label-flip 0.3, FedAvg),
// per update the root-set factors of scripts/rootset-offline.ts (and teaching, eighth look); per aggregation the range of
// flipped and honest updates and the AUC (probability that an honest update scores above a
// flipped one), and per client its mean over the first 3 and over all aggregations. A study only:
// nothing is detected with it in the product.
//   npx node scripts/rootset-flip.ts DUMPDIR
import { dumpNames, readRound } from './dumps.ts';
import { prepareRootSet, rootGradient, rootLogits, rootLoss, rootTeaching, selectRootIndices } from '../src/core/aggregation/rootset.ts';
import { loadDataset, subset } from '../src/learn/data.ts';

const dir = process.argv[2];
const data = loadDataset('mnist');
const rd = subset(data.test, selectRootIndices(data.test.y, 10, Number(process.env.ROOT_PER_CLASS ?? 10), Number(process.env.ROOT_SEED ?? 1)));
const prep = prepareRootSet({ x: rd.x, y: rd.y, count: rd.n, dim: 784, classes: 10 }, [784, 200, 10]);
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k] * b[k];
  return s;
};
const auc = (honest: number[], flipped: number[]) => {
  let w = 0;
  for (const h of honest) for (const f of flipped) w += h > f ? 1 : h === f ? 0.5 : 0;
  return w / (honest.length * flipped.length);
};
const range = (xs: number[]) => `${Math.min(...xs).toFixed(3)} … ${Math.max(...xs).toFixed(3)}`;
type Row = { client: string; attacker: boolean; fl: number; gain: number; fo: number; teach: number };
const perClient = new Map<string, { attacker: boolean; rows: Row[] }>();
for (const d of dumpNames(dir)) {
  const { meta, deltas: all, previous } = readRound(dir, d);
  const { loss: L0, grad } = rootGradient(prep, previous);
  const gn = Math.sqrt(dot(grad, grad));
  const z0 = rootLogits(prep, previous).logits;
  const rows: Row[] = meta.updates.map((u: { clientId: string; attacker: boolean }, i: number) => {
    const delta = all.subarray(i * meta.dim, (i + 1) * meta.dim);
    const fo = -dot(grad, delta);
    const dn = Math.sqrt(dot(delta, delta));
    return { client: u.clientId, attacker: u.attacker, fl: fo / (dn * gn), gain: L0 - rootLoss(prep, previous, delta), fo, teach: rootTeaching(prep, z0, rootLogits(prep, previous, delta.slice()).logits) };
  });
  for (const r of rows) {
    if (!perClient.has(r.client)) perClient.set(r.client, { attacker: r.attacker, rows: [] });
    perClient.get(r.client)!.rows.push(r);
  }
  const line = (['fl', 'gain', 'fo', 'teach'] as const).map((k) => {
    const h = rows.filter((r) => !r.attacker).map((r) => r[k]);
    const f = rows.filter((r) => r.attacker).map((r) => r[k]);
    return `${k}: honest ${range(h)} flipped ${range(f)} AUC ${auc(h, f).toFixed(3)}`;
  });
  console.log(`${d} L0 ${L0.toFixed(3)} | ${line.join(' | ')}`);
}
for (const [label, k] of [['first 3', 3], ['all', Infinity]] as const) {
  const line = (['fl', 'gain', 'fo', 'teach'] as const).map((key) => {
    const mean = (c: { rows: Row[] }) => {
      const rs = c.rows.slice(0, k);
      return rs.reduce((s, r) => s + r[key], 0) / rs.length;
    };
    const h = [...perClient.values()].filter((c) => !c.attacker).map(mean);
    const f = [...perClient.values()].filter((c) => c.attacker).map(mean);
    return `${key}: honest ${range(h)} flipped ${range(f)} AUC ${auc(h, f).toFixed(3)}`;
  });
  console.log(`per client, mean over ${label}: ${line.join(' | ')}`);
}
