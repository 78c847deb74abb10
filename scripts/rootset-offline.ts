// Offline study of root-set reward factors (issue 11; docs/experiments.md "Rewards from a public
// root set") on dumps of scripts/shapley-dump.ts (after scripts/shapley-offline.ts has cached the
// per-aggregation game in DUMP/values.json): per aggregation, each update's effect on a public root
// set (FLTrust's ReLU(cos(Δ_i, −∇L_root)), the first-order gain −∇L_root·Δ_i, the exact loss
// decrease L_root(w) − L_root(w + Δ_i)), the Shapley values of the per-aggregation game played on
// the root set (exactly, and with each coalition's logits the sample-weighted mean of its members'
// logits: n forward passes per aggregation; and not renormalised, each member keeping its share of
// the whole aggregation: "fixed-share"), leave-one-out from the high set; alone and times
// today's reward share. Each client's cumulative score (per aggregation its share of the positive
// scores in the high set, as the chain pays; "raw sum": the scores summed) rank-correlated with
// the per-aggregation Shapley game, the retrained game (DUMP/retrain.json, if there) and quality;
// with graded quality also the game's own ρ with quality and the most any reward at ρ ≥ 0.85 with
// the game can have with quality.
// Rewards do not change the aggregation weights, so on a dump of today's rule the replayed
// figures are the closed loop's (the "today" row reproduces `experiment rewards`).
// ROOT_LOSS_GAME=1 also plays the game with the root set's exact loss (2^n model evaluations).
// Eighth look: the label alignment q and the "teaching" t of each update (its change of the root
// set's log-probabilities, double-centred, against the double-centred one-hot labels: cosine and
// inner product), the root-set game on logit changes less their per-class means ("debiased"), and
// two-pool rewards: per aggregation the share of n·t plus λ times the share of the root-set game
// (MIX_LAMBDAS, default 0.25,0.5,1,2,4), and the same with signs kept ("signed mix": each value over
// the high set's positive total, summed per client).
// The root set: ROOT_PER_CLASS (10) samples per class of the embedded MNIST's test split drawn with
// ROOT_SEED (1); the references are re-evaluated on the rest of the test split (disjoint from it).
//   npx node scripts/rootset-offline.ts DUMPDIR...
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addShapley, dumpNames, readRound } from './dumps.ts';
import { AgreementAggregator } from '../src/core/aggregation/agreement.ts';
import { prepareRootSet, rootGradient, rootLogits, rootLoss, rootTeaching, selectRootIndices } from '../src/core/aggregation/rootset.ts';
import { fromHex } from '../src/core/bytes.ts';
import { loadDataset, subset } from '../src/learn/data.ts';
import { ModelRuntime } from '../src/learn/runtime.ts';
import { evaluate } from '../src/learn/train.ts';
import { shapleyValues, spearman } from '../src/experiments/report.ts';

const layers = [784, 200, 10];
const data = loadDataset('mnist');
const perClass = Number(process.env.ROOT_PER_CLASS ?? 10);
const seed = Number(process.env.ROOT_SEED ?? 1);
const rootIdx = selectRootIndices(data.test.y, 10, perClass, seed);
const rootData = subset(data.test, rootIdx);
const prep = prepareRootSet({ x: rootData.x, y: rootData.y, count: rootData.n, dim: 784, classes: 10 }, layers);
const testN = data.test.n;
const lambdas = (process.env.MIX_LAMBDAS ?? '0.25,0.5,1,2,4').split(',').map(Number);
let runtime: ModelRuntime | undefined;

type Up = { clientId: string; digest: string; samples: number; share: number; delta: Float32Array };
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k] * b[k];
  return s;
};
/** Mean cross-entropy and accuracy of logits z (count × classes) against labels y. */
function logitLossAcc(z: Float64Array, y: Uint8Array, C: number): { loss: number; acc: number } {
  let loss = 0;
  let correct = 0;
  for (let s = 0; s < y.length; s++) {
    let m = -Infinity;
    let best = 0;
    for (let c = 0; c < C; c++) if (z[s * C + c] > m) { m = z[s * C + c]; best = c; }
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp(z[s * C + c] - m);
    loss += Math.log(sum) + m - z[s * C + y[s]];
    if (best === y[s]) correct++;
  }
  return { loss: loss / y.length, acc: correct / y.length };
}
const fmt = (x: number | null) => (x === null ? '  -   ' : x.toFixed(3).padStart(6));

for (const dir of process.argv.slice(2)) {
  const run = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
  const rounds = dumpNames(dir).map((d) => {
    const { meta, previous, delta } = readRound(dir, d);
    const ups: Up[] = meta.updates.map((u: Omit<Up, 'delta'>, i: number) => ({ ...u, delta: delta(i).slice() }));
    return { name: d, meta, previous, ups };
  });
  // the per-aggregation game (sample-weighted coalitions, as the closed loop) on the test split without the root set
  const values = JSON.parse(readFileSync(join(dir, 'values.json'), 'utf8'));
  const cacheFile = join(dir, `values-root${perClass}s${seed}.json`);
  const onRoot: Record<string, number[]> = existsSync(cacheFile) ? JSON.parse(readFileSync(cacheFile, 'utf8')) : {};
  for (const r of rounds) {
    if (onRoot[r.name]) continue;
    runtime ??= await ModelRuntime.create({ kind: 'mlp', layers }, { threads: 1 });
    const n = r.ups.length;
    const acc: number[] = [];
    for (let mask = 0; mask < 1 << n; mask++) {
      const members = r.ups.filter((_, i) => mask & (1 << i));
      const model = Float32Array.from(r.previous);
      if (members.length) {
        const all = members.reduce((s, u) => s + u.samples, 0);
        const sum = new Float64Array(model.length);
        for (const u of members) for (let k = 0; k < sum.length; k++) sum[k] += (u.samples / all) * u.delta[k];
        for (let k = 0; k < sum.length; k++) model[k] = r.previous[k] + sum[k];
      }
      acc.push((await evaluate(runtime, model, rootData)).accuracy);
    }
    onRoot[r.name] = acc;
    writeFileSync(cacheFile, JSON.stringify(onRoot));
  }
  // the same game on the root set with its exact cross-entropy (an upper bound of what the root set can say; 2^n model evaluations)
  const lossFile = join(dir, `rootloss-root${perClass}s${seed}.json`);
  const rootLossGame: Record<string, number[]> = existsSync(lossFile) ? JSON.parse(readFileSync(lossFile, 'utf8')) : {};
  for (const r of rounds) {
    if (rootLossGame[r.name] || !process.env.ROOT_LOSS_GAME) continue;
    const n = r.ups.length;
    const v: number[] = [];
    for (let mask = 0; mask < 1 << n; mask++) {
      const members = r.ups.filter((_, i) => mask & (1 << i));
      const all = members.reduce((t, u) => t + u.samples, 0);
      const d = new Float32Array(r.previous.length);
      for (const u of members) for (let k = 0; k < d.length; k++) d[k] += (u.samples / all) * u.delta[k];
      v.push(-rootLoss(prep, r.previous, d));
    }
    rootLossGame[r.name] = v;
    writeFileSync(lossFile, JSON.stringify(rootLossGame));
  }
  const ids = [...new Set(rounds.flatMap((r) => r.ups.map((u) => u.clientId)))].sort((a, b) => Number(a.split('-')[1]) - Number(b.split('-')[1]));
  const shareOf = new Map(rounds.flatMap((r) => r.ups.map((u) => [u.clientId, u.share] as [string, number])));
  const shapRest = new Map<string, number>();
  const shapFull = new Map<string, number>();
  for (const r of rounds) {
    const full = Float64Array.from((values[r.name].samples ?? values[r.name].equal).acc as number[]);
    const rest = full.map((a, m) => (a * testN - onRoot[r.name][m] * rootData.n) / (testN - rootData.n));
    addShapley(shapRest, r.ups.map((u) => u.clientId), rest);
    addShapley(shapFull, r.ups.map((u) => u.clientId), full);
  }
  const retrainFile = join(dir, 'retrain.json');
  const retrained = existsSync(retrainFile) ? new Map(shapleyValues(ids.length, Float64Array.from(JSON.parse(readFileSync(retrainFile, 'utf8')).accuracy)).map((phi, c) => [`client-${c + 1}`, phi])) : undefined;

  // replay today's rule; per update the root-set factors
  const agg = new AgreementAggregator();
  let state = agg.initialState();
  const scores = new Map<string, Map<string, number>>(); // candidate → client → cumulative
  const add = (cand: string, id: string, v: number) => {
    if (!scores.has(cand)) scores.set(cand, new Map());
    const m = scores.get(cand)!;
    m.set(id, (m.get(id) ?? 0) + v);
  };
  const perRound: string[] = [];
  const lastOf = new Map<string, Float32Array>();
  for (const r of rounds) {
    const out = agg.aggregate({ previous: r.previous, updates: r.ups.map((u) => ({ clientId: u.clientId, digest: fromHex(u.digest), sampleCount: u.samples, staleness: 0, delta: u.delta })), baseReward: 100_000_000n }, state);
    state = out.state;
    const high = r.ups.map((u) => out.result.entries.find((e) => e.clientId === u.clientId)!.high);
    const today = r.ups.map((u) => Number(out.result.rewards.find((x) => x.id === u.clientId)?.amount ?? 0n) / 1e8);
    const { loss: L0, grad } = rootGradient(prep, r.previous);
    const gNorm = Math.sqrt(dot(grad, grad));
    const fac = r.ups.map((u) => {
      const dn = Math.sqrt(dot(u.delta, u.delta));
      const fo = -dot(grad, u.delta);
      const gain = L0 - rootLoss(prep, r.previous, u.delta);
      return { fl: dn && gNorm ? Math.max(0, fo / (dn * gNorm)) : 0, fo, gain };
    });
    perRound.push(`${r.name} L0=${L0.toFixed(3)} ` + r.ups.map((u, i) => `${u.clientId.split('-')[1]}:${high[i] ? 'H' : 'L'} fl=${fac[i].fl.toFixed(2)} gain=${fac[i].gain.toFixed(3)} fo=${fac[i].fo.toFixed(3)}`).join(' '));
    const capped = (xs: number[]) => xs.map((x, i) => (high[i] ? Math.max(0, x) : 0));
    const share = (xs: number[]) => {
      const c = capped(xs);
      const t = c.reduce((s, v) => s + v, 0);
      return c.map((v) => (t > 0 ? v / t : 0));
    };
    // logit averaging: a coalition's model ≈ the sample-weighted mean of its members' logits (exact for the last layer)
    const z0 = rootLogits(prep, r.previous).logits;
    const zs = r.ups.map((u) => rootLogits(prep, r.previous, u.delta).logits);
    const n = r.ups.length;
    const C = 10;
    const lgLoss = new Float64Array(1 << n);
    const lgAcc = new Float64Array(1 << n);
    const clsLoss = Array.from({ length: C }, () => new Float64Array(1 << n));
    for (let mask = 0; mask < 1 << n; mask++) {
      let all = 0;
      const z = new Float64Array(z0.length);
      r.ups.forEach((u, i) => {
        if (mask & (1 << i)) all += u.samples;
      });
      if (all === 0) z.set(z0);
      else r.ups.forEach((u, i) => {
        if (mask & (1 << i)) for (let k = 0; k < z.length; k++) z[k] += (u.samples / all) * zs[i][k];
      });
      let loss = 0;
      let correct = 0;
      for (let s2 = 0; s2 < prep.root.count; s2++) {
        let m = -Infinity;
        let best = 0;
        for (let c = 0; c < C; c++) if (z[s2 * C + c] > m) { m = z[s2 * C + c]; best = c; }
        let sum = 0;
        for (let c = 0; c < C; c++) sum += Math.exp(z[s2 * C + c] - m);
        loss += Math.log(sum) + m - z[s2 * C + prep.root.y[s2]];
        if (best === prep.root.y[s2]) correct++;
      }
      lgLoss[mask] = -loss / prep.root.count;
      lgAcc[mask] = correct / prep.root.count;
      // the same game per class of the root set (its samples of class c only)
      for (let s2 = 0; s2 < prep.root.count; s2++) {
        const y = prep.root.y[s2];
        let m = -Infinity;
        for (let c = 0; c < C; c++) m = Math.max(m, z[s2 * C + c]);
        let sum = 0;
        for (let c = 0; c < C; c++) sum += Math.exp(z[s2 * C + c] - m);
        clsLoss[y][mask] -= Math.log(sum) + m - z[s2 * C + y];
      }
    }
    // "teaching credit": each client's positive Shapley values summed over the per-class games
    // (what it adds to the classes it helps; the harm a skewed step does to the others not charged)
    const phiCls = clsLoss.map((v) => shapleyValues(n, v));
    const teach = r.ups.map((_, i) => phiCls.reduce((t, p) => t + Math.max(0, p[i]), 0));
    const teachNet = r.ups.map((_, i) => phiCls.reduce((t, p) => t + p[i], 0));
    // the same game, not renormalised: each member keeps its share of the whole aggregation,
    // z(S) = z0 + Σ_{i∈S} (n_i/Σ_all n)(z_i − z0), so a small or noisy member cannot damp a
    // coalition's step (the grand coalition is the same model as above)
    const allSamples = r.ups.reduce((t, u) => t + u.samples, 0);
    const fxLoss = new Float64Array(1 << n);
    const fxAcc = new Float64Array(1 << n);
    for (let mask = 0; mask < 1 << n; mask++) {
      const z = Float64Array.from(z0);
      r.ups.forEach((u, i) => {
        if (mask & (1 << i)) for (let k = 0; k < z.length; k++) z[k] += (u.samples / allSamples) * (zs[i][k] - z0[k]);
      });
      const ev = logitLossAcc(z, prep.root.y, C);
      fxLoss[mask] = -ev.loss;
      fxAcc[mask] = ev.acc;
    }
    // data-free label signals: the output layer's bias step Δb_c ∝ Σ (y_c − p_c) over the client's
    // batches (its label mix less the model's predictions); its breadth, and how far each update's
    // output-layer step points away from the others' (complementarity)
    const dim = r.previous.length;
    const cosv = (a: ArrayLike<number>, b: ArrayLike<number>) => {
      const d = Math.sqrt(dot(a, a) * dot(b, b));
      return d > 0 ? dot(a, b) / d : 0;
    };
    const tail = (u: Up, k: number) => u.delta.subarray(dim - k);
    const rest = (k: number, i: number) => {
      const t = new Float64Array(k);
      r.ups.forEach((u, j) => {
        if (j !== i) for (let q = 0; q < k; q++) t[q] += u.samples * tail(u, k)[q];
      });
      return t;
    };
    // CGSV's factor alone: cos(Δ_i, g), g the sample-weighted mean of the high updates
    const gH = new Float64Array(dim);
    r.ups.forEach((u, j) => {
      if (high[j]) for (let q = 0; q < dim; q++) gH[q] += u.samples * u.delta[q];
    });
    const cosG = r.ups.map((u) => Math.max(0, cosv(u.delta, gH)));
    // agreement with the client's own previous update, per layer (is a's narrowness in the output layer?)
    const cut = 784 * 200 + 200;
    const aL1 = r.ups.map((u) => {
      const p = lastOf.get(u.clientId);
      return p ? cosv(u.delta.subarray(0, cut), p.subarray(0, cut)) : 0;
    });
    const aOut = r.ups.map((u) => {
      const p = lastOf.get(u.clientId);
      return p ? cosv(u.delta.subarray(cut), p.subarray(cut)) : 0;
    });
    r.ups.forEach((u, j) => {
      if (high[j]) lastOf.set(u.clientId, u.delta);
    });
    const biasEntropy = r.ups.map((u) => {
      const pos = Array.from(tail(u, 10), (x) => Math.max(0, x));
      const t = pos.reduce((a, b) => a + b, 0);
      return t > 0 ? -pos.reduce((h, x) => (x > 0 ? h + (x / t) * Math.log(x / t) : h), 0) : 0;
    });
    const biasComp = r.ups.map((u, i) => 1 - cosv(tail(u, 10), rest(10, i)));
    const outComp = r.ups.map((u, i) => 1 - cosv(tail(u, 2010), rest(2010, i)));
    // the same game with every update scaled to the median length (its direction valued at equal step)
    const lens = r.ups.map((u) => Math.sqrt(dot(u.delta, u.delta)));
    const medLen = [...lens].sort((a, b) => a - b)[Math.floor((lens.length - 1) / 2)];
    const zEq = r.ups.map((u, i) => rootLogits(prep, r.previous, u.delta.map((x) => (lens[i] > 0 ? (x * medLen) / lens[i] : 0))).logits);
    const eqLoss = new Float64Array(1 << n);
    for (let mask = 0; mask < 1 << n; mask++) {
      let all = 0;
      r.ups.forEach((u, i) => {
        if (mask & (1 << i)) all += u.samples;
      });
      const z = all === 0 ? Float64Array.from(z0) : new Float64Array(z0.length);
      if (all > 0) r.ups.forEach((u, i) => {
        if (mask & (1 << i)) for (let k = 0; k < z.length; k++) z[k] += (u.samples / all) * zEq[i][k];
      });
      eqLoss[mask] = -logitLossAcc(z, prep.root.y, C).loss;
    }
    // label alignment ("precision"): each update's change of the root set's log-probabilities,
    // double-centred (per sample over classes, then per class over samples, so "raise class c on
    // every image", a narrow label mix's bias, is removed), cosine with the double-centred one-hot
    // labels: how much of what the update teaches on the root set is the right label; label noise
    // teaches images of one class other classes, a narrow clean mix teaches few classes rightly
    const R = prep.root.count;
    const logp = (z: Float64Array) => {
      const o = new Float64Array(z.length);
      for (let s2 = 0; s2 < R; s2++) {
        let m = -Infinity;
        for (let c = 0; c < C; c++) m = Math.max(m, z[s2 * C + c]);
        let sum = 0;
        for (let c = 0; c < C; c++) sum += Math.exp(z[s2 * C + c] - m);
        for (let c = 0; c < C; c++) o[s2 * C + c] = z[s2 * C + c] - m - Math.log(sum);
      }
      return o;
    };
    const dcentre = (x: Float64Array) => {
      const o = Float64Array.from(x);
      for (let s2 = 0; s2 < R; s2++) {
        let m = 0;
        for (let c = 0; c < C; c++) m += o[s2 * C + c];
        for (let c = 0; c < C; c++) o[s2 * C + c] -= m / C;
      }
      for (let c = 0; c < C; c++) {
        let m = 0;
        for (let s2 = 0; s2 < R; s2++) m += o[s2 * C + c];
        for (let s2 = 0; s2 < R; s2++) o[s2 * C + c] -= m / R;
      }
      return o;
    };
    const Y = new Float64Array(R * C);
    for (let s2 = 0; s2 < R; s2++) Y[s2 * C + prep.root.y[s2]] = 1;
    const Ydc = dcentre(Y);
    const lp0 = logp(z0);
    const align = zs.map((z) => {
      const lp = logp(z);
      return cosv(dcentre(lp.map((v, k) => v - lp0[k])), Ydc);
    });
    const alignQ = (k: number, i: number) => Math.max(0, align[i]) ** k;
    r.ups.forEach((u, i) => add('(mean q per update, all)', u.clientId, align[i] / rounds.length));
    // "teaching": the unnormalised form (how much right labelling, not what share); on a
    // class-balanced root set R·t is the inner product above without the cosine's norms, the
    // log-sum-exp cancelling (checked to 1e-16 on a dump)
    const teachR = zs.map((z) => rootTeaching(prep, z0, z));
    // the root-set game with each update's logit change less its per-class mean over the root set
    // (the "raise class c on every image" part a skewed step carries removed)
    const zDeb = zs.map((z) => {
      const d = z.map((v, k) => v - z0[k]);
      for (let c = 0; c < C; c++) {
        let m = 0;
        for (let s2 = 0; s2 < R; s2++) m += d[s2 * C + c];
        for (let s2 = 0; s2 < R; s2++) d[s2 * C + c] -= m / R;
      }
      return d;
    });
    const debLoss = new Float64Array(1 << n);
    const fxDebLoss = new Float64Array(1 << n);
    for (let mask = 0; mask < 1 << n; mask++) {
      let all = 0;
      r.ups.forEach((u, i) => {
        if (mask & (1 << i)) all += u.samples;
      });
      const z = Float64Array.from(z0);
      const zf = Float64Array.from(z0);
      r.ups.forEach((u, i) => {
        if (mask & (1 << i)) for (let k = 0; k < z.length; k++) {
          z[k] += (u.samples / all) * zDeb[i][k];
          zf[k] += (u.samples / allSamples) * zDeb[i][k];
        }
      });
      debLoss[mask] = -logitLossAcc(z, prep.root.y, C).loss;
      fxDebLoss[mask] = -logitLossAcc(zf, prep.root.y, C).loss;
    }
    const phiDeb = shapleyValues(n, debLoss);
    const phiFxDeb = shapleyValues(n, fxDebLoss);
    const phiEqLoss = shapleyValues(n, eqLoss);
    const phiFxLoss = shapleyValues(n, fxLoss);
    const phiFxAcc = shapleyValues(n, fxAcc);
    const phiLgLoss = shapleyValues(n, lgLoss);
    const phiLgAcc = shapleyValues(n, lgAcc);
    const phiRootAcc = shapleyValues(n, Float64Array.from(onRoot[r.name]));
    const phiRootLoss = rootLossGame[r.name] ? shapleyValues(n, Float64Array.from(rootLossGame[r.name])) : undefined;
    const cands: Record<string, number[]> = {
      'root acc game (exact)': phiRootAcc,
      'label alignment q': align,
      'teaching t': teachR,
      'n*t': teachR.map((t, i) => r.ups[i].samples * t),
      'debiased game': phiDeb,
      'debiased fixed-share game': phiFxDeb,
      'debiased game*q^2': phiDeb.map((p, i) => Math.max(0, p) * alignQ(2, i)),
      'n*q': align.map((a, i) => r.ups[i].samples * Math.max(0, a)),
      'logit-avg loss game*q': phiLgLoss.map((p, i) => Math.max(0, p) * alignQ(1, i)),
      'logit-avg loss game*q^2': phiLgLoss.map((p, i) => Math.max(0, p) * alignQ(2, i)),
      'logit-avg loss game*q^4': phiLgLoss.map((p, i) => Math.max(0, p) * alignQ(4, i)),
      'logit-avg loss game*n*q^2': phiLgLoss.map((p, i) => Math.max(0, p) * r.ups[i].samples * alignQ(2, i)),
      'today*q^2': today.map((t, i) => t * alignQ(2, i)),
      ...(phiRootLoss ? { 'root loss game (exact)': phiRootLoss } : {}),
      'logit-avg loss game': phiLgLoss,
      'logit-avg acc game': phiLgAcc,
      'today*logit-avg loss': today.map((t, i) => t * Math.max(0, phiLgLoss[i])),
      'history agreement, first layer': aL1,
      'history agreement, output layer': aOut,
      'n*cos*a first layer': r.ups.map((u, i) => u.samples * cosG[i] * Math.max(0, aL1[i])),
      'cos with aggregate': cosG,
      'today / cos (n·a)': today.map((t, i) => (cosG[i] > 0 ? t / cosG[i] : 0)),
      'equal-length loss game': phiEqLoss,
      'today*equal-length loss game': today.map((t, i) => t * Math.max(0, phiEqLoss[i])),
      'bias entropy': biasEntropy,
      'bias complement': biasComp,
      'out-layer complement': outComp,
      'today*bias complement': today.map((t, i) => t * biasComp[i]),
      'today*out-layer complement': today.map((t, i) => t * outComp[i]),
      'class-positive loss game': teach,
      'class-net loss game (check)': teachNet,
      'today*class-positive': today.map((t, i) => t * teach[i]),
      'fixed-share loss game': phiFxLoss,
      'fixed-share acc game': phiFxAcc,
      'today*fixed-share loss': today.map((t, i) => t * Math.max(0, phiFxLoss[i])),
      // leave-one-out from the high set's aggregate in the logit-averaging game
      'logit-avg loss LOO from H': r.ups.map((_, i) => {
        const H = r.ups.reduce((m, _u, j) => (high[j] ? m | (1 << j) : m), 0);
        return high[i] ? lgLoss[H] - lgLoss[H & ~(1 << i)] : 0;
      }),
      'today*logit-avg loss LOO': r.ups.map((_, i) => {
        const H = r.ups.reduce((m, _u, j) => (high[j] ? m | (1 << j) : m), 0);
        return high[i] ? today[i] * Math.max(0, lgLoss[H] - lgLoss[H & ~(1 << i)]) : 0;
      }),
      today: today,
      'fltrust': fac.map((f) => f.fl),
      'first-order': fac.map((f) => f.fo),
      'loss-decrease': fac.map((f) => f.gain),
      'samples*fltrust': fac.map((f, i) => r.ups[i].samples * f.fl),
      'samples*loss-decrease': fac.map((f, i) => r.ups[i].samples * f.gain),
      'today*fltrust': fac.map((f, i) => today[i] * f.fl),
      'today*first-order': fac.map((f, i) => today[i] * f.fo),
      'today*loss-decrease': fac.map((f, i) => today[i] * f.gain),
    };
    {
      const sT = share(teachR.map((t, i) => r.ups[i].samples * t));
      const sG = share(phiLgLoss);
      for (const lam of lambdas) r.ups.forEach((u, i) => add(`mix n*t + ${lam}*game`, u.clientId, sT[i] + lam * sG[i]));
      // the same two pools with signs kept: each value over the high set's positive total, summed
      // per client (a chain would pay the positive increments of this balance)
      const signedShare = (xs: number[]) => {
        const t = xs.reduce((acc, x, i) => acc + (high[i] ? Math.max(0, x) : 0), 0);
        return xs.map((x, i) => (high[i] && t > 0 ? x / t : 0));
      };
      const gT = signedShare(teachR.map((t, i) => r.ups[i].samples * t));
      const gG = signedShare(phiLgLoss);
      for (const lam of lambdas) r.ups.forEach((u, i) => add(`signed mix ${lam}`, u.clientId, gT[i] + lam * gG[i]));
    }
    for (const [name, xs] of Object.entries(cands)) {
      const s = share(xs);
      r.ups.forEach((u, i) => {
        add(name, u.clientId, s[i]);
        add(`${name} (raw sum)`, u.clientId, name.includes('game') ? (high[i] ? xs[i] : 0) : capped(xs)[i]);
      });
    }
  }
  if (process.env.VERBOSE) for (const l of perRound) console.log(l);
  const quality = ids.map((id) => (run.mode === 'sizes' ? shareOf.get(id)! : 1 - shareOf.get(id)!));
  const graded = new Set(quality).size > 1;
  console.log(`\n${dir}: ${run.part}, ${run.mode} ${run.shares}; root set ${rootData.n} (${perClass}/class, seed ${seed}) of the test split; references on the other ${testN - rootData.n}`);
  console.log(`  round game on ${testN - rootData.n} vs on ${testN}: ρ = ${fmt(spearman(ids.map((id) => shapRest.get(id)!), ids.map((id) => shapFull.get(id)!)))}`);
  console.log(`  ${'candidate'.padEnd(32)} round  retrain quality  per client`);
  for (const [name, m] of scores) {
    const v = ids.map((id) => m.get(id) ?? 0);
    console.log(`  ${name.padEnd(32)} ${fmt(spearman(ids.map((id) => shapRest.get(id)!), v))} ${retrained ? fmt(spearman(ids.map((id) => retrained.get(id)!), v)) : '  -   '} ${graded ? fmt(spearman(quality, v)) : '  -   '}  ${v.map((x) => x.toFixed(2)).join(' ')}`);
  }
  if (graded) {
    // Spearman is Pearson's on ranks, so the three rank vectors' correlation matrix is positive
    // semidefinite: a reward at ρ_g with the game has ρ with quality at most
    // ρ_g·ρ_gq + √((1 − ρ_g²)(1 − ρ_gq²)), ρ_gq the game's own ρ with quality
    const gq = spearman(ids.map((id) => shapRest.get(id)!), quality)!;
    const bound = gq >= 0.85 ? 1 : 0.85 * gq + Math.sqrt((1 - 0.85 ** 2) * (1 - gq ** 2));
    console.log(`  round game vs quality: ρ = ${fmt(gq)}; a reward at ρ ≥ 0.85 with the game has ρ with quality ≤ ${fmt(Math.min(1, bound))}`);
  }
  console.log(`  ${'(round game, ×100)'.padEnd(32)} ${''.padEnd(22)}  ${ids.map((id) => (shapRest.get(id)! * 100).toFixed(2)).join(' ')}`);
  if (retrained) console.log(`  ${'(retrained game, ×100)'.padEnd(32)} ${fmt(spearman(ids.map((id) => shapRest.get(id)!), ids.map((id) => retrained.get(id)!)))} ${''.padEnd(14)}  ${ids.map((id) => (retrained.get(id)! * 100).toFixed(2)).join(' ')}`);
}
await runtime?.close();
