/**
 * `bfl-node experiment split`: the cloud-edge-client framework of the DT paper
 * (../shared/papers/dt-cloud-edge-client-learning.txt, section III, Algorithm 1) in-process, with
 * our miners as the edge servers, beside FedAvg and centralized training (Figs. 10-11).
 *
 * One round r, for the clients taking part:
 *   Stage I   each client n runs its head on its round's samples in minibatches; the miner m it is
 *             associated with runs a body SGD step on each batch of smashed data (eq. 1) and
 *             answers the cut gradient, with which the client steps its head (eq. 2). A miner
 *             serves its clients' batches in turn (client order), so its body sees them all.
 *   Stage II  bodies are averaged across miners weighted by the samples each served (eq. 3);
 *             heads of the clients in N_C (a seeded fraction `headShare`) are perturbed with
 *             Gaussian noise σ and averaged sample-weighted (eq. 4); the others stay private.
 *
 * Association comes from the association schedulers (src/association) in the radio twin of the
 * same paper. The unconstrained split run (`accuracySplit`) uses the nearest-server one, which is
 * the product's default (nearest miner by RTT, src/node/miner-selector.ts). For Figs. 10-11 each
 * scheduler runs with heterogeneous energy budgets (section VI-B): a client whose uplink energy
 * (eqs. 13, 18) has used its budget quits, so a scheduler that spends less energy keeps more
 * data in the training. Budgets are drawn per client as a fraction U(lo, hi) of R rounds at the
 * median per-round client energy of the nearest-server scheduler (calibrated on other twin rounds).
 *
 * Federated = our usual FedAvg: the same clients, the same samples and minibatches per round,
 * local SGD from the global model, sample-weighted mean. Centralized = one model stepping over
 * the union of the round's samples: the same number of SGD steps per round as a body sees in
 * total. Every run starts from the same initial parameters (seeded) and sees the same batches.
 */
import { BflError, ErrorCode } from '../core/errors.ts';
import { Rng } from '../core/random.ts';
import { type Scheduler, type SchedulerName, SCHEDULERS, heuristicScheduler, nearestScheduler } from '../association/schedulers.ts';
import { d3qnScheduler } from '../association/d3qn.ts';
import { type TwinParams, Twin, checkOneToOne, roundCost, twinParams } from '../association/twin.ts';
import { type AugmentSpec, NO_AUGMENT, augmentImage, augments, drawKey, drawOf, formatAugment, imageSide, isSquareImage, parseAugment, samplesAre } from '../learn/augment.ts';
import { defaultSplitConfig } from '../config/network.ts';
import { type Dataset, loadDataset, subset } from '../learn/data.ts';
import { DEFAULT_MODEL, type ModelSpec, classCount, initParams, paramCount } from '../learn/model.ts';
import { type Partition, formatPartition, partition } from '../learn/partition.ts';
import { ModelRuntime } from '../learn/runtime.ts';
import { type HeadShareAccount, headShareAccount } from '../learn/privacy.ts';
import { type CutScratch, DEFAULT_CUT, SplitRuntime, cutDropoutMask, joinParams, splitParams, stepThroughCut } from '../learn/split.ts';
import { evaluate } from '../learn/train.ts';
import { lineChart } from './plot.ts';
import { Report, tail } from './report.ts';

export interface SplitExperimentOptions {
  rounds: number; // R
  clients: number; // N
  miners: number; // M, the edge servers
  schedulers: SchedulerName[];
  /** D_n^r: samples each client trains on per round. */
  samplesPerRound: number;
  batchSize: number;
  lr: number;
  /** Hidden layer widths of the MLP, in every run alike (split, FedAvg, centralized): the
   * product's 784-200-10 by default; another model only ever compares with FedAvg on itself. */
  hidden: number[];
  /** Dense layers on the client (split.ts). */
  cut: number;
  dataset: string;
  partition: Partition;
  seed: number;
  /** Passes over each round's samples (local epochs; the product's E), in every run alike:
   * split, FedAvg and centralized. */
  epochs: number;
  /** 'private': every client draws its own head (the paper's text, section III-B: heads are
   * "privately determined by clients"); 'shared': all start from the global initial model's head
   * (Algorithm 1, line 6; the product's genesis head). */
  headInit: 'private' | 'shared';
  /** The head's learning rate as a multiple of lr (the body's). */
  headLrScale: number;
  /** λ: after every head step the head moves η_H·λ of the way back to its initial head (weight
   * decay toward W_0^H, the gradient of λ/2·‖W^H − W_0^H‖²); 0: none. */
  headDecay: number;
  /** Fraction of clients in N_C, aggregating heads by eq. (4). */
  headShare: number;
  /** Eq. (4) every this many rounds (a client's head trains privately in between). */
  headShareEvery: number;
  /** C: a shared head update (the head minus the head of the client's last eq. 4) is clipped to
   * this L2 norm, the sensitivity bound of the Gaussian mechanism (learning.split.headSharing.clip). */
  headClip: number;
  /** Noise per coordinate of a shared head update, N(0, (z·C)²): z as a multiple of headClip
   * (learning.split.headSharing.noise, the DP-SGD noise multiplier). */
  headNoise: number;
  /** δ of the (ε, δ) reported for head sharing. */
  dpDelta: number;
  /** Named variants (SPLIT_VARIANTS) run beside the product default; [] for none. */
  variants: string[];
  /** Regularisers of the FedAvg and centralized runs (federated mode has none: NO_AUGMENT, 0):
   * random translations (and rotations) of each training image as it enters a batch, keyed by
   * (seed, client, round, position) so all runs with the same spec see the same images
   * (learn/augment.ts). */
  augment: AugmentSpec;
  /** Dropout rate p on the cut activations in the FedAvg and centralized runs (their hidden
   * layer, trained through the same head/body pair with the same masks as split's), inverted
   * (kept ones scaled by 1/(1 − p)); the cut gradient goes back through the same mask. 0: none. */
  cutDropout: number;
  /** The split runs' regularisers (every split run: the main one, eq. (4), variants, schedulers):
   * the product's learning.split.augment and learning.split.cutDropout by default. Where they
   * differ from the FedAvg run's, FedAvg is also run with them (accuracyFederatedSplitRecipe). */
  splitAugment: AugmentSpec;
  splitCutDropout: number;
  /** Also run the split run with every client in eq. (4) every round (accuracySplitHeadsAveraged);
   * false skips it (null in the result), a quarter of the time of a run without schedulers. */
  headsAveraged: boolean;
  /** Energy budgets, as fractions of R rounds at the median client energy per round: U(lo, hi) per client. */
  budget: [number, number];
  /** Evaluate on the test set every this many rounds (and after the last). */
  evalEvery: number;
  threads?: number;
  out: string;
  onRound?: (run: string, round: number, accuracy: number | null) => void;
}

/**
 * Defaults: the paper's network, N = 16 clients and M = 4 edge servers (section VI-A). 100
 * samples per client per round out of ~500 (8,000 embedded MNIST digits over 16) is 5 rounds an
 * epoch; 50 rounds = 10 epochs, enough for the MLP to settle on MNIST within a minute per run.
 * B = 10 is the BFL-MEC paper's client batch; η = 0.05 the centralized reference's rate.
 * Budgets U(0.3, 1.5): some clients run dry early, the rest never do, so the schedulers differ.
 * Heads: the product's default (docs/decisions.md, "Split learning: the product's heads").
 */
export const defaultSplitExperiment: Omit<SplitExperimentOptions, 'out'> = {
  rounds: 50,
  clients: 16,
  miners: 4,
  schedulers: [...SCHEDULERS],
  samplesPerRound: 100,
  batchSize: 10,
  lr: 0.05,
  hidden: DEFAULT_MODEL.layers.slice(1, -1),
  cut: DEFAULT_CUT,
  dataset: 'mnist',
  partition: { kind: 'iid' },
  seed: 1,
  epochs: 1,
  headInit: 'shared',
  headLrScale: 1,
  headDecay: 0,
  headShare: 0,
  headShareEvery: 1,
  headClip: 1,
  headNoise: 0.01,
  dpDelta: 1e-5,
  variants: [],
  // federated mode's training has no regulariser; split mode's are the product's
  // (docs/decisions.md, "Split learning: the 2-point target, sixth look")
  augment: NO_AUGMENT,
  cutDropout: 0,
  splitAugment: parseAugment(defaultSplitConfig.augment),
  splitCutDropout: defaultSplitConfig.cutDropout,
  headsAveraged: true,
  budget: [0.3, 1.5],
  evalEvery: 5,
};

/** How a split run treats the heads (the options above it reads). */
export type HeadPolicy = Pick<SplitExperimentOptions, 'headInit' | 'headLrScale' | 'headDecay' | 'headShare' | 'headShareEvery' | 'headClip' | 'headNoise'>;

/**
 * The variants `experiment split` measures beside the product default: each changes the head
 * handling (or the local passes, with FedAvg run at the same passes) and nothing else.
 */
export const SPLIT_VARIANTS: Record<string, { what: string; head?: Partial<HeadPolicy>; epochs?: number }> = {
  'private-own-init': { what: "private heads, each client's own random draw (section III-B's text)", head: { headInit: 'private', headShare: 0, headLrScale: 1, headDecay: 0 } },
  'private-genesis': { what: 'private heads from the shared initial head W_0^H (Algorithm 1 line 6)', head: { headInit: 'shared', headShare: 0, headLrScale: 1, headDecay: 0 } },
  'frozen-genesis': { what: 'heads never trained (head η = 0): random features, a lower bound', head: { headInit: 'shared', headShare: 0, headLrScale: 0, headDecay: 0 } },
  'genesis-head-lr-0.3': { what: 'private genesis heads, head η = 0.3·η', head: { headInit: 'shared', headShare: 0, headLrScale: 0.3, headDecay: 0 } },
  'genesis-head-lr-3': { what: 'private genesis heads, head η = 3·η', head: { headInit: 'shared', headShare: 0, headLrScale: 3, headDecay: 0 } },
  'genesis-decay-0.01': { what: 'private genesis heads, weight decay λ = 0.01 toward W_0^H', head: { headInit: 'shared', headShare: 0, headLrScale: 1, headDecay: 0.01 } },
  'genesis-decay-0.1': { what: 'private genesis heads, weight decay λ = 0.1 toward W_0^H', head: { headInit: 'shared', headShare: 0, headLrScale: 1, headDecay: 0.1 } },
  'genesis-epochs-5': { what: 'private genesis heads, 5 passes over the round\'s samples (FedAvg too)', head: { headInit: 'shared', headShare: 0, headLrScale: 1, headDecay: 0 }, epochs: 5 },
  'eq4-every-round': { what: 'every head in eq. (4) each round (Algorithm 1 with N_C = N), clip C, noise z·C', head: { headInit: 'shared', headShare: 1, headShareEvery: 1 } },
  'eq4-every-5': { what: 'every head in eq. (4) every 5 rounds, clip C, noise z·C', head: { headInit: 'shared', headShare: 1, headShareEvery: 5 } },
  'eq4-every-10': { what: 'every head in eq. (4) every 10 rounds, clip C, noise z·C', head: { headInit: 'shared', headShare: 1, headShareEvery: 10 } },
  'eq4-half-every-5': { what: 'half the clients in eq. (4) every 5 rounds, the others private', head: { headInit: 'shared', headShare: 0.5, headShareEvery: 5 } },
  'eq4-every-5-z0.1': { what: 'every head in eq. (4) every 5 rounds, noise z = 0.1', head: { headInit: 'shared', headShare: 1, headShareEvery: 5, headNoise: 0.1 } },
  'eq4-every-5-z1': { what: 'every head in eq. (4) every 5 rounds, noise z = 1', head: { headInit: 'shared', headShare: 1, headShareEvery: 5, headNoise: 1 } },
  'eq4-every-5-z4': { what: 'every head in eq. (4) every 5 rounds, noise z = 4 (ε ≈ 8 at δ = 1e-5 over 10 shares)', head: { headInit: 'shared', headShare: 1, headShareEvery: 5, headNoise: 4 } },
};

export interface Curve {
  /** Rounds at which the test set was evaluated. */
  round: number[];
  testLoss: number[];
  testAccuracy: number[];
  /** Mean training loss of every round (the body's loss on smashed data in split mode). */
  trainLoss: number[];
  /** Clients taking part in every round. */
  active: number[];
}

/** What a split run measured beside its curve. */
export interface SplitRunStats {
  /** Final test accuracy (the mean over the clients' models, weighted by their data). */
  accuracy: number;
  /** Accuracy of each client's final model on its own training data (weighted): against
   * `accuracy`, how much the heads overfit. */
  trainAccuracy: number;
  /** Mean bytes one client sends (up) and receives (down) per round it takes part in. */
  bytes: { up: number; down: number };
  /** Mean L2 distance of the clients' final heads from their initial heads. */
  headDrift: number;
  /** Mean L2 norm of the head updates shared by eq. (4), before clipping (null: no sharing). */
  sharedUpdateNorm: number | null;
  /** (ε, δ) of eq. (4) for the client that shared most (null: no head shared). */
  privacy: HeadShareAccount | null;
}

export interface SplitVariantResult extends SplitRunStats {
  what: string;
  head: HeadPolicy;
  epochs: number;
  /** FedAvg at the same local passes, when they differ from the main run's. */
  accuracyFederated: number;
  /** accuracyFederated − accuracy, in points. */
  gapPoints: number;
}

export interface SplitExperimentResult {
  dataset: string;
  partition: string;
  rounds: number;
  clients: number;
  miners: number;
  /** The MLP's layer widths (input, hidden..., classes). */
  layers: number[];
  cut: number;
  headParams: number;
  bodyParams: number;
  samplesPerRound: number;
  epochs: number;
  /** The head handling of the `split` run: the product default unless flags changed it. */
  head: HeadPolicy;
  /** Final test accuracy (mean of the last evaluations, tail 1): split with the head handling
   * above, every client every round, nearest-server association; FedAvg under the same
   * conditions; centralized. */
  accuracySplit: number;
  /** The same split run with every client in eq. (4) every round (clip and noise as above). */
  accuracySplitHeadsAveraged: number | null;
  accuracyFederated: number;
  accuracyCentralized: number;
  /** accuracyFederated − accuracySplit, in points (target: at most 2). */
  gapPoints: number;
  /** The regularisers of the split runs and of the FedAvg/centralized runs (augment spec, cut dropout). */
  splitRecipe: { augment: string; cutDropout: number };
  federatedRecipe: { augment: string; cutDropout: number };
  /** FedAvg trained with the split runs' regularisers (null where the recipes are the same), and
   * its gap to accuracySplit in points: a gap closed by lowering FedAvg shows here. */
  accuracyFederatedSplitRecipe: number | null;
  gapPointsSplitRecipe: number | null;
  /** Accuracy of the final models on the training data (FedAvg: the global model on every
   * client's data; split: each client's model on its own). */
  trainAccuracy: { split: number; federated: number };
  /** Mean bytes one client sends (up) and receives (down) per round, payload only (float32
   * tensors, one byte per label; no signatures or framing). */
  bytesPerClientRound: { split: { up: number; down: number }; splitHeadsAveraged: { up: number; down: number } | null; federated: { up: number; down: number } };
  /** (ε, δ) of the split run's head sharing (null: heads private). */
  privacy: HeadShareAccount | null;
  /** The split run's mean distance of the final heads from the initial ones, and mean norm of
   * its shared head updates before clipping (SplitRunStats). */
  headDrift: number;
  sharedUpdateNorm: number | null;
  /** The named variants (SPLIT_VARIANTS) run beside it. */
  variants: Record<string, SplitVariantResult>;
  /** Per scheduler with energy budgets (Figs. 10-11). */
  schedulers: Record<string, { finalAccuracy: number; finalTestLoss: number; clientsAtEnd: number; clientRounds: number }>;
  curves: Record<string, Curve>;
  seconds: number;
  files: string[];
}

interface Ctx {
  o: SplitExperimentOptions;
  spec: ModelSpec;
  parts: Dataset[];
  test: Dataset;
  init: Float32Array;
  split: SplitRuntime;
  whole: ModelRuntime;
  /** Sample indices (into parts[n]) of client n in round r, in minibatch order. */
  samples(n: number, r: number): number[];
}

/**
 * Client n's samples in round r, in minibatch order: its stream (epochs of seeded shuffles of its
 * data, back to back) gives the round's samplesPerRound; each further local pass goes over the
 * same samples in another seeded order (like the product's E epochs over its N newest samples).
 */
function sampleStream(o: SplitExperimentOptions, parts: Dataset[]): (n: number, r: number) => number[] {
  const orders = new Map<string, number[]>();
  const order = (n: number, e: number) => {
    const key = `${n}/${e}`;
    let v = orders.get(key);
    if (!v) {
      v = new Rng(o.seed * 1_000_003 + n * 10_007 + e).shuffle(Array.from({ length: parts[n].n }, (_, i) => i));
      orders.set(key, v);
    }
    return v;
  };
  return (n, r) => {
    const size = parts[n].n;
    const round: number[] = [];
    for (let k = r * o.samplesPerRound; k < (r + 1) * o.samplesPerRound; k++) round.push(order(n, Math.floor(k / size))[k % size]);
    const out = [...round];
    for (let e = 1; e < o.epochs; e++) out.push(...new Rng(o.seed * 7_000_003 + n * 1_009 + r * 101 + e).shuffle([...round]));
    return out;
  };
}

/** Minibatches of one run: rows copied (or augmented) from a client's data, one-hot labels. */
export class Batcher {
  readonly x: Float32Array;
  readonly y: Float32Array;
  readonly labels: Uint8Array;
  private readonly dim: number;
  private readonly classes: number;
  private readonly o: Pick<SplitExperimentOptions, 'augment' | 'seed'>;
  private readonly side: number;
  constructor(dim: number, classes: number, batch: number, o: Pick<SplitExperimentOptions, 'augment' | 'seed'> = { augment: NO_AUGMENT, seed: 0 }) {
    this.dim = dim;
    this.classes = classes;
    this.x = new Float32Array(batch * dim);
    this.y = new Float32Array(batch * classes);
    this.labels = new Uint8Array(batch);
    this.o = o;
    this.side = augments(o.augment) ? imageSide(dim) : 0;
  }
  /** Fills rows 0..idx.length-1 from `data` (client n's round r, from position `start` of its
   * stream: the augmentation's key); returns the batch size. */
  fill(data: Dataset, idx: number[], n = 0, r = 0, start = 0): number {
    idx.forEach((j, i) => this.row(i, data, j, n, r, start + i));
    return idx.length;
  }
  /** Row i: sample j of `data`, client n's sample at position k of its round r. */
  row(i: number, data: Dataset, j: number, n: number, r: number, k: number): void {
    const src = data.x.subarray(j * this.dim, (j + 1) * this.dim);
    if (this.side) augmentImage(src, this.side, drawOf(this.o.augment, drawKey(this.o.seed, 0xa0, n, r, k)), this.x.subarray(i * this.dim, (i + 1) * this.dim));
    else this.x.set(src, i * this.dim);
    this.y.fill(0, i * this.classes, (i + 1) * this.classes);
    this.y[i * this.classes + data.y[j]] = 1;
    this.labels[i] = data.y[j];
  }
}

/** The dropout mask of client n's batch at `start` in round r (n = −1: the centralized run's
 * batch), the same in every run; null without dropout. */
function maskOf(o: SplitExperimentOptions, n: number, r: number, start: number, rows: number, width: number, out: Float32Array): Float32Array | null {
  return o.cutDropout > 0 ? cutDropoutMask(new Rng(drawKey(o.seed, 0xd0, n, r, start)), o.cutDropout, rows, width, out) : null;
}

const weightedMean = (vs: Float32Array[], ws: number[]): Float32Array => {
  const out = new Float32Array(vs[0].length);
  const total = ws.reduce((a, b) => a + b, 0);
  // accumulated in float64: float32 running sums over 16 vectors would lose low bits
  const acc = new Float64Array(out.length);
  vs.forEach((v, i) => {
    const w = ws[i] / total;
    for (let k = 0; k < v.length; k++) acc[k] += w * v[k];
  });
  out.set(acc);
  return out;
};

/** Test loss and accuracy of every client's model (its head, the common body), weighted by its
 * data; once if eq. (4) has just given every client the same head. */
async function evalClients(ctx: Ctx, heads: Float32Array[], body: Float32Array, identical: boolean): Promise<{ loss: number; accuracy: number }> {
  if (identical) return evaluate(ctx.whole, joinParams(heads[0], body), ctx.test);
  let loss = 0;
  let accuracy = 0;
  let w = 0;
  for (let n = 0; n < heads.length; n++) {
    const e = await evaluate(ctx.whole, joinParams(heads[n], body), ctx.test);
    loss += e.loss * ctx.parts[n].n;
    accuracy += e.accuracy * ctx.parts[n].n;
    w += ctx.parts[n].n;
  }
  return { loss: loss / w, accuracy: accuracy / w };
}

const newCurve = (): Curve => ({ round: [], testLoss: [], testAccuracy: [], trainLoss: [], active: [] });

function shouldEval(o: SplitExperimentOptions, r: number): boolean {
  return (r + 1) % o.evalEvery === 0 || r === o.rounds - 1;
}

/** Who takes part in round r and where: the server of each client, −1 for clients who quit. */
type Association = (r: number) => Promise<Int32Array>;

const l2 = (a: Float32Array, b: Float32Array): number => {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += (a[k] - b[k]) * (a[k] - b[k]);
  return Math.sqrt(s);
};

/** Accuracy of every client's model (its head, the common body) on its own training data, weighted by its data. */
async function trainAccuracyOf(ctx: Ctx, heads: Float32Array[], body: Float32Array): Promise<number> {
  let correct = 0;
  let w = 0;
  for (let n = 0; n < heads.length; n++) {
    const e = await evaluate(ctx.whole, joinParams(heads[n], body), ctx.parts[n]);
    correct += e.accuracy * ctx.parts[n].n;
    w += ctx.parts[n].n;
  }
  return correct / w;
}

/** Do the split runs and the FedAvg run train with the same regularisers (then FedAvg runs once)? */
export const sameRecipe = (o: Pick<SplitExperimentOptions, 'augment' | 'cutDropout' | 'splitAugment' | 'splitCutDropout'>): boolean =>
  formatAugment(o.augment) === formatAugment(o.splitAugment) && o.cutDropout === o.splitCutDropout;

/** `o` with the split runs' regularisers in the place of the FedAvg run's (Batcher and maskOf read those). */
const splitRecipe = (o: SplitExperimentOptions): SplitExperimentOptions => ({ ...o, augment: o.splitAugment, cutDropout: o.splitCutDropout });

async function runSplitLearning(ctx: Ctx, label: string, associate: Association, given: SplitExperimentOptions = ctx.o): Promise<{ curve: Curve; stats: SplitRunStats }> {
  const { spec, split } = ctx;
  const o = splitRecipe(given);
  const N = o.clients;
  const { head: head0, body: body0 } = splitParams(ctx.init, spec, o.cut);
  const initial = Array.from({ length: N }, (_, n) => (o.headInit === 'shared' ? Float32Array.from(head0) : Float32Array.from(splitParams(initParams(spec, o.seed * 7919 + 1000 + n), spec, o.cut).head)));
  const heads = initial.map((h) => Float32Array.from(h));
  // eq. (4) shares the update since the client's last aggregation: its starting head until then
  const synced: Float32Array[] = [...initial];
  const scratchHead = new Float32Array(split.headParams);
  let body: Float32Array = Float32Array.from(body0);
  const bodies = Array.from({ length: o.miners }, () => new Float32Array(split.bodyParams));
  const scratchBody = new Float32Array(split.bodyParams);
  const batcher = new Batcher(spec.layers[0], classCount(spec), o.batchSize, o);
  const cut: CutScratch = { a: new Float32Array(o.batchSize * split.width), ga: new Float32Array(o.batchSize * split.width) };
  const mask = new Float32Array(o.batchSize * split.width);
  const inNC = new Set(new Rng(o.seed * 31 + 5).shuffle(Array.from({ length: N }, (_, n) => n)).slice(0, Math.round(o.headShare * N)));
  const noise = new Rng(o.seed * 131 + 17);
  const headLr = o.lr * o.headLrScale;
  const pull = headLr * o.headDecay; // weight decay toward W_0^H: W ← W − η_H·λ·(W − W_0^H)
  const releases = new Int32Array(N);
  const bytes = { up: 0, down: 0, clientRounds: 0 };
  let sharedNorm = 0;
  let sharedCount = 0;
  const curve = newCurve();
  for (let r = 0; r < o.rounds; r++) {
    const server = await associate(r);
    const served = new Float64Array(o.miners);
    for (const b of bodies) b.set(body);
    const streams = Array.from({ length: N }, (_, n) => (server[n] >= 0 ? ctx.samples(n, r) : []));
    const steps = Math.max(0, ...streams.map((s) => s.length));
    let lossSum = 0;
    let lossN = 0;
    // Stage I: step s of every client in turn, each on its miner's body (eq. 1) and its own head (eq. 2)
    for (let start = 0; start < steps; start += o.batchSize) {
      for (let n = 0; n < N; n++) {
        const m = server[n];
        if (m < 0) continue;
        const b = batcher.fill(ctx.parts[n], streams[n].slice(start, start + o.batchSize), n, r, start);
        const x = batcher.x.subarray(0, b * spec.layers[0]);
        const drop = maskOf(o, n, r, start, b, split.width, mask);
        const loss = await stepThroughCut(split, heads[n], bodies[m], x, batcher.y.subarray(0, b * classCount(spec)), b, { head: headLr, body: o.lr }, drop, { head: scratchHead, body: scratchBody }, cut);
        bodies[m].set(scratchBody);
        if (headLr > 0) {
          const h = heads[n];
          if (pull > 0) {
            const h0 = initial[n];
            for (let k = 0; k < h.length; k++) h[k] = scratchHead[k] - pull * (scratchHead[k] - h0[k]);
          } else h.set(scratchHead);
        }
        served[m] += b;
        lossSum += loss * b;
        lossN += b;
        bytes.up += b * split.width * 4 + b; // smashed data (float32) + one label byte each
        bytes.down += b * split.width * 4; // the cut gradient
      }
    }
    const active = Array.from(server).filter((m) => m >= 0).length;
    bytes.clientRounds += active;
    // Stage II-A (eq. 3): bodies weighted by the samples their miner served
    const ms = Array.from({ length: o.miners }, (_, m) => m).filter((m) => served[m] > 0);
    if (ms.length) body = weightedMean(ms.map((m) => bodies[m]), ms.map((m) => served[m]));
    // Stage II-B (eq. 4), every headShareEvery rounds: the active clients of N_C send their head
    // update since their last aggregation clipped to C with N(0, (z·C)²) noise (the product's
    // privatise, split-client.ts); the mean of the noisy heads (sample-weighted) replaces theirs
    const sharing = (r + 1) % o.headShareEvery === 0 ? [...inNC].filter((n) => server[n] >= 0).sort((x, y) => x - y) : [];
    if (sharing.length) {
      const sigma = o.headNoise * o.headClip;
      const noisy = sharing.map((n) => {
        const norm = l2(heads[n], synced[n]);
        sharedNorm += norm;
        sharedCount++;
        releases[n]++;
        const scale = norm > o.headClip ? o.headClip / norm : 1;
        const s0 = synced[n];
        const h = heads[n];
        return Float32Array.from(h, (v, k) => s0[k] + (v - s0[k]) * scale + (sigma > 0 ? sigma * noise.normal() : 0));
      });
      const avg = weightedMean(noisy, sharing.map((n) => streams[n].length));
      bytes.up += sharing.length * split.headParams * 4;
      bytes.down += sharing.length * split.headParams * 4;
      // eq. (4) hands every member the same vector; later local steps must not write through it
      for (const n of sharing) {
        heads[n] = Float32Array.from(avg);
        synced[n] = avg;
      }
    }
    // one evaluation when every head is the same: just averaged by all, or never trained from one start
    const sameHeads = sharing.length === N || (headLr === 0 && o.headInit === 'shared' && inNC.size === 0);
    curve.trainLoss.push(lossN ? lossSum / lossN : NaN);
    curve.active.push(active);
    const acc = await recordEval(o, curve, r, () => evalClients(ctx, heads, body, sameHeads));
    o.onRound?.(label, r + 1, acc);
  }
  const maxReleases = Math.max(0, ...releases);
  const stats: SplitRunStats = {
    accuracy: tail(curve.testAccuracy, 1),
    trainAccuracy: await trainAccuracyOf(ctx, heads, body),
    bytes: perRound(bytes),
    headDrift: heads.reduce((s, h, n) => s + l2(h, initial[n]), 0) / N,
    sharedUpdateNorm: sharedCount ? sharedNorm / sharedCount : null,
    privacy: maxReleases ? headShareAccount({ clip: o.headClip, noise: o.headNoise, releases: maxReleases, delta: o.dpDelta }) : null,
  };
  return { curve, stats };
}

/** A difference of accuracies in points, to 0.01. */
const points = (d: number) => Math.round(d * 1e4) / 100;

const headPolicy = (o: HeadPolicy): HeadPolicy => ({ headInit: o.headInit, headLrScale: o.headLrScale, headDecay: o.headDecay, headShare: o.headShare, headShareEvery: o.headShareEvery, headClip: o.headClip, headNoise: o.headNoise });

const perRound = (b: { up: number; down: number; clientRounds: number }) => ({ up: Math.round(b.up / b.clientRounds), down: Math.round(b.down / b.clientRounds) });

/**
 * The whole model's SGD step for FedAvg and centralized: the whole-model graph, or with cut
 * dropout the head/body pair through the cut with the batch's mask (stepThroughCut: the same
 * step as split learning's, so the regulariser is the same in every run).
 */
function throughCut(ctx: Ctx): (w: Float32Array, x: Float32Array, y: Float32Array, b: number, next: Float32Array, n: number, r: number, start: number) => Promise<number> {
  const { o, spec, split, whole } = ctx;
  if (o.cutDropout === 0) return (w, x, y, b, next) => whole.sgdStep(w, x, y, b, o.lr, next);
  const cut: CutScratch = { a: new Float32Array(o.batchSize * split.width), ga: new Float32Array(o.batchSize * split.width) };
  const mask = new Float32Array(o.batchSize * split.width);
  return (w, x, y, b, next, n, r, start) => {
    const p = splitParams(w, spec, o.cut);
    const q = splitParams(next, spec, o.cut);
    return stepThroughCut(split, p.head, p.body, x, y, b, { head: o.lr, body: o.lr }, maskOf(o, n, r, start, b, split.width, mask), q, cut);
  };
}

/** FedAvg on the same samples and minibatches: local SGD from the global model, sample-weighted mean. */
async function runFederated(ctx: Ctx, bytes: { up: number; down: number; clientRounds: number }): Promise<{ curve: Curve; trainAccuracy: number }> {
  const { o, spec, whole } = ctx;
  const P = paramCount(spec);
  let global: Float32Array = Float32Array.from(ctx.init);
  const batcher = new Batcher(spec.layers[0], classCount(spec), o.batchSize, o);
  let w = new Float32Array(P);
  let next = new Float32Array(P);
  const through = throughCut(ctx);
  const curve = newCurve();
  for (let r = 0; r < o.rounds; r++) {
    const locals: Float32Array[] = [];
    let lossSum = 0;
    let lossN = 0;
    for (let n = 0; n < o.clients; n++) {
      const idx = ctx.samples(n, r);
      w.set(global);
      for (let start = 0; start < idx.length; start += o.batchSize) {
        const b = batcher.fill(ctx.parts[n], idx.slice(start, start + o.batchSize), n, r, start);
        const loss = await through(w, batcher.x.subarray(0, b * spec.layers[0]), batcher.y.subarray(0, b * classCount(spec)), b, next, n, r, start);
        [w, next] = [next, w];
        lossSum += loss * b;
        lossN += b;
      }
      locals.push(Float32Array.from(w));
      bytes.up += P * 4; // the update (float32)
      bytes.down += P * 4; // the new global model
      bytes.clientRounds++;
    }
    global = weightedMean(locals, locals.map(() => o.samplesPerRound));
    curve.trainLoss.push(lossSum / lossN);
    curve.active.push(o.clients);
    const acc = await recordEval(o, curve, r, () => evaluate(whole, global, ctx.test));
    o.onRound?.('federated', r + 1, acc);
  }
  const { head, body } = splitParams(global, spec, o.cut);
  return { curve, trainAccuracy: await trainAccuracyOf(ctx, ctx.parts.map(() => head), body) };
}

/** One model over the union of every round's samples, shuffled: as many SGD steps per round as all bodies together. */
async function runCentralizedRounds(ctx: Ctx): Promise<Curve> {
  const { o, spec, whole } = ctx;
  let w = Float32Array.from(ctx.init);
  let next = new Float32Array(w.length);
  const batcher = new Batcher(spec.layers[0], classCount(spec), o.batchSize, o);
  const rng = new Rng(o.seed * 17 + 3);
  const through = throughCut(ctx);
  const curve = newCurve();
  for (let r = 0; r < o.rounds; r++) {
    // each sample with its client and its position in that client's round (the augmentation's key)
    const all = rng.shuffle(Array.from({ length: o.clients }, (_, n) => ctx.samples(n, r).map((j, k) => [n, j, k] as const)).flat());
    let lossSum = 0;
    for (let start = 0; start < all.length; start += o.batchSize) {
      const chunk = all.slice(start, start + o.batchSize);
      chunk.forEach(([n, j, k], i) => batcher.row(i, ctx.parts[n], j, n, r, k));
      const b = chunk.length;
      lossSum += b * (await through(w, batcher.x.subarray(0, b * spec.layers[0]), batcher.y.subarray(0, b * classCount(spec)), b, next, -1, r, start));
      [w, next] = [next, w];
    }
    curve.trainLoss.push(lossSum / all.length);
    curve.active.push(o.clients);
    const acc = await recordEval(o, curve, r, () => evaluate(whole, w, ctx.test));
    o.onRound?.('centralized', r + 1, acc);
  }
  return curve;
}

/** On an evaluation round, test the model and add the point to the curve; the accuracy, or null between evaluations. */
async function recordEval(o: SplitExperimentOptions, curve: Curve, r: number, test: () => Promise<{ loss: number; accuracy: number }>): Promise<number | null> {
  if (!shouldEval(o, r)) return null;
  const e = await test();
  curve.round.push(r + 1);
  curve.testLoss.push(e.loss);
  curve.testAccuracy.push(e.accuracy);
  return e.accuracy;
}

async function schedulerOf(name: SchedulerName, seed: number): Promise<Scheduler> {
  return name === 'd3qn' ? d3qnScheduler() : heuristicScheduler(name, seed);
}

/**
 * Association from a scheduler in the twin. Without budgets every client takes part every round;
 * with them a client quits once its uplink energy has reached its budget (the round that crosses
 * it is the last it trains in).
 */
function twinAssociation(p: TwinParams, sched: Scheduler, seed: number, budgets?: Float64Array): Association {
  const twin = new Twin(p, seed);
  const used = new Float64Array(p.clients);
  return async () => {
    const s = twin.next();
    const quit = budgets ? Array.from(used, (u, n) => u >= budgets[n]) : [];
    // a client that has quit sends nothing: no samples, so no time or energy in eqs. (5)-(18)
    quit.forEach((q, n) => q && (s.samples[n] = 0));
    const a = await sched.assign(s);
    checkOneToOne(p, a);
    const c = roundCost(s, a);
    twin.record(a, c);
    for (let n = 0; n < p.clients; n++) used[n] += c.clientEnergyJ[n];
    return Int32Array.from(a.server, (m, n) => (quit[n] ? -1 : m));
  };
}

export async function runSplitExperiment(o: SplitExperimentOptions): Promise<SplitExperimentResult> {
  const t0 = performance.now();
  const { train, test } = loadDataset(o.dataset);
  const spec: ModelSpec = { ...DEFAULT_MODEL, layers: [train.dim, ...o.hidden, train.classes] };
  // before any run: a recipe that augments needs square images
  for (const [flag, a] of [['--split-augment', o.splitAugment], ['--augment', o.augment]] as const) {
    if (augments(a) && !isSquareImage(train)) throw new BflError(ErrorCode.BAD_CONFIG, `${flag} ${formatAugment(a)}: augmentation needs square images, but ${o.dataset}'s samples ${samplesAre(train)}: use ${flag} none`);
  }
  // the radio twin of the paper with our numbers of clients and miners (validates N ≤ M·K)
  const p = twinParams({ clients: o.clients, servers: o.miners });
  const parts = partition(train.y, o.clients, o.partition, o.seed).map((idx, n) => subset(train, idx, `client${n}`));
  const split = SplitRuntime.create(spec, o.cut, { threads: o.threads });
  const whole = await ModelRuntime.create(spec, { threads: o.threads });
  const ctx: Ctx = { o, spec, parts, test, init: initParams(spec, o.seed), split, whole, samples: sampleStream(o, parts) };
  const report = new Report(o.out);
  try {
    const curves: Record<string, Curve> = {};
    curves.centralized = await runCentralizedRounds(ctx);
    const fedBytes = { up: 0, down: 0, clientRounds: 0 };
    const fed = await runFederated(ctx, fedBytes);
    curves.federated = fed.curve;
    // FedAvg with split's regularisers too: what the recipe does to federated learning, so a gap
    // closed by the regularisers can be told from one closed by lowering FedAvg
    if (!sameRecipe(o)) {
      const f = await runFederated({ ...ctx, o: { ...splitRecipe(o), onRound: (_r, round, acc) => o.onRound?.("FedAvg with split's regularisers", round, acc) } }, { up: 0, down: 0, clientRounds: 0 });
      curves['federated/split-recipe'] = f.curve;
    }
    const nearestAssociation = () => twinAssociation(p, nearestScheduler(o.seed + 1), o.seed);
    const main = await runSplitLearning(ctx, 'split', nearestAssociation());
    curves.split = main.curve;
    // the same with every client in N_C every round (eq. 4 with C and z as above), unless that was the run above
    const everyRound = { ...o, headShare: 1, headShareEvery: 1 };
    const averaged = o.headShare === 1 && o.headShareEvery === 1 ? main : o.headsAveraged ? await runSplitLearning(ctx, 'split/heads-averaged', nearestAssociation(), everyRound) : null;
    if (averaged) curves['split/heads-averaged'] = averaged.curve;
    const variants: Record<string, SplitVariantResult> = {};
    for (const name of o.variants) {
      const v = SPLIT_VARIANTS[name];
      if (!v) throw new BflError(ErrorCode.BAD_CONFIG, `unknown split variant ${name}: use ${Object.keys(SPLIT_VARIANTS).join(', ')}`);
      const epochs = v.epochs ?? o.epochs;
      const vo: SplitExperimentOptions = { ...o, ...v.head, epochs };
      // other local passes: other batches, and FedAvg on those same batches beside it
      const vctx: Ctx = epochs === o.epochs ? ctx : { ...ctx, o: vo, samples: sampleStream(vo, parts) };
      const head = headPolicy(vo);
      const same = epochs === o.epochs && JSON.stringify(head) === JSON.stringify(headPolicy(o));
      // the product default's own run needs no second pass
      const run = same ? main : await runSplitLearning(vctx, `variant ${name}`, nearestAssociation(), vo);
      curves[`variant/${name}`] = run.curve;
      let accuracyFederated = tail(fed.curve.testAccuracy, 1);
      if (epochs !== o.epochs) {
        const f = await runFederated({ ...vctx, o: { ...vo, onRound: (_r, round, acc) => o.onRound?.(`variant ${name} FedAvg`, round, acc) } }, { up: 0, down: 0, clientRounds: 0 });
        curves[`variant/${name}/federated`] = f.curve;
        accuracyFederated = tail(f.curve.testAccuracy, 1);
      }
      variants[name] = { what: v.what, head, epochs, ...run.stats, accuracyFederated, gapPoints: points(accuracyFederated - run.stats.accuracy) };
    }

    // energy budgets: R rounds at the nearest scheduler's median client energy per round, on
    // other twin rounds (the median: its deep fades put the mean far above a typical round)
    const calib = new Twin(p, o.seed + 77);
    const cal = nearestScheduler(o.seed + 78);
    const energies: number[] = [];
    for (let r = 0; r < 20; r++) {
      const s = calib.next();
      energies.push(...roundCost(s, await cal.assign(s)).clientEnergyJ);
    }
    const e = energies.sort((x, y) => x - y)[energies.length >> 1];
    const brng = new Rng(o.seed * 97 + 11);
    const budgets = Float64Array.from({ length: o.clients }, () => o.rounds * e * (o.budget[0] + (o.budget[1] - o.budget[0]) * brng.float()));
    const schedulers: SplitExperimentResult['schedulers'] = {};
    for (const name of o.schedulers) {
      const sched = await schedulerOf(name, o.seed + 1);
      try {
        const { curve: c } = await runSplitLearning(ctx, `split/${name}`, twinAssociation(p, sched, o.seed, budgets));
        curves[`split/${name}`] = c;
        schedulers[name] = { finalAccuracy: c.testAccuracy[c.testAccuracy.length - 1], finalTestLoss: c.testLoss[c.testLoss.length - 1], clientsAtEnd: c.active[c.active.length - 1], clientRounds: c.active.reduce((x, y) => x + y, 0) };
      } finally {
        await sched.close?.();
      }
    }

    const last = (c: Curve) => tail(c.testAccuracy, 1);
    const names = Object.keys(curves);
    await report.csv('split-rounds', ['run', 'round', 'train_loss', 'active_clients', 'test_loss', 'test_accuracy'], names.flatMap((n) => curves[n].trainLoss.map((l, i) => {
      const k = curves[n].round.indexOf(i + 1);
      return [n, i + 1, l, curves[n].active[i], k >= 0 ? curves[n].testLoss[k] : null, k >= 0 ? curves[n].testAccuracy[k] : null];
    })));
    const figRuns = ['centralized', ...o.schedulers.map((s) => `split/${s}`)];
    // accuracy axes from just below the lowest evaluation of the figure's own runs: they differ
    // by points, not tens (a noisy variant's first rounds near chance must not flatten Fig. 11)
    const accRange = (runs: string[]): [number, number] => [Math.max(0, Math.floor((Math.min(...runs.flatMap((n) => curves[n].testAccuracy)) - 0.02) * 20) / 20), 1];
    const vsRuns = ['centralized', 'federated', 'federated/split-recipe', 'split', 'split/heads-averaged'].filter((n) => curves[n]);
    await report.plot('split-fig10-loss', lineChart({ title: 'Test loss over rounds (split learning with energy budgets)', xLabel: 'round', yLabel: 'test loss (cross-entropy)', series: figRuns.map((n) => ({ name: n, points: curves[n].round.map((r, i) => [r, curves[n].testLoss[i]] as [number, number]) })) }));
    await report.plot('split-fig11-accuracy', lineChart({ title: 'Test accuracy over rounds (split learning with energy budgets)', xLabel: 'round', yLabel: 'test accuracy', yRange: accRange(figRuns), series: figRuns.map((n) => ({ name: n, points: curves[n].round.map((r, i) => [r, curves[n].testAccuracy[i]] as [number, number]) })) }));
    await report.plot('split-clients', lineChart({ title: 'Clients taking part (energy budgets)', xLabel: 'round', yLabel: 'clients', yRange: [0, o.clients], series: o.schedulers.map((n) => ({ name: `split/${n}`, points: curves[`split/${n}`].active.map((v, i) => [i + 1, v] as [number, number]) })) }));
    await report.plot('split-vs-federated', lineChart({ title: 'Split vs federated vs centralized (every client, every round)', xLabel: 'round', yLabel: 'test accuracy', yRange: accRange(vsRuns), series: vsRuns.map((n) => ({ name: n, points: curves[n].round.map((r, i) => [r, curves[n].testAccuracy[i]] as [number, number]) })) }));
    const accuracyCurve = (n: string, name = n) => ({ name, points: curves[n].round.map((r, i) => [r, curves[n].testAccuracy[i]] as [number, number]) });
    if (o.variants.length) await report.plot('split-variants', lineChart({ title: 'Head handling in split learning (every client, every round)', xLabel: 'round', yLabel: 'test accuracy', yRange: accRange(['federated', 'split', ...o.variants.map((v) => `variant/${v}`)]), series: [accuracyCurve('federated'), accuracyCurve('split', 'split (default)'), ...o.variants.map((v) => accuracyCurve(`variant/${v}`, v))] }));
    const result: SplitExperimentResult = {
      dataset: o.dataset,
      partition: formatPartition(o.partition),
      rounds: o.rounds,
      clients: o.clients,
      miners: o.miners,
      layers: [...spec.layers],
      cut: o.cut,
      headParams: split.headParams,
      bodyParams: split.bodyParams,
      samplesPerRound: o.samplesPerRound,
      epochs: o.epochs,
      head: headPolicy(o),
      accuracySplit: main.stats.accuracy,
      accuracySplitHeadsAveraged: averaged?.stats.accuracy ?? null,
      accuracyFederated: last(curves.federated),
      accuracyCentralized: last(curves.centralized),
      gapPoints: points(last(curves.federated) - main.stats.accuracy),
      splitRecipe: { augment: formatAugment(o.splitAugment), cutDropout: o.splitCutDropout },
      federatedRecipe: { augment: formatAugment(o.augment), cutDropout: o.cutDropout },
      accuracyFederatedSplitRecipe: curves['federated/split-recipe'] ? last(curves['federated/split-recipe']) : null,
      gapPointsSplitRecipe: curves['federated/split-recipe'] ? points(last(curves['federated/split-recipe']) - main.stats.accuracy) : null,
      trainAccuracy: { split: main.stats.trainAccuracy, federated: fed.trainAccuracy },
      bytesPerClientRound: { split: main.stats.bytes, splitHeadsAveraged: averaged?.stats.bytes ?? null, federated: perRound(fedBytes) },
      privacy: main.stats.privacy,
      headDrift: main.stats.headDrift,
      sharedUpdateNorm: main.stats.sharedUpdateNorm,
      variants,
      schedulers,
      curves,
      seconds: Math.round((performance.now() - t0) / 100) / 10,
      files: report.files,
    };
    await report.json('split', result);
    return result;
  } finally {
    await Promise.all([split.close(), whole.close()]);
  }
}
