/**
 * Splitting a training set across clients, seeded:
 * - iid: a random permutation dealt out in equal parts;
 * - shards: sorted by label, cut into clients × shardsPerClient equal shards, each client gets
 *   shardsPerClient random shards (McMahan et al. 2017: two shards of one or two labels each);
 * - dirichlet: for each class, the shares of the clients are drawn from Dir(α) (Hsu et al.
 *   2019); small α is very skewed, large α tends to iid.
 */
import { Rng } from '../core/random.ts';

export type Partition = { kind: 'iid' } | { kind: 'shards'; shardsPerClient?: number } | { kind: 'dirichlet'; alpha: number };

export function partition(labels: Uint8Array, clients: number, p: Partition, seed: number): number[][] {
  if (!(clients >= 1)) throw new RangeError('need at least one client');
  const rng = new Rng(seed);
  const n = labels.length;
  const out: number[][] = Array.from({ length: clients }, () => []);
  if (p.kind === 'iid') {
    const perm = rng.shuffle(Array.from({ length: n }, (_, i) => i));
    perm.forEach((idx, i) => out[i % clients].push(idx));
  } else if (p.kind === 'shards') {
    const per = p.shardsPerClient ?? 2;
    const sorted = Array.from({ length: n }, (_, i) => i).sort((a, b) => labels[a] - labels[b] || a - b);
    const shards = clients * per;
    const size = Math.floor(n / shards);
    const order = rng.shuffle(Array.from({ length: shards }, (_, i) => i));
    for (let c = 0; c < clients; c++) {
      for (let s = 0; s < per; s++) {
        const shard = order[c * per + s];
        out[c].push(...sorted.slice(shard * size, (shard + 1) * size));
      }
    }
  } else {
    if (!(p.alpha > 0)) throw new RangeError('dirichlet alpha must be > 0');
    const classes = Math.max(...labels) + 1;
    for (let c = 0; c < classes; c++) {
      const idx = rng.shuffle(Array.from({ length: n }, (_, i) => i).filter((i) => labels[i] === c));
      const g = Array.from({ length: clients }, () => rng.gamma(p.alpha));
      const total = g.reduce((a, b) => a + b, 0);
      let start = 0;
      let cum = 0;
      for (let k = 0; k < clients; k++) {
        cum += g[k] / total;
        const end = k === clients - 1 ? idx.length : Math.round(cum * idx.length);
        out[k].push(...idx.slice(start, end));
        start = end;
      }
    }
    for (const o of out) rng.shuffle(o);
  }
  return out;
}

/** Per-client label histograms (reports and tests). */
export function labelCounts(labels: Uint8Array, parts: number[][], classes = 10): number[][] {
  return parts.map((idx) => {
    const h = new Array(classes).fill(0);
    for (const i of idx) h[labels[i]]++;
    return h;
  });
}

/**
 * The experiments' `--partition`: iid, shards[:K] (K label shards per client, default 2, the
 * paper's non-IID), dirichlet:α, or noniid (= shards:2, the older name).
 */
export function parsePartition(s: string): Partition {
  const [kind, arg] = s.split(':');
  if (kind === 'iid' && arg === undefined) return { kind: 'iid' };
  if (kind === 'noniid' && arg === undefined) return { kind: 'shards', shardsPerClient: 2 };
  if (kind === 'shards') {
    const k = arg === undefined ? 2 : Number(arg);
    if (Number.isInteger(k) && k >= 1) return { kind: 'shards', shardsPerClient: k };
  }
  if (kind === 'dirichlet' && arg !== undefined) {
    const alpha = Number(arg);
    if (alpha > 0 && Number.isFinite(alpha)) return { kind: 'dirichlet', alpha };
  }
  throw new RangeError(`partition "${s}": use iid, shards[:K] (K >= 1 label shards per client), dirichlet:α (α > 0) or noniid (= shards:2)`);
}

/** The short name of a partition (file names, reports): iid, shards2, dirichlet0.5. */
export function formatPartition(p: Partition): string {
  return p.kind === 'iid' ? 'iid' : p.kind === 'shards' ? `shards${p.shardsPerClient ?? 2}` : `dirichlet${p.alpha}`;
}
