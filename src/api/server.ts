/**
 * Each node's small HTTP API: GET /status (JSON), GET /metrics (Prometheus text), and
 * GET /rewards (JSON), and the web dashboard's routes (dashboard.ts). Read-only; bind it to
 * loopback unless it is meant to be public.
 */
import { type Server, createServer } from 'node:http';
import type { Dashboard } from './dashboard.ts';
import type { Metrics } from '../util/metrics.ts';
import type { NodeStatus } from './status.ts';

export interface ApiOptions {
  host: string;
  port: number;
  status: () => NodeStatus;
  rewards?: () => Promise<Record<string, string>>;
  metrics: Metrics;
  /** The page, /healthz and /api/... (answered first). */
  dashboard?: Pick<Dashboard, 'handle' | 'routes'>;
}

const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x), 2) + '\n';

export async function startApi(o: ApiOptions): Promise<Server> {
  const server = createServer(async (req, res) => {
    try {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET') {
        res.writeHead(405, { allow: 'GET' }).end();
        return;
      }
      if (o.dashboard && (await o.dashboard.handle(req, res, path))) return;
      if (path === '/status') res.writeHead(200, { 'content-type': 'application/json' }).end(json(o.status()));
      else if (path === '/metrics') res.writeHead(200, { 'content-type': o.metrics.registry.contentType }).end(await o.metrics.text());
      else if (path === '/rewards' && o.rewards) res.writeHead(200, { 'content-type': 'application/json' }).end(json(await o.rewards()));
      else res.writeHead(404, { 'content-type': 'application/json' }).end(json({ error: `no route ${path}`, routes: ['/status', '/metrics', ...(o.rewards ? ['/rewards'] : []), ...(o.dashboard?.routes ?? [])] }));
    } catch (e) {
      res.writeHead(500, { 'content-type': 'application/json' }).end(json({ error: (e as Error).message }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  return server;
}

export async function stopApi(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}
