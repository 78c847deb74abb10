/**
 * Differential-privacy accounting for split learning's head shares (the DT paper's eq. 4,
 * ../shared/papers/dt-cloud-edge-client-learning.txt section III, Stage II-B): a client that
 * shares sends its head update clipped to L2 norm C plus N(0, (z·C)²) per coordinate, the
 * Gaussian mechanism. No npm package implements an accountant (none in the registry's lists);
 * this is the standard Rényi-DP one, small enough to check by hand (test/unit/split-privacy.test.ts):
 *
 * - Rényi DP of the Gaussian mechanism (Mironov 2017, "Rényi Differential Privacy", Prop. 7):
 *   f(D) + N(0, s²I) with ‖f(D) − f(D')‖₂ ≤ Δ is (α, α·Δ²/(2s²))-RDP for every order α > 1.
 * - Composition (ibid., Prop. 1): T adaptively chosen releases are (α, T·α·Δ²/(2s²))-RDP.
 * - Conversion to (ε, δ) (Canonne, Kamath & Steinke 2020, Prop. 12; Balle et al. 2020, Thm. 21):
 *   ε = min over α of  rdp(α) + log((α − 1)/α) − (log δ + log α)/(α − 1),
 *   the conversion Opacus and TensorFlow Privacy use, over their grid of orders (below).
 *
 * Pure and deterministic (plain float64 arithmetic).
 */

/** TensorFlow Privacy's and Opacus's default orders (1.1 … 10.9 by 0.1, 12 … 63), with a few
 * large ones added so a small ε (large noise, where the best order is large) is not overstated. */
export const RDP_ORDERS: readonly number[] = [...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10), ...Array.from({ length: 52 }, (_, i) => 12 + i), 128, 256, 512, 1024];

/** RDP ε(α) of T releases of the Gaussian mechanism with L2 sensitivity Δ and noise std s. */
export function gaussianRdp(alpha: number, o: { sensitivity: number; sigma: number; releases: number }): number {
  if (o.releases === 0) return 0;
  if (o.sigma === 0) return Infinity;
  return (o.releases * alpha * o.sensitivity * o.sensitivity) / (2 * o.sigma * o.sigma);
}

/** (ε, δ) from an RDP curve: the smallest ε over the orders, and the order that gives it. */
export function rdpToDp(rdp: (alpha: number) => number, delta: number, orders: readonly number[] = RDP_ORDERS): { epsilon: number; order: number } {
  if (!(delta > 0 && delta < 1)) throw new RangeError(`δ must be in (0, 1), got ${delta}`);
  let best = { epsilon: Infinity, order: orders[0] };
  for (const a of orders) {
    if (!(a > 1)) throw new RangeError(`RDP orders must be above 1, got ${a}`);
    const e = rdp(a) + Math.log((a - 1) / a) - (Math.log(delta) + Math.log(a)) / (a - 1);
    if (e < best.epsilon) best = { epsilon: e, order: a };
  }
  // the conversion can dip below 0 at tiny RDP values; ε is non-negative
  return { epsilon: Math.max(0, best.epsilon), order: best.order };
}

export interface HeadShareAccount {
  /** ε of the whole run at `delta` (Infinity without noise or without a clipping bound). */
  epsilon: number;
  delta: number;
  /** Head shares one client released (the composed Gaussian mechanisms). */
  releases: number;
  /** L2 sensitivity of one release: 2C (see headShareAccount). */
  sensitivity: number;
  /** Noise std per coordinate, z·C. */
  sigma: number;
  /** The RDP order that gave ε (null when ε is 0 or infinite). */
  order: number | null;
}

/**
 * (ε, δ) of one client's head shares over a run: `releases` shares, each its head update
 * clipped to L2 norm `clip` (C) with N(0, (noise·C)²) added per coordinate.
 *
 * Sensitivity Δ = 2C: the miner sees each client's share on its own (no secure aggregation),
 * so the guarantee is for one client's release, and changing that client's data (any one
 * sample, or all of it) can move its clipped update anywhere in the C-ball, at most 2C. The
 * privacy unit is therefore the client's whole local dataset (user-level; it covers any one
 * sample too). No amplification by sampling is claimed (the client's head depends on all its
 * data). The global head the client starts from is a function of earlier releases (counted) and
 * of other clients' data: post-processing. What this does NOT cover: the smashed data and
 * labels a client sends its miner in every batch (split learning's Stage I), which are not
 * noised at all (the inversion experiment measures that leak).
 */
export function headShareAccount(o: { clip: number; noise: number; releases: number; delta: number }): HeadShareAccount {
  const sensitivity = 2 * o.clip;
  const sigma = o.noise * o.clip;
  const base = { delta: o.delta, releases: o.releases, sensitivity, sigma };
  if (o.releases === 0) return { ...base, epsilon: 0, order: null };
  if (!(sigma > 0) || !Number.isFinite(o.clip)) return { ...base, epsilon: Infinity, order: null };
  const { epsilon, order } = rdpToDp((a) => gaussianRdp(a, { sensitivity, sigma, releases: o.releases }), o.delta);
  return { ...base, epsilon, order: epsilon > 0 && Number.isFinite(epsilon) ? order : null };
}
