/**
 * `bfl-node status`: one running node's status, read from its HTTP API, as a few readable lines
 * (or the /status JSON with --json).
 */
import { Command } from 'commander';
import { BflError, ErrorCode } from '../../core/errors.ts';
import { UsageError, parseIntFlag } from '../exit.ts';
import { print, printJson } from '../output.ts';

/** Docker's and the config's usual API port on this machine. */
const DEFAULT_API = 'http://127.0.0.1:8080';

/** `host:port` or a URL, as an http(s) base URL without a trailing slash. */
export function apiBase(s: string): string {
  const withScheme = /^[a-z]+:\/\//i.test(s) ? s : `http://${s}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new UsageError(`--api must be host:port or an http URL (like 127.0.0.1:8080), got "${s}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`--api must be an http or https URL, got "${s}"`);
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

async function get(base: string, path: string, timeoutMs: number): Promise<{ code: number; body: unknown }> {
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    const why = (e as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : ((e as { cause?: Error }).cause?.message ?? (e as Error).message);
    throw new BflError(ErrorCode.UNAVAILABLE, `cannot reach a node's API at ${base} (${why}); is the node running, and is --api (or BFL_API) its API address?`);
  }
  const text = await res.text();
  try {
    return { code: res.status, body: JSON.parse(text) };
  } catch {
    throw new BflError(ErrorCode.UNAVAILABLE, `${base}${path} answered HTTP ${res.status} with no JSON: is --api the address of a bfl-node API?`);
  }
}

type S = Record<string, any>;

const pct = (x: number | null | undefined) => (typeof x === 'number' ? `${(x * 100).toFixed(2)} %` : '-');
const rate = (r: number) => (r >= 1e6 ? `${(r / 1e6).toFixed(2)} MH/s` : r >= 1e3 ? `${(r / 1e3).toFixed(1)} kH/s` : `${r} H/s`);
const tokens = (units: string | null | undefined) => (units === null || units === undefined ? '-' : (Number(units) / 1e6).toFixed(2));
/** A count, or '-' where an older node's /status lacks it. */
const num = (x: unknown) => (typeof x === 'number' ? String(x) : '-');
const loss = (x: unknown) => (typeof x === 'number' ? x.toFixed(4) : '-');
/** ms since the epoch as a UTC time of day (the node's clock). */
const clock = (at: unknown) => (typeof at === 'number' ? `${new Date(at).toISOString().slice(11, 19)} UTC` : '-');

/** /status `split.lastError` (api/status.ts SplitError) as one line. */
function splitError(e: S | null | undefined, role: 'miner' | 'client'): string {
  if (!e) return 'none since the node started';
  const peer = e.peer ? (role === 'miner' ? ` from ${e.peer}` : e.what === 'round' ? ` with ${e.peer}` : ` to ${e.peer}`) : '';
  return `${e.what}${peer} at ${clock(e.at)}: ${e.code}: ${e.message}`;
}

/** The rows of a split miner (/status `split`, api/status.ts SplitMinerStatus). */
function splitMinerRows(s: S, sp: S): [string, string][] {
  const window = typeof sp.clientWindowMs === 'number' ? `${Math.round(sp.clientWindowMs / 1000)} s` : 'a while';
  const clients = Array.isArray(sp.clients) ? (sp.clients as string[]) : undefined;
  const shown = clients && (clients.length > 8 ? `${clients.slice(0, 8).join(', ')}, … (${clients.length - 8} more)` : clients.join(', '));
  const low = Array.isArray(s.flagged) && s.flagged.includes(s.id) ? '; labelled low in the newest aggregation' : '';
  const next = typeof sp.sinceUpdate === 'number' ? `; the next after ${sp.sinceUpdate} of ${num(sp.samplesPerUpdate)} samples` : '';
  return [
    ['split clients', !clients ? '-' : clients.length ? `${clients.length} trained with it in the last ${window}: ${shown}` : `none in the last ${window} (no client is training with this miner)`],
    ['split batches', `${num(sp.batches)} answered (${num(sp.samples)} samples, last loss ${loss(sp.lastLoss)}), ${num(sp.refused)} refused`],
    ['body updates', `${num(sp.bodyUpdates)} made, ${num(sp.bodyUpdatesRefused)} refused by its intake${next}${low}`],
    ['head shares', `${num(sp.headShares)} received (eq. 4), ${num(sp.headSharesRefused)} refused`],
    ['split error', splitError(sp.lastError, 'miner')],
  ];
}

/** The rows of a split client (/status `split`, api/status.ts SplitClientStatus). */
function splitClientRows(sp: S | undefined): [string, string][] {
  if (!sp) return [];
  const last = sp.rounds > 0 ? ` (the last with ${sp.miner} at ${clock(sp.lastRoundAt)}, loss ${loss(sp.lastLoss)})` : ' (no miner has answered a round yet)';
  return [
    ['split rounds', `${num(sp.rounds)} trained with a miner${last}, ${num(sp.failed)} failed`],
    ['split error', splitError(sp.lastError, 'client')],
  ];
}

/** The status as aligned `label  value` lines. */
export function formatStatus(s: S, o: { health?: S; node?: S; base: string }): string[] {
  const rows: [string, string][] = [];
  if (s.role === 'miner') {
    rows.push(['height', `${s.height}  tip ${String(s.tip).slice(0, 16)}…`]);
    rows.push(['aggregations', `${s.aggregations}  (${s.pending} recorded updates pending)`]);
    rows.push(['accuracy', s.split ? '-  (split mode: the heads are on the clients, whose status has their accuracy)' : `${pct(s.lastAccuracy)}  (newest global model, test set)`]);
    rows.push(['hash rate', rate(s.hashRate ?? 0)]);
    rows.push(['peers', `${s.peers}  (miners: ${s.miners?.length ? s.miners.join(', ') : 'none connected'})`]);
    rows.push(['update pool', `${s.pool?.unrecorded} unrecorded of ${s.pool?.total}`]);
    rows.push(['labelled low', s.flagged?.length ? [...new Set(s.flagged as string[])].join(', ') : 'none in the last aggregation']);
    const pens = Object.entries((s.penalties ?? {}) as Record<string, number>);
    rows.push(['penalties', pens.length ? pens.map(([k, v]) => `${k} ${v}`).join(', ') : 'none']);
    if (s.split) rows.push(...splitMinerRows(s, s.split as S));
  } else {
    rows.push(['round', `${s.round}  (global model ${String(s.modelHash).slice(0, 16)}…)`]);
    rows.push(['accuracy', `${pct(s.lastAccuracy)}  (held-out data)`]);
    // split mode uploads no model: its rounds are in the split rows below
    if (s.mode !== 'split' || !s.split) rows.push(['updates', `${s.trained} trained, ${s.uploaded} uploaded, ${s.buffered} buffered`]);
    rows.push(['balance', `${tokens(s.balance)} tokens`]);
    const miners = Object.entries((s.miners ?? {}) as Record<string, number | null>);
    rows.push(['miners', miners.length ? miners.map(([id, rtt]) => `${id} ${rtt === null ? 'unreachable' : `${Math.round(rtt)} ms`}${id === s.nearest ? ' (nearest)' : ''}`).join(', ') : 'none measured yet']);
    if (s.attack && s.attack !== 'none') rows.push(['attack', `${s.attack} (experiment)`]);
    if (s.mode === 'split') {
      const h = s.headSharing as S | null | undefined;
      rows.push(...splitClientRows(s.split as S | undefined));
      rows.push(['head sharing', !h ? 'none (split mode: the head stays private)' : `${h.shares} shares every ${h.every} rounds (eq. 4, clip ${h.clip}, noise ${h.noise}): (ε, δ) = (${h.epsilon === null ? '∞, no noise' : Number(h.epsilon).toPrecision(4)}, ${h.delta})`]);
    }
  }
  if (o.health) rows.push(['health', o.health.ok ? 'ok' : `NOT OK: ${o.health.reason ?? 'unhealthy'}`]);
  rows.push(['dashboard', `${o.base}/`]);
  const head = `${s.id} (${s.role})${o.node ? `  network ${o.node.networkId}, bfl-node ${o.node.version} (${o.node.commit})` : ''}`;
  const w = Math.max(...rows.map(([k]) => k.length));
  return [head, ...rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`)];
}

export function statusCommand(): Command {
  return new Command('status')
    .summary("one running node's status, from its HTTP API")
    .description(
      "one running node's status, from its HTTP API: a miner's chain, hash rate, peers, pool, labels and penalties, a client's round, accuracy, updates, balance and miners; " +
        'in split mode (learning.mode "split") a miner\'s clients served, batches answered and refused, body updates and the last error, and a client\'s split rounds, last error and head sharing',
    )
    .option('--api <url>', `the node's API: host:port or URL (env BFL_API; default ${DEFAULT_API})`)
    .option('--timeout <ms>', 'give up after this many milliseconds', parseIntFlag('--timeout', 100, 600_000), 5000)
    .option('--json', "print the node's /status JSON", false)
    .action(async (o: { api?: string; timeout: number; json: boolean }) => {
      const base = apiBase(o.api ?? process.env.BFL_API ?? DEFAULT_API);
      const status = await get(base, '/status', o.timeout);
      if (status.code !== 200 || typeof status.body !== 'object' || status.body === null || !('role' in status.body)) {
        throw new BflError(ErrorCode.UNAVAILABLE, `${base}/status answered HTTP ${status.code} without a node status: is --api the address of a bfl-node API?`);
      }
      if (o.json) {
        printJson(status.body);
        return;
      }
      // Older nodes have no /healthz or /api/node: the status alone is still worth printing.
      const [health, node] = await Promise.all([get(base, '/healthz', o.timeout).catch(() => undefined), get(base, '/api/node', o.timeout).catch(() => undefined)]);
      const ok = (r?: { code: number; body: unknown }) => (r && (r.code === 200 || r.code === 503) && typeof r.body === 'object' ? (r.body as S) : undefined);
      for (const line of formatStatus(status.body as S, { health: ok(health), node: node?.code === 200 ? (node.body as S) : undefined, base })) print(line);
    });
}
