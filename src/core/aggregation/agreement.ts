/**
 * BFL-MEC with agreement scoring (issue 11; docs/decisions.md "Contribution scoring"): the
 * default `bfl-mec`. The paper's Algorithm 4 scores θ_i = cos(Δ_i, ḡ) and keeps the DBSCAN
 * cluster of ḡ; measured on real updates that fails three ways: ḡ contains Δ_i's own share (late
 * in IID training a sign flip of a noise-dominated update looks as close to ḡ as an honest one),
 * under label skew honest updates are as often against the mean as along it (a sign flip is
 * statistically the mirror image of an honest update), and similarity weights cost ~9 points of
 * accuracy under non-IID data. This rule keeps the design (a clustering decides high/low, rewards
 * follow contribution, every miner recomputes it bit for bit) and changes what is compared:
 *
 *  0. length: an update longer than maxNormRatio × the median length is low (as before);
 *  1. copies: an update within copyCosine of another update of the same aggregation (both low:
 *     nothing says which came first), or within historyCopyCosine of any client's remembered
 *     update or of the previous global update (a replay) is low: free-riders earn nothing;
 *  2. reference, the first that applies:
 *     a. the client's own last high update (a count sketch in the state), when the agreement
 *        with it is informative (|cos| ≥ historyMin): consecutive honest updates of one client
 *        agree at 0.8-0.99 under two-shard label skew and a sign flip of them at about −0.9,
 *        while against anything shared by all clients a label-skewed honest update is as often
 *        negative as positive (measured: the mean of its round ±0.5, the others' momentum
 *        −0.3 … 0.1 late in training);
 *     b. where fewer than half of the pool have an informative past (late in IID training), the
 *        momentum of the global updates, m_t = β·m_{t−1} + g_t (the server momentum of
 *        centered clipping, Karimireddy et al. 2021): it averages the noise of single rounds out
 *        and keeps the descent direction; late in IID training, when a client's consecutive
 *        updates are noise (cos −0.16 … 0.16 with each other), every honest update still agrees
 *        with it (0.02 … 0.26);
 *     c. the first aggregation, and a client without an informative past while at least half
 *        of the pool has one (label skew: the momentum cannot tell a skewed update from its flip
 *        there): the signed consensus of its peers, Σ_{j≠i} s_j·|c_ij|·Δ_j/|Δ_j| (signedConsensus:
 *        related peers decide, each with the sign the vote or its own history gave it); it does
 *        not contain Δ_i;
 *  3. agreement a_i = cos(Δ_i, reference), as a z-score z_i = a_i·√dim (dim: the space it is
 *     measured in, the sketch's or the model's): an unrelated vector (noise) scores about N(0, 1);
 *  4. DBSCAN (minPts 1, eps zEps) over the z-scores and a null point at 0: the cluster of the null
 *     point is agreement indistinguishable from chance (noise free-riders), low; a negative score
 *     outside it points against its reference (sign flip, IPM, label flip), low; the rest is H;
 *  5. weights: sample counts over H (FedAvg inside H: under non-IID the honest updates differ by
 *     design, and weighting by similarity favoured the majority classes), times s(τ); a claimed
 *     count counts at most maxClaimRatio × the median claim in H (claims are not verifiable);
 *  6. rewards: base × n_i·a_i·c_i / Σ_H n_k·a_k·c_k, c_i = max(0, cos(Δ_i, g)) (contribution =
 *     data × how well it agrees with its reference × how much of it went into the aggregate, as
 *     CGSV's cosine gradient Shapley); aggregation weights stay sample counts (step 5);
 *  7. state: the momentum, the sketch of g and the sketch of each client's last high update (for
 *     the replay check).
 * The state is a pure function of the chain's aggregations (each block's state is derived from
 * its parent anchor's), so every miner, a restarted one and one after a reorg agree.
 */
import { BflError, ErrorCode } from '../errors.ts';
import { applyUpdate, canonical, normalise, rewardsFor, stalenessWeight } from './common.ts';
import { dbscan } from './dbscan.ts';
import type { AggregationInput, AggregationResult, Aggregator } from './types.ts';
import { type GramKernel, cosineFromGram, dot, dotsWith, referenceGramKernel, weightedSum } from './vectors.ts';

export interface AgreementOptions {
  /** Updates longer than this × the median update length are low; null = no length check. */
  maxNormRatio: number | null;
  /** Two updates of one aggregation this close (cosine) are copies: both low. */
  copyCosine: number;
  /** An update this close (cosine, in the sketch) to a remembered update of another client or
   * to the previous global update is a replay: low. */
  historyCopyCosine: number;
  /** Coordinates of the count sketch kept per client (a power of 2). */
  sketchSize: number;
  /** DBSCAN radius on the z-scores: agreement within zEps chance-deviations of 0 is chance. */
  zEps: number;
  /** The reference: the client's history, then the momentum of the global updates ('history');
   * the momentum only ('momentum'); or always the leave-one-out consensus ('consensus'). */
  reference: 'history' | 'momentum' | 'consensus';
  /** The leave-one-out consensus (the reference before there is a momentum): every peer's unit
   * update counts alike ('mean'), or each peer votes with weight |cos| and the sign the vote
   * gave it ('signed': iterated, see signedConsensus). */
  consensus: 'mean' | 'signed';
  /** The signed vote flips at most this × pool size signs. */
  consensusIterations: number;
  /** consensus 'signed': peers this related (|cos| ≥ relatedMin) share labels; a client judged by
   * its peers needs at least one (else, its labels shared with nobody, they do not judge it), and
   * in the vote a pair less related than this counts reversed (see signedConsensus). */
  relatedMin: number;
  /** A client's own history is the reference when |cos| with it is at least this. */
  historyMin: number;
  /** consensus 'mean' (the rule before): the shared reference (momentum) may exclude a client
   * only if at least this share of the clients their history vouches for agree with it. */
  sharedReliability: number;
  /** consensus 'signed': clients without an informative history are judged by their peers when
   * at least this share of the pool has an informative history, else by the momentum. */
  anchoredShare: number;
  /** β of the momentum m_t = β·m_{t−1} + g_t. */
  momentum: number;
  /** Aggregation weights inside H: sample counts (FedAvg) or sample counts × agreement. */
  weighting: 'samples' | 'agreement';
  /** Rewards: data × agreement × alignment with the aggregate ('aligned'), or data × agreement
   * ('agreement', the rule before). */
  reward: 'aligned' | 'agreement';
  /** A claimed sample count counts at most this × the median claim of the aggregation's high
   * updates, in the weights and the rewards; null = claims count as given (the rule before). */
  maxClaimRatio: number | null;
  /** a in s(τ) = (1 + τ)^(−a); 0 = no staleness weighting. */
  stalenessExponent: number;
}

export const defaultAgreementOptions: AgreementOptions = {
  // Honest updates measured at most 1.54 × the median length (docs/decisions.md).
  maxNormRatio: 2,
  // Honest updates of different clients measured below 0.99 with each other (shared data would
  // be needed to come closer); a copy is 1, a copy with a little noise above 0.999.
  copyCosine: 0.999,
  // The sketch adds an error of about 1/√sketchSize = 0.03 to a cosine; 0.99 stays clear of
  // honest pairs and catches exact and near-exact replays.
  historyCopyCosine: 0.99,
  // 1024 × 8 bytes per client: 800 KB of state at 100 clients, cosine error ~0.03.
  sketchSize: 1024,
  // 3 standard deviations of chance agreement (a noise free-rider scores |z| ≲ 3).
  zEps: 3,
  reference: 'history',
  consensus: 'signed',
  consensusIterations: 10,
  // 10 clients two-shard, first aggregation (docs/experiments.md "10 clients non-IID"): the client
  // holding both shards of one digit is at −0.11 … −0.03 with every peer, every other client has a
  // peer at 0.30 or more (pairs sharing no label: −0.20 … 0.16). 0.2 sits between the two.
  relatedMin: 0.2,
  // Honest clients agree with their own last update at 0.8-0.99 under label skew, 0.3-0.45 early
  // in IID training and −0.16 … 0.16 late in it (noise); a sign flip at the negatives of those.
  // Below 0.3 the history says nothing either way and the momentum decides.
  historyMin: 0.3,
  // IID: every vouched-for honest update agrees with the momentum; two-shard label skew: about
  // half. 0.8 separates the two.
  sharedReliability: 0.8,
  // Label skew: every client's history is informative (all of the pool but the few without a
  // past); late in IID training almost none is (|cos| < historyMin). Offline (docs/experiments.md)
  // 0.5 and 0.8 gave the same figures at 50 clients non-IID and 10 IID; at 20 clients non-IID 0.8
  // let attackers in at the second aggregation, where a fifth of the pool had no history yet.
  anchoredShare: 0.5,
  // 0.9: the usual server/client momentum (about the last 10 aggregations). Measured: with β = 0
  // (the previous global update alone) honest updates late in IID training agree with it at
  // −0.17 … 0.23; with 0.9 at 0.08 … 0.26.
  momentum: 0.9,
  weighting: 'samples',
  // Measured (docs/experiments.md, "Rewards and Shapley values"): under Dirichlet label skew the
  // rule before ranked clients against both exact Shapley references (−0.60 / −0.31), the aligned
  // reward with them (0.71 / 0.90), and it keeps the ranking by data quality and sample count.
  reward: 'aligned',
  // Sample counts are the client's own claim (up to 10^6 per update): unclipped, one vote per
  // aggregation claiming 10^6 took nearly all of the weight and the reward. Every honest update
  // trains on the network's N samples (Algorithm 2), so honest claims are N, except an offline
  // client's average of k buffered updates, which claims k·N: 2 lets that average count double
  // (it stands for missed rounds) while a false claim gets at most 2/(2 + h − 1) of the reward
  // among h equally agreeing high clients (18 % at h = 10), instead of all of it.
  maxClaimRatio: 2,
  stalenessExponent: 0,
};

/** The momentum of the global updates; per client the sketch of its last high update; the
 * sketch of the last global update. */
export interface AgreementState {
  momentum: Float64Array | null;
  references: Map<string, Float64Array>;
  lastGlobal: Float64Array | null;
}

const sketchMaps = new Map<string, { bucket: Int32Array; sign: Float64Array }>();

/**
 * Count sketch (Charikar et al. 2002): coordinate k goes to bucket h(k) with sign σ(k), both from
 * murmur3's 32-bit finaliser of k; inner products are preserved in expectation. Summed in
 * coordinate order in float64, so every miner gets the same bits.
 */
export function sketch(v: Float32Array | Float64Array, size: number): Float64Array {
  const key = `${v.length}/${size}`;
  let m = sketchMaps.get(key);
  if (!m) {
    const bucket = new Int32Array(v.length);
    const sign = new Float64Array(v.length);
    for (let k = 0; k < v.length; k++) {
      let h = k + 0x9e3779b9;
      h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
      h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
      h = (h ^ (h >>> 16)) >>> 0;
      bucket[k] = h & (size - 1);
      sign[k] = h & 0x80000000 ? -1 : 1;
    }
    m = { bucket, sign };
    sketchMaps.set(key, m);
  }
  const out = new Float64Array(size);
  const { bucket, sign } = m;
  // one loop per array type, as in vectors.ts (Vector): the updates are float32, g float64, and V8
  // specialises a loop to the types it has met (measured here: 162-172 ms of CPU per aggregation
  // against 171-188 with one loop, within the noise of a shared machine)
  if (v instanceof Float32Array) for (let k = 0; k < v.length; k++) out[bucket[k]] += sign[k] * v[k];
  else for (let k = 0; k < v.length; k++) out[bucket[k]] += sign[k] * v[k];
  return out;
}

/** cos(a, b) from dot(a, b), |a| and |b| (each Math.sqrt(dot(x, x))): the dot products come
 * several at a time (dotsWith) and the lengths once per vector, not once per pair. */
function cosineOf(ab: number, normA: number, normB: number): number {
  const d = normA * normB;
  return d === 0 ? 0 : Math.min(1, Math.max(-1, ab / d));
}

const norm = (v: Float64Array) => Math.sqrt(dot(v, v));

export class AgreementAggregator implements Aggregator<AgreementState> {
  readonly name: string;
  readonly options: AgreementOptions;
  /** Computes the Gram matrix; any kernel gives the reference's bits (src/kernels/gram.ts). */
  kernel: GramKernel = referenceGramKernel;

  constructor(options: Partial<AgreementOptions> = {}, name = 'bfl-mec') {
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    this.options = { ...defaultAgreementOptions, ...given };
    this.name = name;
    const o = this.options;
    if (o.maxNormRatio !== null && !(o.maxNormRatio >= 1)) throw new RangeError(`maxNormRatio must be >= 1 or null, got ${o.maxNormRatio}`);
    if (!(o.copyCosine > 0 && o.copyCosine <= 1) || !(o.historyCopyCosine > 0 && o.historyCopyCosine <= 1)) throw new RangeError('copy cosines must be in (0, 1]');
    if (!(Number.isInteger(Math.log2(o.sketchSize)) && o.sketchSize >= 16)) throw new RangeError(`sketchSize must be a power of 2 >= 16, got ${o.sketchSize}`);
    if (!(o.historyMin >= 0 && o.historyMin <= 1)) throw new RangeError(`historyMin must be in [0, 1], got ${o.historyMin}`);
    if (!(o.momentum >= 0 && o.momentum < 1)) throw new RangeError(`momentum must be in [0, 1), got ${o.momentum}`);
    if (!(o.anchoredShare >= 0 && o.anchoredShare <= 1)) throw new RangeError(`anchoredShare must be in [0, 1], got ${o.anchoredShare}`);
    if (!(Number.isInteger(o.consensusIterations) && o.consensusIterations >= 1)) throw new RangeError(`consensusIterations must be an integer >= 1, got ${o.consensusIterations}`);
    if (!(o.relatedMin >= 0 && o.relatedMin <= 1)) throw new RangeError(`relatedMin must be in [0, 1], got ${o.relatedMin}`);
    if (!(o.zEps > 0)) throw new RangeError(`zEps must be > 0, got ${o.zEps}`);
    if (o.reward !== 'aligned' && o.reward !== 'agreement') throw new RangeError(`reward must be aligned or agreement, got ${o.reward}`);
    if (o.maxClaimRatio !== null && !(o.maxClaimRatio >= 1)) throw new RangeError(`maxClaimRatio must be >= 1 or null, got ${o.maxClaimRatio}`);
    if (!(o.stalenessExponent >= 0)) throw new RangeError(`stalenessExponent must be >= 0, got ${o.stalenessExponent}`);
  }

  initialState(): AgreementState {
    return { momentum: null, references: new Map(), lastGlobal: null };
  }

  encodeState(state: AgreementState): Uint8Array {
    return encodeAgreementState(state);
  }

  decodeState(bytes: Uint8Array): AgreementState {
    return decodeAgreementState(bytes, this.options.sketchSize);
  }

  aggregate(input: AggregationInput, state: AgreementState): { result: AggregationResult; state: AgreementState } {
    const o = this.options;
    const ups = canonical(input.updates);
    const n = ups.length;
    if (n === 0) throw new RangeError('nothing to aggregate');
    const dim = ups[0].delta.length;
    const vs = ups.map((u) => u.delta); // read in place: float32 widens exactly (vectors.ts)
    const gram = this.kernel.pairwise(vs, 'dot');
    const cos = cosineFromGram(gram, n);
    const norms = vs.map((_, i) => Math.sqrt(gram[i * n + i]));
    const medianNorm = median(norms);
    const bound = o.maxNormRatio === null ? Infinity : o.maxNormRatio * medianNorm;
    const sketches = vs.map((v) => sketch(v, o.sketchSize));
    const sketchNorms = sketches.map(norm);
    const rememberedIds = [...state.references.keys()];
    const remembered = [...state.references.values()];
    const rememberedNorms = remembered.map(norm);
    const lastGlobalNorm = state.lastGlobal ? norm(state.lastGlobal) : 0;
    const why: string[] = ups.map(() => '');

    // 0-1. length, copies within the aggregation, replays of remembered updates
    for (let i = 0; i < n; i++) {
      if (norms[i] === 0) why[i] = 'empty';
      else if (bound > 0 && norms[i] > bound) why[i] = 'too long';
    }
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        if (cos[i * n + j] >= o.copyCosine) why[i] = why[j] = 'copy';
      }
      if (why[i]) continue;
      if (state.lastGlobal && cosineOf(dot(sketches[i], state.lastGlobal), sketchNorms[i], lastGlobalNorm) >= o.historyCopyCosine) why[i] = 'replays the global update';
      const dots = dotsWith(remembered, sketches[i]);
      for (let r = 0; r < remembered.length; r++) {
        if (rememberedIds[r] !== ups[i].clientId && cosineOf(dots[r], sketchNorms[i], rememberedNorms[r]) >= o.historyCopyCosine) why[i] = `replays ${rememberedIds[r]}`;
      }
    }
    const pool = ups.map((_, i) => i).filter((i) => !why[i]);

    // 2-3. agreement with the reference, as a z-score
    const inPool = ups.map((_, i) => !why[i]);
    let total = 0;
    const row = new Float64Array(n);
    for (const i of pool) for (const j of pool) row[i] += cos[i * n + j];
    for (const i of pool) total += row[i];
    const m = o.reference !== 'consensus' && state.momentum && state.momentum.length === dim ? state.momentum : null;
    const mNorm = m ? Math.sqrt(dot(m, m)) : 0;
    // Leave-one-out consensus R_i = Σ_{j≠i} Δ_j/|Δ_j| over the pool: cos(Δ_i, R_i) from the cosines.
    const consensus = ups.map((_, i) => {
      let num = 0;
      for (const j of pool) if (j !== i) num += cos[i * n + j];
      const sq = inPool[i] ? total - 2 * row[i] + 1 : total;
      return sq > 0 ? Math.min(1, Math.max(-1, num / Math.sqrt(sq))) : 0;
    });
    type Agreement = { a: number; z: number; by: 'history' | 'momentum' | 'consensus' | 'no related peer' | 'no peer' };
    const history: (Agreement | null)[] = ups.map((u, i) => {
      const own = o.reference === 'history' ? state.references.get(u.clientId) : undefined;
      if (!own) return null;
      const a = cosineOf(dot(sketches[i], own), sketchNorms[i], norm(own));
      return Math.abs(a) >= o.historyMin ? { a, z: a * Math.sqrt(o.sketchSize), by: 'history' } : null;
    });
    // Who judges a client without an informative history: the momentum, or its peers? The peers
    // (the signed consensus below) when at least anchoredShare of the pool have an informative
    // history, whose verdicts anchor the peers' signs: under label skew (every client's past is
    // informative, 0.8-0.99) an honest update is as often against the momentum as along it, and
    // the momentum let a client without history in on a coin flip (offline, 20 clients: 2 of 4
    // such attackers in, each then kept its flipped update as its history). Late in IID training
    // the clients' pasts are noise (|cos| < historyMin) and the peers' pairwise cosines too, and
    // the momentum judges. ('mean', the rule before: the momentum judged whenever it existed,
    // and excluded nobody unless at least sharedReliability of the clients their history vouches
    // for agreed with the leave-one-out mean consensus.)
    let sharedReliable: boolean;
    if (o.consensus === 'mean') {
      const vouched = pool.filter((i) => history[i] !== null && history[i]!.a > 0);
      sharedReliable = vouched.length === 0 || vouched.filter((i) => consensus[i] > 0).length >= o.sharedReliability * vouched.length;
    } else {
      sharedReliable = pool.filter((i) => history[i] !== null).length < o.anchoredShare * pool.length;
    }
    const useMomentum = m !== null && mNorm > 0 && (sharedReliable || o.consensus === 'mean');
    // Without a (reliable) momentum a client without an informative history is judged by its
    // peers: the signed consensus, anchored where a client's own history already said which way
    // it points (+1 with its past, −1 against it), so that only the unanchored signs are voted on.
    let peers: number[] = consensus;
    if (o.consensus === 'signed' && !useMomentum && pool.some((i) => history[i] === null)) {
      const anchors = new Map<number, number>();
      for (const i of pool) if (history[i]) anchors.set(i, history[i]!.a > 0 ? 1 : -1);
      peers = signedConsensus(cos, n, pool, o.consensusIterations, anchors, o.relatedMin);
    }
    // dot(Δ_i, m) for the clients the momentum judges, several per pass (dotsWith)
    const judgedByMomentum = useMomentum ? ups.map((_, i) => i).filter((i) => !history[i]) : [];
    const momentumDots = new Float64Array(n);
    dotsWith(
      judgedByMomentum.map((i) => vs[i]),
      m ?? new Float64Array(0),
    ).forEach((d, at) => (momentumDots[judgedByMomentum[at]] = d));
    const agreement: Agreement[] = ups.map((_, i) => {
      if (history[i]) return history[i]!;
      if (useMomentum) {
        const a = norms[i] === 0 ? 0 : Math.min(1, Math.max(-1, momentumDots[i] / (norms[i] * mNorm)));
        return { a, z: a * Math.sqrt(dim), by: 'momentum' };
      }
      // A client related to none of its peers (|cos| < relatedMin with each: under two-shard skew
      // at 10 clients, the one holding both shards of a digit) gets its peers' vote from pairs
      // that share no label, weakly negative among honest clients whatever it sends: that vote
      // labelled the same honest client low in every aggregation, so it never gained a history.
      // Its peers cannot say which way it points; it is high unless its agreement with them is at
      // chance level (noise is related to nobody either, but an honest update's weak relations are
      // far from chance: z −12 … −44), unpaid this time (agreement unknown: 0), and from the next
      // aggregation on its own history judges it.
      if (o.consensus === 'signed' && inPool[i] && pool.length > 1 && pool.every((j) => j === i || Math.abs(cos[i * n + j]) < o.relatedMin)) return { a: 0, z: peers[i] * Math.sqrt(dim), by: 'no related peer' };
      // The only update of the pool with no history and no momentum to judge it (a network of one
      // client, or a split network of one miner, whose body update is the aggregation's only one):
      // nothing can judge it, and the chance test would label it low for ever (nothing builds a
      // history or a momentum while every update is low; the global model never moved). High and
      // unpaid, as a client related to no peer; its own history judges it from the next one on.
      if (inPool[i] && pool.length === 1) return { a: 0, z: 0, by: 'no peer' };
      return { a: peers[i], z: peers[i] * Math.sqrt(dim), by: 'consensus' };
    });
    const z = agreement.map((x) => x.z);

    // 4. DBSCAN over the z-scores of the pool and the null point 0 (last)
    const k = pool.length + 1;
    const pts = [...pool.map((i) => z[i]), 0];
    const dist = new Float64Array(k * k);
    for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) dist[a * k + b] = Math.abs(pts[a] - pts[b]);
    const { labels } = dbscan(dist, k, o.zEps, 1);
    const nullLabel = labels[k - 1];
    const high = ups.map(() => false);
    pool.forEach((i, a) => {
      if (agreement[i].by === 'no peer') high[i] = true;
      else if (labels[a] === nullLabel) why[i] = 'agreement at chance level';
      else if (z[i] < 0 && agreement[i].by !== 'no related peer' && (agreement[i].by !== 'momentum' || sharedReliable)) why[i] = { history: 'against its own past updates', momentum: 'against the descent direction', consensus: 'against its peers', 'no related peer': '', 'no peer': '' }[agreement[i].by];
      else high[i] = true;
    });

    // 5-6. weights and rewards
    const claimCap = o.maxClaimRatio === null || !high.some(Boolean) ? Infinity : o.maxClaimRatio * median(ups.filter((_, i) => high[i]).map((u) => u.sampleCount));
    const samples = ups.map((u) => Math.min(u.sampleCount, claimCap) * stalenessWeight(u.staleness, o.stalenessExponent));
    const contribution = ups.map((_, i) => samples[i] * Math.max(0, agreement[i].a));
    const w = normalise(o.weighting === 'samples' ? samples : contribution, high);
    const g = weightedSum(vs, w);
    // CGSV (Xu et al., NeurIPS 2021): what a client is paid for is the part of its update that
    // went into the common step, cos(Δ_i, g); agreement with its own reference alone cannot see
    // that (a client repeating a narrow label set agrees with its past best of all).
    const gNorm = Math.sqrt(dot(g, g));
    const gDots = o.reward === 'agreement' || gNorm === 0 ? null : dotsWith(vs, g);
    const aligned = ups.map((_, i) => (gDots === null || norms[i] === 0 ? 1 : Math.max(0, gDots[i] / (norms[i] * gNorm))));
    const pay = normalise(contribution.map((c, i) => c * aligned[i]), high);

    // 7. the next state: references of high updates, the sketch of g
    const references = new Map(state.references);
    ups.forEach((u, i) => {
      if (high[i]) references.set(u.clientId, sketches[i]);
    });
    const sorted = new Map([...references].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const lows = why.filter(Boolean).length;
    return {
      result: {
        model: applyUpdate(input.previous, g),
        entries: ups.map((u, i) => ({ clientId: u.clientId, updateDigest: u.digest, high: high[i], weight: w[i] })),
        rewards: rewardsFor(
          ups.map((u, i) => ({ clientId: u.clientId, weight: pay[i], rewarded: high[i] && agreement[i].by !== 'no peer' })),
          input.baseReward,
        ),
        diagnostics: {
          similarity: agreement.map((x) => x.a),
          lengthRatio: norms.map((x) => x / medianNorm),
          eps: o.zEps,
          ...(sharedReliable ? {} : { sharedReference: 'unreliable: clients vouched for by their history disagree with it' }),
          reasons: why,
          references: agreement.map((x) => x.by),
          note: lows ? `${lows} low: ${[...new Set(why.filter(Boolean))].join(', ')}` : undefined,
        },
      },
      state: { momentum: m ? m.map((x, k) => o.momentum * x + g[k]) : g, references: sorted, lastGlobal: sketch(g, o.sketchSize) },
    };
  }
}

/**
 * The signed leave-one-out consensus: agreement of Δ_i with R_i = Σ_{j≠i} s_j·|c_ij|·Δ_j/|Δ_j|
 * over the pool, c the cosines. Under label skew the plain leave-one-out mean is a coin flip: a
 * client's update is related to the few peers that share its labels (cos 0.3-1) and weakly
 * against the many that do not (about −0.1), so the many decide, and a sign flip of it is just as
 * close to them. Weighting each peer by |c_ij| lets the related peers decide, and a peer's vote
 * counts with the sign the vote itself gave it (s_j, starting from +1 = every peer honest), so a
 * flipped peer among the related ones counts for, not against, the client: the signs are found
 * by single flips of the most frustrated client (Z2 synchronisation on the signed similarity
 * graph, at most iterations × pool size flips; the gauge is fixed by starting from +1, i.e. by
 * the honest majority). Pairs sharing no label (|c| < unrelatedBelow) vote reversed, which ties
 * the groups of related clients together, so a group whose majority is flipped is outvoted by
 * the rest (10 clients two-shard: 3 flipped, two of them in one group of 3). Measured on real
 * two-shard updates of 50 clients with 30 % of them flipped: first aggregation 0 of 50 wrong,
 * where the plain mean got 7 wrong; 10 clients: 0 of 10, the synchronous vote 4 (docs/experiments.md).
 * Deterministic: pool order, float64, bounded flip count.
 */
export function signedConsensus(cos: Float64Array, n: number, pool: number[], iterations: number, anchors: ReadonlyMap<number, number> = new Map(), unrelatedBelow = 0): number[] {
  const s = new Float64Array(n);
  for (const j of pool) s[j] = anchors.get(j) ?? 1;
  // Pairs sharing no label (|c| < unrelatedBelow) sit near a common value b when both are honest
  // or both flipped (two-shard skew: −0.03 … −0.2, each update raises its classes and lowers the
  // rest), near −b when one is flipped: where b < 0 their vote counts reversed. b is the median
  // over such pairs (most pairs are of one kind under an honest majority: 0.58 at 30 % flipped).
  const weak: number[] = [];
  for (const i of pool) for (const j of pool) if (i < j && Math.abs(cos[i * n + j]) < unrelatedBelow) weak.push(cos[i * n + j]);
  const reverse = weak.length > 0 && median(weak) < 0;
  const weight = (c: number) => Math.abs(c) * (reverse && Math.abs(c) < unrelatedBelow ? -c : c);
  // One flip at a time, the most frustrated unanchored client first (ties: pool order): each flip
  // lowers −Σ s_i·s_j·w_ij (w symmetric), so this ends; all clients at once (the rule before)
  // oscillated where a flipped client was the hub of its group.
  for (let t = 0; t < iterations * pool.length; t++) {
    let worst = -1;
    let worstV = 0;
    for (const i of pool) {
      if (anchors.has(i)) continue;
      let v = 0;
      for (const j of pool) if (j !== i) v += s[j] * weight(cos[i * n + j]);
      if (v * s[i] < worstV) {
        worstV = v * s[i];
        worst = i;
      }
    }
    if (worst < 0) break;
    s[worst] = -s[worst];
  }
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let num = 0;
    let sq = 0;
    for (const j of pool) {
      if (j === i) continue;
      const wj = s[j] * Math.abs(cos[i * n + j]);
      num += wj * cos[i * n + j];
      for (const k of pool) if (k !== i) sq += wj * s[k] * Math.abs(cos[i * n + k]) * cos[j * n + k];
    }
    out.push(sq > 0 ? Math.min(1, Math.max(-1, num / Math.sqrt(sq))) : 0);
  }
  return out;
}

/** The state as bytes (canonical: clients sorted): u32 momentum length (0: none) and the momentum
 * (float64 LE), u32 count, then per client u16 id length, id (UTF-8), sketch (float64 LE); then
 * u8 has-global and the global sketch. */
export function encodeAgreementState(s: AgreementState): Uint8Array {
  const enc = new TextEncoder();
  const ids = [...s.references.keys()].sort();
  const parts: Uint8Array[] = [];
  const u32 = (x: number) => {
    const h = new DataView(new ArrayBuffer(4));
    h.setUint32(0, x, true);
    return new Uint8Array(h.buffer);
  };
  const f64 = (v: Float64Array) => {
    const b = new DataView(new ArrayBuffer(v.length * 8));
    v.forEach((x, k) => b.setFloat64(k * 8, x, true));
    return new Uint8Array(b.buffer);
  };
  parts.push(u32(s.momentum?.length ?? 0));
  if (s.momentum) parts.push(f64(s.momentum));
  parts.push(u32(ids.length));
  for (const id of ids) {
    const idb = enc.encode(id);
    const l = new DataView(new ArrayBuffer(2));
    l.setUint16(0, idb.length, true);
    parts.push(new Uint8Array(l.buffer), idb, f64(s.references.get(id)!));
  }
  parts.push(Uint8Array.of(s.lastGlobal ? 1 : 0));
  if (s.lastGlobal) parts.push(f64(s.lastGlobal));
  const out = new Uint8Array(parts.reduce((t, p) => t + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function decodeAgreementState(b: Uint8Array, size: number): AgreementState {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dec = new TextDecoder();
  let at = 0;
  const need = (k: number) => {
    // a BflError like every other decoder's: a damaged stored state must give a code, not a RangeError
    if (at + k > b.length) throw new BflError(ErrorCode.MALFORMED, 'agreement state: truncated');
  };
  const f64 = (len: number) => {
    need(len * 8);
    const v = new Float64Array(len);
    for (let k = 0; k < len; k++) v[k] = dv.getFloat64(at + k * 8, true);
    at += len * 8;
    return v;
  };
  const u32 = () => {
    need(4);
    at += 4;
    return dv.getUint32(at - 4, true);
  };
  const mLen = u32();
  const momentum = mLen ? f64(mLen) : null;
  const count = u32();
  const references = new Map<string, Float64Array>();
  for (let i = 0; i < count; i++) {
    need(2);
    const l = dv.getUint16(at, true);
    at += 2;
    need(l);
    const id = dec.decode(b.subarray(at, at + l));
    at += l;
    references.set(id, f64(size));
  }
  need(1);
  const has = b[at++];
  const lastGlobal = has ? f64(size) : null;
  if (at !== b.length) throw new BflError(ErrorCode.MALFORMED, 'agreement state: trailing bytes');
  return { momentum, references, lastGlobal };
}

function median(xs: number[]): number {
  const d = [...xs].sort((a, b) => a - b);
  const n = d.length;
  return n % 2 ? d[(n - 1) / 2] : (d[n / 2 - 1] + d[n / 2]) / 2;
}
