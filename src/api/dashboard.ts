/**
 * The web dashboard every node serves on its API port: the page (`GET /`), its assets (ours
 * from src/api/web, uPlot from node_modules: no CDN, works offline), `GET /healthz`, and the
 * JSON routes behind each view (`/api/...`, README "Each node's HTTP API"). JSON answers carry
 * an ETag (a poll that finds nothing new costs a 304); `/api/events` pushes the status as
 * Server-Sent Events whenever it changes.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { ChainStore } from '../chain/store.ts';
import { buildInfo } from './node-metrics.ts';
import { type AccuracyOf, blockDetail, recentAggregations, recentBlocks, rewardLedger } from './explorer.ts';
import { Sampler, type UploadEntry, sampleOf } from './history.ts';
import type { NodeStatus } from './status.ts';

export interface PeerView {
  peer: string;
  memberId?: string;
  role?: string;
  penalty: number;
  banned: boolean;
}

export interface DashboardSource {
  role: 'miner' | 'client';
  id: string;
  networkId: string;
  /** Every admitted member (for the peers view: who is missing, not only who is there). */
  members: { id: string; role: string }[];
  status: () => NodeStatus;
  /** Running, with its store open. */
  healthy: () => boolean;
  peers: () => PeerView[];
  /** Miners: the chain the explorer reads. */
  chain?: ChainStore;
  /** Miners: test accuracy by global-model hash, where measured. */
  accuracyOf?: AccuracyOf;
  /** Clients: recent uploads. */
  uploads?: () => UploadEntry[];
}

export interface DashboardOptions {
  /** How often the status is sampled for the charts over time: 2 s shows a client's ~2 s rounds. */
  sampleMs: number;
  /** Samples kept: 1800 × 2 s = the last hour. */
  samples: number;
  /** How often the status is compared with the last one pushed to event streams. */
  pushMs: number;
  /** Event streams open at once at most (each costs a socket and a JSON per change). */
  maxStreams: number;
}

export const defaultDashboardOptions: DashboardOptions = { sampleMs: 2000, samples: 1800, pushMs: 1000, maxStreams: 32 };

export interface Dashboard {
  /** Answers `path` if it is one of ours; false lets the server try its own routes. */
  handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean>;
  /** The routes, for the server's 404 answer. */
  routes: string[];
  close(): void;
}

export const jsonText = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));

const web = new URL('./web/', import.meta.url);
const uplot = (f: string) => fileURLToPath(import.meta.resolve(`uplot/dist/${f}`));

/** The page and its assets, read once: a fixed table, so no request path reaches the file system. */
function loadAssets(): Map<string, { type: string; body: Buffer }> {
  const a = new Map<string, { type: string; body: Buffer }>();
  const html = readFileSync(new URL('index.html', web));
  a.set('/', { type: 'text/html; charset=utf-8', body: html });
  a.set('/index.html', { type: 'text/html; charset=utf-8', body: html });
  a.set('/assets/app.js', { type: 'text/javascript; charset=utf-8', body: readFileSync(new URL('app.js', web)) });
  a.set('/assets/favicon.svg', { type: 'image/svg+xml', body: readFileSync(new URL('favicon.svg', web)) });
  a.set('/assets/style.css', { type: 'text/css; charset=utf-8', body: readFileSync(new URL('style.css', web)) });
  a.set('/assets/uPlot.iife.min.js', { type: 'text/javascript; charset=utf-8', body: readFileSync(uplot('uPlot.iife.min.js')) });
  a.set('/assets/uPlot.min.css', { type: 'text/css; charset=utf-8', body: readFileSync(uplot('uPlot.min.css')) });
  return a;
}

const intParam = (u: URL, name: string, def: number, max: number): number => {
  const v = u.searchParams.get(name);
  const n = v === null ? def : Number(v);
  return Number.isInteger(n) && n >= 0 ? Math.min(n, max) : def;
};

export function createDashboard(src: DashboardSource, options: Partial<DashboardOptions> = {}): Dashboard {
  const o = { ...defaultDashboardOptions, ...options };
  const assets = loadAssets();
  const startedAt = Date.now();
  const sampler = new Sampler({ intervalMs: o.sampleMs, capacity: o.samples });
  const sample = () => {
    try {
      sampler.add(Date.now(), sampleOf(src.status()));
    } catch {
      // a status read during shutdown; the next sample will do
    }
  };
  sample();
  const sampling = setInterval(sample, o.sampleMs).unref();

  const streams = new Set<ServerResponse>();
  let lastPushed = '';
  const push = () => {
    if (streams.size === 0) return;
    const s = jsonText(src.status());
    if (s === lastPushed) return;
    lastPushed = s;
    for (const r of streams) r.write(`event: status\ndata: ${s}\n\n`);
  };
  const pushing = setInterval(push, o.pushMs).unref();
  // summarise each new block as it arrives (memoised in explorer.ts), while it is still in
  // LevelDB's cache, so the explorer's next poll reads no block
  const warm = () => void Promise.all([recentBlocks(src.chain!, { limit: 1 }), recentAggregations(src.chain!, 1)]).catch(() => undefined);
  src.chain?.on('tip', warm);
  // a comment line now and then keeps proxies from closing an idle stream
  const keepalive = setInterval(() => streams.forEach((r) => r.write(': keepalive\n\n')), 15_000).unref();

  const node = () => ({ id: src.id, role: src.role, networkId: src.networkId, ...buildInfo(), startedAt, members: src.members, sampleMs: o.sampleMs });

  const send = (req: IncomingMessage, res: ServerResponse, status: number, value: unknown) => {
    const body = jsonText(value);
    const etag = `"${createHash('sha1').update(body).digest('base64url').slice(0, 20)}"`;
    if (status === 200 && req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag, 'cache-control': 'no-cache' }).end();
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json', etag, 'cache-control': 'no-cache' }).end(body + '\n');
  };

  const minerRoutes = ['/api/blocks', '/api/blocks/{height|hash}', '/api/aggregations', '/api/rewards'];
  const routes = ['/', '/healthz', '/api/node', '/api/status', '/api/events', '/api/series', '/api/peers', ...(src.chain ? minerRoutes : ['/api/uploads'])];

  async function handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
    const asset = assets.get(path);
    if (asset) {
      res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache', 'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'" }).end(asset.body);
      return true;
    }
    if (path === '/healthz') {
      const ok = src.healthy();
      send(req, res, ok ? 200 : 503, { ok, id: src.id, role: src.role, ...(ok ? {} : { reason: 'the node is stopping or its store is closed' }) });
      return true;
    }
    if (!path.startsWith('/api/')) return false;
    const url = new URL(req.url ?? '/', 'http://localhost');
    const chain = src.chain;
    if (path === '/api/node') send(req, res, 200, node());
    else if (path === '/api/status') send(req, res, 200, src.status());
    else if (path === '/api/series') send(req, res, 200, sampler.toJSON());
    else if (path === '/api/peers') send(req, res, 200, { peers: src.peers(), members: src.members.filter((m) => m.id !== src.id) });
    else if (path === '/api/events') {
      if (streams.size >= o.maxStreams) {
        send(req, res, 503, { error: `at most ${o.maxStreams} event streams at once; poll /api/status instead` });
        return true;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      res.write(`retry: 2000\nevent: status\ndata: ${jsonText(src.status())}\n\n`);
      streams.add(res);
      req.on('close', () => streams.delete(res));
    } else if (path === '/api/uploads' && src.uploads) send(req, res, 200, { uploads: src.uploads() });
    else if (path === '/api/blocks' && chain) {
      const before = url.searchParams.get('before');
      send(req, res, 200, { height: chain.tip.height, blocks: await recentBlocks(chain, { limit: intParam(url, 'limit', 20, 500), before: before === null ? undefined : intParam(url, 'before', chain.tip.height + 1, chain.tip.height + 1) }) });
    } else if (path.startsWith('/api/blocks/') && chain) {
      const id = decodeURIComponent(path.slice('/api/blocks/'.length));
      const b = await blockDetail(chain, id, src.accuracyOf);
      if (b) send(req, res, 200, b);
      else send(req, res, 404, { error: `no block ${id}: give a height of the canonical chain or a 64-hex-digit block hash` });
    } else if (path === '/api/aggregations' && chain) send(req, res, 200, { aggregations: await recentAggregations(chain, intParam(url, 'limit', 100, 5000), src.accuracyOf) });
    else if (path === '/api/rewards' && chain) send(req, res, 200, { ledger: await rewardLedger(chain) });
    else return false;
    return true;
  }

  return {
    handle,
    routes,
    close() {
      clearInterval(sampling);
      clearInterval(pushing);
      clearInterval(keepalive);
      src.chain?.off('tip', warm);
      for (const r of streams) r.end();
      streams.clear();
    },
  };
}
