/** `bfl-node status`: a node's status from its API, readable or as JSON; clear errors. */
import { execFile } from 'node:child_process';
import type { Server } from 'node:http';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createDashboard } from '../../src/api/dashboard.ts';
import { startApi, stopApi } from '../../src/api/server.ts';
import type { ClientStatus, MinerStatus, NodeStatus } from '../../src/api/status.ts';
import { freePort } from '../../src/node/testnet.ts';
import { Metrics } from '../../src/util/metrics.ts';

const BIN = new URL('../../bin/bfl-node.js', import.meta.url).pathname;
// async: the API answering these requests runs in this process
const run = (args: string[], env: Record<string, string> = {}) =>
  promisify(execFile)(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

const miner: MinerStatus = { role: 'miner', id: 'miner-1', peerId: '12D3KooWm', work: '1000', orphans: 0, height: 42, tip: 'ab'.repeat(32), aggregations: 7, pending: 1, peers: 3, miners: ['miner-2'], pool: { unrecorded: 2, total: 9 }, lastAccuracy: 0.9123, flagged: ['client-3', 'client-3'], hashRate: 1_800_000, penalties: { 'client-9': 10 } };
const client: ClientStatus = { role: 'client', id: 'client-1', peerId: '12D3KooWc', anchor: 'ef'.repeat(32), lastUpload: null, lastAveragedUpload: null, freshSamples: 3, round: 5, modelHash: 'cd'.repeat(32), lastAccuracy: 0.8, trained: 6, uploaded: 5, buffered: 1, balance: '2500000', miners: { 'miner-1': 12.4, 'miner-2': null }, nearest: 'miner-1', attack: 'none' };
const servers: Server[] = [];
const dashboards: { close(): void }[] = [];

async function serve(status: NodeStatus): Promise<string> {
  const d = createDashboard({ role: status.role, id: status.id, networkId: 'net-x', members: [], status: () => status, healthy: () => true, peers: () => [] });
  dashboards.push(d);
  const s = await startApi({ host: '127.0.0.1', port: 0, status: () => status, metrics: new Metrics(), dashboard: d });
  servers.push(s);
  return `127.0.0.1:${(s.address() as { port: number }).port}`;
}

let minerApi: string;
let clientApi: string;
beforeAll(async () => {
  minerApi = await serve(miner);
  clientApi = await serve(client);
});
afterAll(async () => {
  dashboards.forEach((d) => d.close());
  await Promise.all(servers.map(stopApi));
});

it('prints a miner\'s status as aligned lines', async () => {
  const r = await run(['status', '--api', minerApi]);
  expect(r.code, r.stderr).toBe(0);
  const lines = r.stdout.trim().split('\n');
  expect(lines[0]).toMatch(/^miner-1 \(miner\)\s+network net-x, bfl-node \d+\.\d+\.\d+/);
  expect(r.stdout).toMatch(/^ {2}height\s+42 {2}tip abababab/m);
  expect(r.stdout).toMatch(/^ {2}accuracy\s+91\.23 %/m);
  expect(r.stdout).toMatch(/^ {2}hash rate\s+1\.80 MH\/s$/m);
  expect(r.stdout).toMatch(/^ {2}labelled low\s+client-3$/m);
  expect(r.stdout).toMatch(/^ {2}penalties\s+client-9 10$/m);
  expect(r.stdout).toMatch(/^ {2}health\s+ok$/m);
  expect(r.stdout).toContain(`dashboard     http://${minerApi}/`);
});

it("prints a client's status; --json prints /status as it is; BFL_API works as --api", async () => {
  const r = await run(['status', '--api', `http://${clientApi}/`]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/^ {2}balance\s+2\.50 tokens$/m);
  expect(r.stdout).toMatch(/^ {2}miners\s+miner-1 12 ms \(nearest\), miner-2 unreachable$/m);
  expect(r.stdout).toMatch(/^ {2}updates\s+6 trained, 5 uploaded, 1 buffered$/m);
  const j = await run(['status', '--json'], { BFL_API: clientApi });
  expect(JSON.parse(j.stdout)).toEqual(client);
});

it('a node that is not there: exit 1 and one line that says what to check', async () => {
  const r = await run(['status', '--api', `127.0.0.1:${await freePort()}`, '--timeout', '2000']);
  expect(r.code).toBe(1);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/^error: cannot reach a node's API at http:\/\/127\.0\.0\.1:\d+ .*is the node running.*\(UNAVAILABLE\)$/m);
});

it('an API address that is not one: exit 2 with a usage error', async () => {
  for (const bad of ['ftp://host', 'http://']) {
    const r = await run(['status', '--api', bad]);
    expect(r.code, bad).toBe(2);
    expect(r.stderr).toMatch(/^error: --api must be/m);
  }
});
