// Two V8 heap snapshots compared by class (issue 13, the soak's diagnostics; docs/decisions.md
// "A miner's memory: what bounds it"): per constructor name (objects) or kind (strings, code,
// arrays, system objects), the count, the self size and the retained size in each, sorted by the
// change of self size; then the largest retainers of the second snapshot.
//   npx node --max-old-space-size=8192 scripts/heapsnapshot-diff.ts A.heapsnapshot B.heapsnapshot [--top 40] [--json out.json]
// Retained sizes are the dominator tree's, as DevTools computes them: weak edges ignored, a class's
// retained size the sum over its instances not dominated by another instance of it (so nested
// instances are not counted twice). Dominators by Cooper, Harvey and Kennedy's iterative
// algorithm ("A Simple, Fast Dominance Algorithm", 2001) over a depth-first postorder from the
// snapshot's root; nodes not reachable without weak edges retain nothing and are reported apart.
// Hand-written: the snapshot's JSON is read once into typed arrays, and the npm parsers of it
// (heapsnapshot-parser and the like) build an object per node, several GB for a miner's ~1 M nodes.
import { readFileSync, writeFileSync } from 'node:fs';

export interface ClassStats {
  count: number;
  self: number;
  retained: number;
}

export interface SnapshotSummary {
  nodes: number;
  selfTotal: number;
  unreachableSelf: number;
  classes: Map<string, ClassStats>;
}

interface RawSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** The class a node is counted under: an object's constructor name, or its kind. */
function classOf(type: string, name: string): string {
  switch (type) {
    case 'object':
    case 'native':
      return name;
    case 'closure':
      return '(closure)';
    case 'string':
    case 'concatenated string':
    case 'sliced string':
      return '(string)';
    case 'code':
      return '(code)';
    case 'array':
    case 'hidden':
    case 'object shape':
      // the names of these are few and say what they hold: "(object elements)", "system / Context"
      return `(${type}) ${name.length > 48 ? `${name.slice(0, 48)}…` : name}`;
    default:
      return `(${type})`;
  }
}

export function summarize(raw: RawSnapshot): SnapshotSummary {
  const { meta } = raw.snapshot;
  const NF = meta.node_fields.length;
  const EF = meta.edge_fields.length;
  const fType = meta.node_fields.indexOf('type');
  const fName = meta.node_fields.indexOf('name');
  const fSelf = meta.node_fields.indexOf('self_size');
  const fEdges = meta.node_fields.indexOf('edge_count');
  const eType = meta.edge_fields.indexOf('type');
  const eTo = meta.edge_fields.indexOf('to_node');
  const nodeTypes = meta.node_types[0];
  const weak = meta.edge_types[0].indexOf('weak');
  const nodes = raw.nodes;
  const edges = raw.edges;
  const n = nodes.length / NF;

  // classes as small integers
  const classIds = new Map<string, number>();
  const classNames: string[] = [];
  const cls = new Int32Array(n);
  const self = new Float64Array(n);
  const firstEdge = new Int32Array(n + 1);
  for (let i = 0, e = 0; i < n; i++) {
    const name = classOf(nodeTypes[nodes[i * NF + fType]], raw.strings[nodes[i * NF + fName]]);
    let id = classIds.get(name);
    if (id === undefined) {
      id = classNames.length;
      classIds.set(name, id);
      classNames.push(name);
    }
    cls[i] = id;
    self[i] = nodes[i * NF + fSelf];
    firstEdge[i] = e;
    e += nodes[i * NF + fEdges];
    firstEdge[i + 1] = e;
  }
  const target = (e: number) => edges[e * EF + eTo] / NF;
  const strong = (e: number) => edges[e * EF + eType] !== weak;

  // depth-first postorder from the root (node 0), strong edges only
  const post = new Int32Array(n).fill(-1); // node -> postorder number
  const order = new Int32Array(n); // postorder number -> node
  let reached = 0;
  {
    const stack = new Int32Array(n);
    const next = new Int32Array(n); // the next edge to follow, per node on the stack
    const seen = new Uint8Array(n);
    let sp = 0;
    stack[sp++] = 0;
    seen[0] = 1;
    next[0] = firstEdge[0];
    while (sp > 0) {
      const v = stack[sp - 1];
      let pushed = false;
      while (next[v] < firstEdge[v + 1]) {
        const e = next[v]++;
        if (!strong(e)) continue;
        const w = target(e);
        if (seen[w]) continue;
        seen[w] = 1;
        next[w] = firstEdge[w];
        stack[sp++] = w;
        pushed = true;
        break;
      }
      if (!pushed) {
        sp--;
        post[v] = reached;
        order[reached++] = v;
      }
    }
  }

  // predecessors (strong edges between reached nodes), by postorder number
  const predCount = new Int32Array(reached + 1);
  for (let v = 0; v < n; v++) {
    if (post[v] < 0) continue;
    for (let e = firstEdge[v]; e < firstEdge[v + 1]; e++) if (strong(e) && post[target(e)] >= 0) predCount[post[target(e)] + 1]++;
  }
  for (let i = 0; i < reached; i++) predCount[i + 1] += predCount[i];
  const preds = new Int32Array(predCount[reached]);
  const fill = predCount.slice(0, reached);
  for (let v = 0; v < n; v++) {
    if (post[v] < 0) continue;
    for (let e = firstEdge[v]; e < firstEdge[v + 1]; e++) if (strong(e) && post[target(e)] >= 0) preds[fill[post[target(e)]]++] = post[v];
  }

  // immediate dominators, in postorder numbers (the root is the last, reached - 1)
  const root = reached - 1;
  const idom = new Int32Array(reached).fill(-1);
  idom[root] = root;
  for (let changed = true; changed; ) {
    changed = false;
    for (let b = root - 1; b >= 0; b--) {
      let d = -1;
      for (let k = predCount[b]; k < predCount[b + 1]; k++) {
        const p = preds[k];
        if (idom[p] < 0) continue;
        if (d < 0) {
          d = p;
          continue;
        }
        let x = p;
        let y = d;
        while (x !== y) {
          while (x < y) x = idom[x];
          while (y < x) y = idom[y];
        }
        d = x;
      }
      if (d >= 0 && idom[b] !== d) {
        idom[b] = d;
        changed = true;
      }
    }
  }

  // retained sizes: a node's dominated nodes come before it in postorder
  const retained = new Float64Array(reached);
  for (let b = 0; b < reached; b++) retained[b] += self[order[b]];
  for (let b = 0; b < root; b++) retained[idom[b]] += retained[b];

  // per class: instances not dominated by another instance of their class (a preorder walk of
  // the dominator tree with a count of each class on the path)
  const childStart = new Int32Array(reached + 1);
  for (let b = 0; b < root; b++) childStart[idom[b] + 1]++;
  for (let i = 0; i < reached; i++) childStart[i + 1] += childStart[i];
  const children = new Int32Array(Math.max(0, reached - 1));
  const cfill = childStart.slice(0, reached);
  for (let b = 0; b < root; b++) children[cfill[idom[b]]++] = b;
  const onPath = new Int32Array(classNames.length);
  const classRetained = new Float64Array(classNames.length);
  {
    const stack = new Int32Array(reached);
    const next = new Int32Array(reached);
    let sp = 0;
    stack[sp++] = root;
    next[root] = childStart[root];
    if (onPath[cls[order[root]]]++ === 0) classRetained[cls[order[root]]] += retained[root];
    while (sp > 0) {
      const b = stack[sp - 1];
      if (next[b] < childStart[b + 1]) {
        const c = children[next[b]++];
        if (onPath[cls[order[c]]]++ === 0) classRetained[cls[order[c]]] += retained[c];
        next[c] = childStart[c];
        stack[sp++] = c;
      } else {
        sp--;
        onPath[cls[order[b]]]--;
      }
    }
  }

  const classes = new Map<string, ClassStats>();
  let selfTotal = 0;
  let unreachableSelf = 0;
  for (let i = 0; i < n; i++) {
    const name = classNames[cls[i]];
    const s = classes.get(name) ?? { count: 0, self: 0, retained: 0 };
    s.count++;
    s.self += self[i];
    classes.set(name, s);
    selfTotal += self[i];
    if (post[i] < 0) unreachableSelf += self[i];
  }
  classNames.forEach((name, id) => (classes.get(name)!.retained = classRetained[id]));
  return { nodes: n, selfTotal, unreachableSelf, classes };
}

export function readSnapshot(path: string): SnapshotSummary {
  return summarize(JSON.parse(readFileSync(path, 'utf8')) as RawSnapshot);
}

/** Per class, A and B side by side, sorted by the change of self size (largest first). */
export function diff(a: SnapshotSummary, b: SnapshotSummary) {
  const zero: ClassStats = { count: 0, self: 0, retained: 0 };
  return [...new Set([...a.classes.keys(), ...b.classes.keys()])]
    .map((name) => ({ name, a: a.classes.get(name) ?? zero, b: b.classes.get(name) ?? zero }))
    .sort((x, y) => Math.abs(y.b.self - y.a.self) - Math.abs(x.b.self - x.a.self));
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const opt = (k: string) => {
    const i = args.indexOf(k);
    return i >= 0 ? args.splice(i, 2)[1] : undefined;
  };
  const top = Number(opt('--top') ?? 40);
  const json = opt('--json');
  if (args.length !== 2) {
    console.error('usage: npx node --max-old-space-size=8192 scripts/heapsnapshot-diff.ts A.heapsnapshot B.heapsnapshot [--top 40] [--json out.json]');
    process.exit(2);
  }
  const [a, b] = args.map(readSnapshot);
  const mb = (x: number) => (x / 2 ** 20).toFixed(2).padStart(8);
  console.log(`nodes ${a.nodes} → ${b.nodes}; self ${mb(a.selfTotal)} → ${mb(b.selfTotal)} MB (unreachable ${mb(a.unreachableSelf)} → ${mb(b.unreachableSelf)})`);
  console.log(`${'class'.padEnd(50)}      count A→B     self A   self B    Δself    ret A    ret B   (MB)`);
  const rows = diff(a, b);
  for (const r of rows.slice(0, top)) console.log(`${r.name.slice(0, 50).padEnd(50)} ${`${r.a.count}→${r.b.count}`.padStart(16)} ${mb(r.a.self)} ${mb(r.b.self)} ${mb(r.b.self - r.a.self)} ${mb(r.a.retained)} ${mb(r.b.retained)}`);
  console.log('\nlargest retainers of B (classes):');
  for (const r of [...rows].sort((x, y) => y.b.retained - x.b.retained).slice(0, top)) console.log(`${r.name.slice(0, 50).padEnd(50)} ${`${r.a.count}→${r.b.count}`.padStart(16)} ret ${mb(r.a.retained)} → ${mb(r.b.retained)}`);
  if (json) writeFileSync(json, `${JSON.stringify({ a: { nodes: a.nodes, selfTotal: a.selfTotal, unreachableSelf: a.unreachableSelf }, b: { nodes: b.nodes, selfTotal: b.selfTotal, unreachableSelf: b.unreachableSelf }, classes: rows }, null, 1)}\n`);
}
