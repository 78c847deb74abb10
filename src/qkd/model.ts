/**
 * The QKD provisioning model of the paper (qkd-fel-resource-allocation, §III-B/C, §VI-A):
 * topologies with link lengths in km, secure model-transmission requests r = (s, d, ρ_r), the
 * per-link device counts of eqs. (1)-(6) with trusted relays every L km, Table II prices, and
 * the Poisson demand scenarios of eq. (46).
 */
import { readFile } from 'node:fs/promises';
import { BflError, ErrorCode } from '../core/errors.ts';
import { Rng } from '../core/random.ts';

export interface Link {
  a: string;
  b: string;
  km: number;
}

export interface Topology {
  name: string;
  provenance?: string;
  nodes: string[];
  links: Link[];
}

/** A secure model-transmission request between two nodes; its demand ρ comes per scenario. */
export interface Request {
  source: string;
  destination: string;
}

/** Unit prices of one resource class (Table II): transmitters, receivers, key managers,
 * security infrastructures, MUX/DEMUX pairs, and channel per km of one wavelength. */
export interface Prices {
  tx: number;
  rx: number;
  km: number;
  si: number;
  md: number;
  ch: number;
}

/** Table II (from Cao et al. [21]): reserved and on-demand unit costs. */
export const TABLE_II: { reserved: Prices; onDemand: Prices } = {
  reserved: { tx: 1500, rx: 2250, km: 1200, si: 150, md: 300, ch: 1 },
  onDemand: { tx: 6000, rx: 9000, km: 3000, si: 500, md: 900, ch: 4 },
};

/** §VI-A: the distance L between two quantum transmitters (a trusted relay every L km). */
export const RELAY_SPACING_KM = 160;

export function scalePrices(p: Prices, f: number): Prices {
  return { tx: p.tx * f, rx: p.rx * f, km: p.km * f, si: p.si * f, md: p.md * f, ch: p.ch * f };
}

/** Device counts per unit of demand on one link of length l (eqs. 1-5 for one request, one ρ). */
export function linkDevices(km: number, L = RELAY_SPACING_KM) {
  const n = Math.ceil(km / L);
  // ⌈l/L − 1⌉ is negative zero for l < L: no relay, hence no SI and no relay MUX/DEMUX.
  const relays = Math.max(0, Math.ceil(km / L - 1));
  return {
    tx: 2 * n, // eq. (1): two QTs per MDI-QKD segment, per unit of ρ
    rx: n, // eq. (2): one QR per segment
    km: Math.ceil(km / L + 1), // eq. (3): key managers at both ends and at every relay
    si: relays, // eq. (4)
    md: n + relays, // eq. (5): MUX/DEMUX pairs for QTs/QRs and for relays
  };
}

/** Cost of one QKD wavelength (F) and one KM wavelength (X) on a link, as in eq. (8): F/3 pays
 * the transmitters and receivers of one unit of ρ (3 wavelengths per QKD link, §III-C-5), X the
 * key managers, SIs and MUX/DEMUX; both pay their channel length l·β_Ch (eq. 6). */
export function wavelengthCosts(km: number, p: Prices, L = RELAY_SPACING_KM): { F: number; X: number } {
  const d = linkDevices(km, L);
  return {
    F: (d.tx * p.tx + d.rx * p.rx) / 3 + km * p.ch,
    X: d.km * p.km + d.si * p.si + d.md * p.md + km * p.ch,
  };
}

/**
 * Eq. (46): every request sees the same demand level ω ∈ {0, …, |Ω|−1}; ω is Poisson with mean
 * ⌊|Ω|/3⌋, truncated to the |Ω| levels and renormalised.
 */
export function poissonScenarios(count: number, mean = Math.floor(count / 3)): { level: number; probability: number }[] {
  if (!Number.isInteger(count) || count < 1) throw new RangeError('scenario count must be a positive integer');
  const pmf: number[] = [];
  let term = Math.exp(-mean);
  for (let k = 0; k < count; k++) {
    pmf.push(term);
    term *= mean / (k + 1);
  }
  const total = pmf.reduce((a, b) => a + b, 0);
  return pmf.map((p, level) => ({ level, probability: p / total }));
}

/** |R| requests between distinct nodes drawn uniformly (seeded). */
export function randomRequests(t: Topology, count: number, seed: number): Request[] {
  const rng = new Rng(seed);
  const out: Request[] = [];
  for (let i = 0; i < count; i++) {
    const s = rng.int(t.nodes.length);
    let d = rng.int(t.nodes.length - 1);
    if (d >= s) d++;
    out.push({ source: t.nodes[s], destination: t.nodes[d] });
  }
  return out;
}

/** Link ids are indexes into topology.links; a path is the list of its link ids. */
export type Path = number[];

/**
 * The k shortest loopless paths by km (Yen's algorithm over Dijkstra). Our SIP routes each
 * request on one of these candidates per scenario (see plan.ts).
 */
export function kShortestPaths(t: Topology, source: string, destination: string, k: number): Path[] {
  const idx = new Map(t.nodes.map((n, i) => [n, i]));
  const adj: { to: number; link: number }[][] = t.nodes.map(() => []);
  t.links.forEach((l, i) => {
    adj[idx.get(l.a)!].push({ to: idx.get(l.b)!, link: i });
    adj[idx.get(l.b)!].push({ to: idx.get(l.a)!, link: i });
  });
  const s = idx.get(source)!;
  const d = idx.get(destination)!;
  const lengthOf = (p: Path) => p.reduce((a, l) => a + t.links[l].km, 0);
  const nodesOf = (p: Path): number[] => {
    const ns = [s];
    for (const l of p) {
      const last = ns[ns.length - 1];
      const link = t.links[l];
      ns.push(idx.get(link.a)! === last ? idx.get(link.b)! : idx.get(link.a)!);
    }
    return ns;
  };
  const dijkstra = (from: number, bannedNodes: Set<number>, bannedLinks: Set<number>): Path | null => {
    const dist = new Array(t.nodes.length).fill(Infinity);
    const prev: ({ node: number; link: number } | null)[] = new Array(t.nodes.length).fill(null);
    const done = new Array(t.nodes.length).fill(false);
    dist[from] = 0;
    for (;;) {
      let u = -1;
      for (let i = 0; i < dist.length; i++) if (!done[i] && dist[i] < Infinity && (u < 0 || dist[i] < dist[u])) u = i;
      if (u < 0) return null;
      if (u === d) break;
      done[u] = true;
      for (const e of adj[u]) {
        if (bannedNodes.has(e.to) || bannedLinks.has(e.link)) continue;
        const nd = dist[u] + t.links[e.link].km;
        // ties broken by link id so the candidate set is deterministic
        if (nd < dist[e.to] || (nd === dist[e.to] && prev[e.to] && e.link < prev[e.to]!.link)) {
          dist[e.to] = nd;
          prev[e.to] = { node: u, link: e.link };
        }
      }
    }
    const p: Path = [];
    for (let v = d; v !== from; v = prev[v]!.node) p.unshift(prev[v]!.link);
    return p;
  };
  const first = dijkstra(s, new Set(), new Set());
  if (!first) return [];
  const A: Path[] = [first];
  const B: Path[] = [];
  const key = (p: Path) => p.join(',');
  while (A.length < k) {
    const last = A[A.length - 1];
    const lastNodes = nodesOf(last);
    for (let i = 0; i < last.length; i++) {
      const root = last.slice(0, i);
      const spur = lastNodes[i];
      const bannedLinks = new Set<number>();
      for (const p of A) if (key(p.slice(0, i)) === key(root) && p.length > i) bannedLinks.add(p[i]);
      const bannedNodes = new Set(lastNodes.slice(0, i));
      const tail = dijkstra(spur, bannedNodes, bannedLinks);
      if (!tail) continue;
      const cand = [...root, ...tail];
      if (!A.some((p) => key(p) === key(cand)) && !B.some((p) => key(p) === key(cand))) B.push(cand);
    }
    if (B.length === 0) break;
    B.sort((x, y) => lengthOf(x) - lengthOf(y) || key(x).localeCompare(key(y)));
    A.push(B.shift()!);
  }
  return A;
}

/** Checks a topology (built-in or a user's file) and says what is wrong. */
export function validateTopology(j: unknown, file: string): Topology {
  const bad = (why: string) => new BflError(ErrorCode.BAD_CONFIG, `topology ${file}: ${why} (expected {"nodes": ["A", ...], "links": [{"a": "A", "b": "B", "km": 120}, ...]})`);
  if (typeof j !== 'object' || j === null) throw bad('not a JSON object');
  const o = j as Record<string, unknown>;
  if (!Array.isArray(o.nodes) || o.nodes.length < 2 || o.nodes.some((n) => typeof n !== 'string' || n === '')) throw bad('"nodes" must list at least two node names');
  const nodes = o.nodes as string[];
  if (new Set(nodes).size !== nodes.length) throw bad('node names must be unique');
  if (!Array.isArray(o.links) || o.links.length === 0) throw bad('"links" must list at least one link');
  const names = new Set(nodes);
  const seen = new Set<string>();
  const links: Link[] = (o.links as unknown[]).map((l, i) => {
    const x = l as Record<string, unknown>;
    if (typeof x !== 'object' || x === null || typeof x.a !== 'string' || typeof x.b !== 'string') throw bad(`link ${i} needs "a" and "b" node names`);
    if (!names.has(x.a) || !names.has(x.b)) throw bad(`link ${i} joins an unknown node (${x.a}-${x.b})`);
    if (x.a === x.b) throw bad(`link ${i} is a loop at ${x.a}`);
    if (typeof x.km !== 'number' || !Number.isFinite(x.km) || x.km <= 0) throw bad(`link ${i} (${x.a}-${x.b}) needs a length "km" > 0`);
    const k = [x.a, x.b].sort().join('\u0000');
    if (seen.has(k)) throw bad(`link ${x.a}-${x.b} is listed twice`);
    seen.add(k);
    return { a: x.a, b: x.b, km: x.km };
  });
  const t: Topology = { name: typeof o.name === 'string' ? o.name : file, provenance: typeof o.provenance === 'string' ? o.provenance : undefined, nodes, links };
  // every request needs a path: the graph must be connected
  const reach = new Set([nodes[0]]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const l of links) {
      if (reach.has(l.a) !== reach.has(l.b)) {
        reach.add(l.a);
        reach.add(l.b);
        grew = true;
      }
    }
  }
  if (reach.size !== nodes.length) throw bad(`the links do not connect ${nodes.find((n) => !reach.has(n))} to ${nodes[0]}`);
  return t;
}

export const BUILTIN_TOPOLOGIES = ['nsfnet', 'usnet'] as const;

/** `nsfnet`, `usnet` (src/qkd/topologies/) or the path of a user's JSON file. */
export async function loadTopology(nameOrFile: string): Promise<Topology> {
  const builtin = (BUILTIN_TOPOLOGIES as readonly string[]).includes(nameOrFile);
  const file = builtin ? new URL(`./topologies/${nameOrFile}.json`, import.meta.url) : nameOrFile;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new BflError(ErrorCode.BAD_CONFIG, `cannot read topology ${nameOrFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (use nsfnet, usnet or a JSON file)`);
  }
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new BflError(ErrorCode.BAD_CONFIG, `topology ${nameOrFile} is not valid JSON: ${(e as Error).message}`);
  }
  return validateTopology(j, nameOrFile);
}
