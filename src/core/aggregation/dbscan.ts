/**
 * DBSCAN (Ester et al. 1996) with scikit-learn's semantics, so that its labels are the
 * reference (test/vectors/dbscan-sklearn.json):
 * - neighbourhoods are closed balls: dist <= eps, and include the point itself;
 * - a point is core when its neighbourhood has at least minPts points;
 * - clusters are numbered 0, 1, ... in the order of their lowest-index core point, and each
 *   is expanded completely before the next starts, so a border point reachable from several
 *   clusters joins the one with the lowest-index core point; -1 is noise.
 */

export interface DbscanResult {
  labels: Int32Array;
  core: Uint8Array;
  clusters: number;
}

/** `dist`: n×n row-major distance matrix. */
export function dbscan(dist: Float64Array, n: number, eps: number, minPts: number): DbscanResult {
  const neighbours: number[][] = [];
  const core = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const nb: number[] = [];
    for (let j = 0; j < n; j++) if (dist[i * n + j] <= eps) nb.push(j);
    neighbours.push(nb);
    core[i] = nb.length >= minPts ? 1 : 0;
  }
  const labels = new Int32Array(n).fill(-1);
  let label = 0;
  const stack: number[] = [];
  // The loop of scikit-learn's dbscan_inner (a depth-first expansion with an explicit stack).
  for (let start = 0; start < n; start++) {
    if (labels[start] !== -1 || !core[start]) continue;
    let i = start;
    for (;;) {
      if (labels[i] === -1) {
        labels[i] = label;
        if (core[i]) for (const v of neighbours[i]) if (labels[v] === -1) stack.push(v);
      }
      if (stack.length === 0) break;
      i = stack.pop()!;
    }
    label++;
  }
  return { labels, core, clusters: label };
}
