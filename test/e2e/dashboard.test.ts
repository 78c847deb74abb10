/**
 * The dashboard as a person sees it: a small network of real bfl-node processes, each node's
 * page opened in headless Chromium (Debian's, driven by playwright-core), live data awaited,
 * and what is on screen compared with the node's /status and /api routes. Screenshots go to
 * out/test/dashboard/ for a reviewer to look at.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { afterAll, expect, it } from 'vitest';
import type { Server } from 'node:http';
import { createDashboard } from '../../src/api/dashboard.ts';
import { startApi, stopApi } from '../../src/api/server.ts';
import type { ClientStatus, MinerStatus, NodeStatus } from '../../src/api/status.ts';
import { Metrics } from '../../src/util/metrics.ts';
import { Cluster, type Status } from '../helpers/cluster.ts';
import { grafanaMetricNames } from '../helpers/grafana.ts';

/** Debian's chromium first (.ci/run installs it); BFL_CHROMIUM names another build. */
const candidates = [process.env.BFL_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'].filter(Boolean) as string[];
const executable = candidates.find((p) => existsSync(p));
const outDir = new URL('../../out/test/dashboard/', import.meta.url).pathname;
if (!executable) console.warn(`dashboard browser test skipped: no Chromium at ${candidates.join(', ')}; install it (apt-get install -y chromium) or set BFL_CHROMIUM`);

const clusters: Cluster[] = [];
const servers: { server: Server; dashboard: { close(): void } }[] = [];
let browser: Browser | undefined;
afterAll(async () => {
  await browser?.close();
  for (const c of clusters) await c.stopAll();
  for (const s of servers) {
    s.dashboard.close();
    await stopApi(s.server);
  }
});

const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
const int = (n: number) => n.toLocaleString('en-US');

/** Poll until what the page shows at `selector` equals what /status says (both move while the network runs). */
async function shownAt(page: Page, c: Cluster, id: string, selector: string, expected: (s: Status) => string, timeoutMs = 30_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < until) {
    const before = (await page.textContent(selector, { timeout: 10_000 }))?.trim();
    const s = await c.status(id);
    const after = (await page.textContent(selector, { timeout: 10_000 }))?.trim();
    if (s) {
      last = `page ${before} / ${after}, status ${expected(s)}`;
      if (before === expected(s) || after === expected(s)) return expected(s);
    }
    await page.waitForTimeout(300);
  }
  throw new Error(`${id}: ${selector} on the page never matched /status (${last})`);
}

const shownMatches = (page: Page, c: Cluster, id: string, kpi: string, expected: (s: Status) => string, timeoutMs = 30_000) => shownAt(page, c, id, `[data-kpi="${kpi}"] .value`, expected, timeoutMs);

/** Wait until a chart on the page has at least `min` points (its data-points attribute). */
async function chartPoints(page: Page, id: string, min: number): Promise<void> {
  // a function, not a string: the page's Content-Security-Policy forbids eval
  await page.waitForFunction(([sel, n]) => Number((globalThis as any).document.querySelector(sel)?.getAttribute('data-points')) >= n, [`#${id}`, min] as const, { timeout: 20_000 });
}

async function open(url: string): Promise<Page> {
  const page = await browser!.newPage({ viewport: { width: 1440, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForSelector('#live[data-state="live"]', { timeout: 20_000 });
  expect(errors, 'script errors on the page').toEqual([]);
  return page;
}

it.skipIf(!executable)('each node\'s dashboard shows live data that matches its API, in headless Chromium', { timeout: 300_000 }, async () => {
  await mkdir(outDir, { recursive: true });
  const c = await Cluster.create({ miners: 2, clients: 2, phi: 2 });
  clusters.push(c);
  for (const n of c.init.nodes) c.start(n.id);
  await c.waitFor(['miner-1', 'miner-2'], (s) => s.every((x) => x.aggregations >= 3 && x.lastAccuracy !== null), 120_000, '3 aggregations on both miners');
  await c.waitFor(['client-1', 'client-2'], (s) => s.every((x) => x.lastAccuracy !== null && Number(x.balance) > 0 && x.uploaded >= 2), 60_000, 'clients with accuracy and a reward');
  browser = await chromium.launch({ executablePath: executable, args: ['--no-sandbox'] });

  // every metric the Grafana dashboard queries is in what the nodes export
  const exported = new Set<string>();
  for (const id of ['miner-1', 'client-1']) for (const m of (await (await fetch(`${c.node(id).api}/metrics`)).text()).matchAll(/^# TYPE (\S+) (\S+)$/gm)) for (const suffix of m[2] === 'histogram' ? ['_bucket', '_sum', '_count'] : ['']) exported.add(m[1] + suffix);
  for (const name of grafanaMetricNames()) expect(exported, `Grafana queries ${name}`).toContain(name);
  const minerMetrics = await (await fetch(`${c.node('miner-1').api}/metrics`)).text();
  expect(minerMetrics).toMatch(/^bfl_aggregation_seconds_count\{node="miner-1"\} [1-9]\d*$/m);
  expect(minerMetrics).toMatch(/^bfl_block_validation_seconds_count\{node="miner-1"\} [1-9]\d*$/m);
  expect(minerMetrics).toMatch(/^bfl_signature_verification_seconds_count\{node="miner-1"\} [1-9]\d*$/m);
  expect(minerMetrics).toMatch(/^bfl_peers\{(?=[^}]*role="miner")(?=[^}]*node="miner-1")[^}]*\} 1$/m);
  expect(minerMetrics).toMatch(/^bfl_model_accuracy_ratio\{node="miner-1"\} 0\.\d+$/m);

  // clients first, while they run
  for (const id of ['client-1', 'client-2']) {
    const api = c.node(id).api;
    expect((await fetch(`${api}/healthz`)).status).toBe(200);
    const page = await open(`${api}/`);
    expect(await page.textContent('#node-id')).toBe(id);
    await shownMatches(page, c, id, 'round', (s) => int(s.round));
    await shownMatches(page, c, id, 'accuracy', (s) => pct(s.lastAccuracy));
    await chartPoints(page, 'chart-client-accuracy', 1);
    await chartPoints(page, 'chart-rtt', 1);
    await page.waitForSelector('#uploads tbody tr td.mono', { timeout: 20_000 }); // an upload with its digest
    await page.screenshot({ path: join(outDir, `${id}.png`), fullPage: true });
    await page.close();
  }

  // then the miners, once the clients stop and the chain holds still
  for (const id of ['client-1', 'client-2']) await c.stop(id);
  await c.waitStable(['miner-1', 'miner-2'], (s) => new Set(s.map((x) => x.tip)).size === 1, 60_000, 'miners to agree on one tip');
  for (const id of ['miner-1', 'miner-2']) {
    const api = c.node(id).api;
    expect((await fetch(`${api}/healthz`)).status).toBe(200);
    const page = await open(`${api}/`);
    const s = (await c.status(id))!;
    await shownMatches(page, c, id, 'height', (x) => int(x.height));
    await shownMatches(page, c, id, 'accuracy', (x) => pct(x.lastAccuracy));
    await shownMatches(page, c, id, 'aggregations', (x) => int(x.aggregations));
    // the accuracy chart has a point per evaluated aggregation (the genesis model at least)
    await chartPoints(page, 'chart-accuracy', 2);
    await chartPoints(page, 'chart-rewards', 1);

    // the explorer opens on the newest aggregation block: its records and its aggregation
    await page.waitForSelector('#block-detail [data-section="aggregation"] tbody tr', { timeout: 20_000 });
    const shownHash = await page.getAttribute('#blocks tbody tr.selected', 'data-hash');
    const block = (await (await fetch(`${api}/api/blocks/${shownHash}`)).json()) as any;
    expect(block.aggregationDetail.round).toBeGreaterThan(0);
    expect(await page.locator('#block-detail [data-section="aggregation"] tbody tr').count()).toBe(block.aggregationDetail.entries.length);
    expect(await page.locator('#block-detail [data-section="records"] tbody tr').count()).toBe(block.recordList.length);
    const firstRecord = page.locator('#block-detail [data-section="records"] tbody tr').first();
    expect(await firstRecord.locator('td').first().textContent()).toBe(block.recordList[0].clientId);
    expect(await firstRecord.locator('td').nth(4).textContent()).toBe(`${int(block.recordList[0].signatureBytes)} B`);
    expect(await page.textContent('#block-detail h3')).toContain(`aggregation round ${block.aggregationDetail.round}`);
    await page.screenshot({ path: join(outDir, `${id}.png`), fullPage: true });

    // a person clicks another block in the list: the detail follows
    const row = page.locator('#blocks tbody tr').filter({ hasNotText: 'genesis' }).last();
    const clicked = await row.getAttribute('data-hash');
    await row.click();
    await page.waitForFunction((h) => (globalThis as any).document.querySelector('#block-detail dd.mono')?.textContent === h, clicked, { timeout: 10_000 });
    expect(page.url()).toContain(`#block=${clicked}`);
    expect(s.id).toBe(id);
    await page.close();
  }
});

/** (ε, δ) of a head-sharing account as the page and `bfl-node status` print it. */
const epsDelta = (a: Status) => `(${a.epsilon === null ? '∞, no noise' : Number(a.epsilon).toPrecision(4)}, ${a.delta})`;

it.skipIf(!executable)('in split mode, a client\'s dashboard shows its head sharing (eq. 4) and (ε, δ) as /status has them, a private client says so, and the miner shows that it trains bodies', { timeout: 240_000 }, async () => {
  await mkdir(outDir, { recursive: true });
  // client-1 shares its head every 2 local rounds with a noise that gives a finite ε; client-2 keeps it private
  const sharing = { clients: ['client-1'], clip: 5, noise: 0.5, every: 2 };
  const c = await Cluster.create({ miners: 1, clients: 2, phi: 1, learning: { mode: 'split', split: { headSharing: sharing } } });
  clusters.push(c);
  for (const n of c.init.nodes) c.start(n.id);
  await c.waitFor(['client-1', 'client-2', 'miner-1'], ([c1, c2, m]) => c1.headSharing?.shares >= 1 && c2.uploaded >= 1 && m.split?.batches > 0 && m.aggregations >= 1, 120_000, 'a head share by client-1, a split round by client-2, an aggregation');
  browser ??= await chromium.launch({ executablePath: executable, args: ['--no-sandbox'] });

  const field = (f: string) => `#split-client-kv dd[data-field="${f}"]`;
  for (const id of ['client-1', 'client-2']) {
    const s0 = (await c.status(id))!;
    expect(s0.mode).toBe('split');
    if (id === 'client-1') expect(s0.headSharing).toMatchObject({ every: 2, clip: 5, noise: 0.5, delta: 1e-5 });
    else expect(s0.headSharing).toBeNull();
    const page = await open(`${c.node(id).api}/`);
    await shownMatches(page, c, id, 'mode', (s) => s.mode);
    await shownAt(page, c, id, field('mode'), (s) => `${s.mode}: the head trains here, the body on the miners`);
    expect(await page.isVisible('#uploads-card')).toBe(false); // a split client uploads no model
    // its rounds with the miners (/status `split`); the rest of the line has an age, checked in the test with fixed statuses
    await shownMatches(page, c, id, 'uploaded', (s) => int(s.split.rounds));
    expect(await page.textContent(field('rounds'))).toMatch(/^[\d,]+ trained with a miner \(the last with miner-1, \d+ s ago, loss \d+\.\d{4}\), [\d,]+ failed$/);
    expect(await page.textContent('#client-accuracy-of')).toBe('of its own head on the global body, on its own data');
    if (id === 'client-1') {
      await shownMatches(page, c, id, 'head', (s) => int(s.headSharing.shares));
      await shownAt(page, c, id, field('shares'), (s) => int(s.headSharing.shares));
      await shownAt(page, c, id, field('every'), (s) => `every ${s.headSharing.every} local rounds`);
      await shownAt(page, c, id, field('clip'), (s) => `C = ${s.headSharing.clip} (L2 norm of a shared head update)`);
      await shownAt(page, c, id, field('noise'), (s) => `z = ${s.headSharing.noise}, σ = z·C = ${Number((s.headSharing.noise * s.headSharing.clip).toPrecision(4))} per coordinate`);
      const shown = await shownAt(page, c, id, field('privacy'), (s) => epsDelta(s.headSharing));
      expect(shown).toMatch(/^\([0-9.e+]+, 0\.00001\)$/); // a finite ε at δ = 1e-5
      await shownAt(page, c, id, '[data-kpi="head"] .sub', (s) => `(ε, δ) = ${epsDelta(s.headSharing)}`);
    } else {
      await shownMatches(page, c, id, 'head', (s) => (s.headSharing === null ? 'none' : int(s.headSharing.shares)));
      await shownAt(page, c, id, '[data-kpi="mode"] .sub', (s) => (s.headSharing === null ? 'private head, never shared' : 'shared'));
      await shownAt(page, c, id, field('head'), (s) => (s.headSharing === null ? 'private head, never shared' : 'shared'));
      await shownAt(page, c, id, field('privacy'), (s) => (s.headSharing === null ? 'nothing released' : epsDelta(s.headSharing)));
      expect(await page.locator(field('every')).count()).toBe(0);
    }
    await page.screenshot({ path: join(outDir, `split-${id}.png`), fullPage: true });
    await page.close();
  }

  // the miner: it trains the body on the clients' batches and holds no head
  const page = await open(`${c.node('miner-1').api}/`);
  await shownMatches(page, c, 'miner-1', 'mode', (s) => (s.split ? 'split' : 'federated'));
  await shownMatches(page, c, 'miner-1', 'body', (s) => int(s.split.batches));
  await shownMatches(page, c, 'miner-1', 'bodyUpdates', (s) => int(s.split.bodyUpdates));
  await shownMatches(page, c, 'miner-1', 'headShares', (s) => int(s.split.headShares));
  // the "Split learning" card, in `bfl-node status`'s words
  const mf = (f: string) => `#split-miner-kv dd[data-field="${f}"]`;
  await shownAt(page, c, 'miner-1', mf('batches'), (s) => `${int(s.split.batches)} answered (${int(s.split.samples)} samples, last loss ${s.split.lastLoss.toFixed(4)}), ${int(s.split.refused)} refused`);
  await shownAt(page, c, 'miner-1', mf('headShares'), (s) => `${int(s.split.headShares)} received (eq. 4), ${int(s.split.headSharesRefused)} refused`);
  expect(await page.textContent(mf('clients'))).toMatch(/^2 trained with it in the last \d+ s: client-1, client-2$|^1 trained with it in the last \d+ s: client-[12]$/);
  await shownMatches(page, c, 'miner-1', 'accuracy', (s) => (s.lastAccuracy === null ? '–' : pct(s.lastAccuracy)));
  // the contribution labels and rewards are the miners' (their body updates are what the chain records)
  await page.waitForSelector('#labels tbody th', { timeout: 20_000 });
  expect(await page.locator('#labels tbody th').allTextContents()).toEqual(['miner-1']);
  expect(await page.textContent('#rewards-who')).toBe('miner');
  await page.screenshot({ path: join(outDir, 'split-miner-1.png'), fullPage: true });
  await page.close();
});

/** A node's real API and page serving `status()` (what it returns may change: the page follows it), no node behind it. */
async function serveStatus(status: () => NodeStatus): Promise<string> {
  const s0 = status();
  const dashboard = createDashboard({ role: s0.role, id: s0.id, networkId: 'net-split', members: [], status, healthy: () => true, peers: () => [] }, { pushMs: 100 });
  const server = await startApi({ host: '127.0.0.1', port: 0, status, metrics: new Metrics(), dashboard });
  servers.push({ server, dashboard });
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

const classOf = async (page: Page, selector: string) => (await page.getAttribute(selector, 'class')) ?? '';

/** Wait until the text at `selector` matches. */
async function textMatches(page: Page, selector: string, want: string | RegExp, timeoutMs = 10_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  let t = '';
  while (Date.now() < until) {
    t = ((await page.textContent(selector, { timeout: timeoutMs })) ?? '').trim();
    if (typeof want === 'string' ? t === want : want.test(t)) return t;
    await page.waitForTimeout(100);
  }
  throw new Error(`${selector}: "${t}" never matched ${want}`);
}

it.skipIf(!executable)("in split mode, a miner's and a client's pages show /status's refusals, clients served, rounds and last error, in `bfl-node status`'s words", { timeout: 60_000 }, async () => {
  await mkdir(outDir, { recursive: true });
  const now = Date.now();
  let miner: MinerStatus = {
    role: 'miner', id: 'miner-1', peerId: '12D3KooWm', height: 12, tip: 'ab'.repeat(32), work: '100', aggregations: 4, pending: 0, peers: 2, miners: [], pool: { unrecorded: 0, total: 3 }, lastAccuracy: null, flagged: ['miner-1'], hashRate: 900, penalties: {}, orphans: 0,
    split: {
      batches: 1234, refused: 7, samples: 12340, pending: 140, sinceUpdate: 140, samplesPerUpdate: 500, bodyUpdates: 24, bodyUpdatesRefused: 2, headShares: 5, headSharesRefused: 1, lastLoss: 0.123456,
      clients: Array.from({ length: 10 }, (_, i) => `client-${i + 1}`), clientWindowMs: 60_000,
      lastError: { what: 'batch', code: 'REPLAY', message: 'batch nonce 41 already seen: send each batch once', peer: 'client-3', at: now - 5_000 },
    },
  };
  let client: ClientStatus = {
    role: 'client', id: 'client-1', peerId: '12D3KooWc', round: 4, anchor: 'ef'.repeat(32), modelHash: 'cd'.repeat(32), lastAccuracy: 0.71, trained: 0, uploaded: 9, buffered: 0, lastUpload: null, lastAveragedUpload: null, balance: '0',
    miners: { 'miner-1': 3.2 }, nearest: 'miner-1', freshSamples: 20, attack: 'none', mode: 'split', headSharing: null,
    split: { rounds: 9, failed: 0, miner: 'miner-1', lastLoss: 0.5, lastRoundAt: now - 2_000, lastError: null },
  };
  const minerUrl = await serveStatus(() => miner);
  const clientUrl = await serveStatus(() => client);
  browser ??= await chromium.launch({ executablePath: executable, args: ['--no-sandbox'] });

  // the miner: a batch refused 5 s ago is its last error, shown in red
  const mp = await open(`${minerUrl}/`);
  const mf = (f: string) => `#split-miner-kv dd[data-field="${f}"]`;
  await textMatches(mp, mf('clients'), '10 trained with it in the last 60 s: client-1, client-2, client-3, client-4, client-5, client-6, client-7, client-8, … (2 more)');
  expect(await mp.textContent(mf('batches'))).toBe('1,234 answered (12,340 samples, last loss 0.1235), 7 refused');
  expect(await mp.textContent(mf('bodyUpdates'))).toBe('24 made, 2 refused by its intake; the next after 140 of 500 samples; labelled low in the newest aggregation');
  expect(await mp.textContent(mf('headShares'))).toBe('5 received (eq. 4), 1 refused');
  const at = (t: number) => `${new Date(t).toISOString().slice(11, 19)} UTC`;
  expect(await mp.textContent(mf('error'))).toMatch(new RegExp(`^batch from client-3, \\d+ s ago \\(${at(now - 5_000)}\\): REPLAY: batch nonce 41 already seen: send each batch once$`));
  expect(await classOf(mp, mf('error'))).toBe('bad');
  expect(await mp.textContent('[data-kpi="splitError"] .value')).toBe('REPLAY');
  expect(await mp.textContent('[data-kpi="splitError"] .sub')).toMatch(/^batch from client-3, \d+ s ago: batch nonce 41 already seen/);
  expect(await mp.getAttribute('[data-kpi="splitError"]', 'data-tone')).toBe('bad');
  expect(await mp.textContent('[data-kpi="clients"] .value')).toBe('10');
  expect(await mp.textContent('[data-kpi="body"] .sub')).toBe('answered, 7 refused; 12,340 samples, last loss 0.1235');
  expect(await mp.textContent('[data-kpi="bodyUpdates"] .sub')).toBe('made, 2 refused by its intake; next after 140 of 500 samples');
  expect(await mp.textContent('[data-kpi="headShares"] .sub')).toBe('received (eq. 4), 1 refused');
  await mp.screenshot({ path: join(outDir, 'split-status-miner.png'), fullPage: true });
  // an error older than the clients' window is still shown, no longer in red; no client served reads so
  miner = { ...miner, split: { ...miner.split!, clients: [], lastError: { ...miner.split!.lastError!, at: now - 10 * 60_000 } } };
  await textMatches(mp, mf('clients'), 'none in the last 60 s (no client is training with this miner)');
  await textMatches(mp, mf('error'), /^batch from client-3, 10 min ago .*: REPLAY: /);
  expect(await classOf(mp, mf('error'))).toBe('');
  expect(await mp.getAttribute('[data-kpi="splitError"]', 'data-tone')).toBeNull();
  // none since the start: "none"
  miner = { ...miner, split: { ...miner.split!, lastError: null } };
  await textMatches(mp, '[data-kpi="splitError"] .value', 'none');
  expect(await mp.textContent(mf('error'))).toBe('none since the node started');
  expect(await mp.getAttribute('[data-kpi="splitError"]', 'data-tone')).toBe('good');
  await mp.close();

  // the client: 9 rounds, no error; then a round that failed with miner-2, after its last completed round
  const cp = await open(`${clientUrl}/`);
  const cf = (f: string) => `#split-client-kv dd[data-field="${f}"]`;
  await textMatches(cp, cf('rounds'), /^9 trained with a miner \(the last with miner-1, \d+ s ago, loss 0\.5000\), 0 failed$/);
  expect(await cp.textContent(cf('error'))).toBe('none since the node started');
  expect(await cp.textContent('[data-kpi="splitError"] .value')).toBe('none');
  expect(await cp.textContent('[data-kpi="uploaded"] .value')).toBe('9');
  expect(await cp.textContent('[data-kpi="uploaded"] .sub')).toMatch(/^0 failed; the last with miner-1, \d+ s ago, loss 0\.5000$/);
  client = { ...client, split: { ...client.split!, failed: 1, lastError: { what: 'round', code: 'UNAVAILABLE', message: 'miner-2 did not answer batch 3 within 10000 ms', peer: 'miner-2', at: now - 1_000 } } };
  await textMatches(cp, cf('error'), new RegExp(`^round with miner-2, \\d+ s ago \\(${at(now - 1_000)}\\): UNAVAILABLE: miner-2 did not answer batch 3 within 10000 ms$`));
  expect(await classOf(cp, cf('error'))).toBe('bad');
  expect(await cp.textContent('[data-kpi="splitError"] .value')).toBe('UNAVAILABLE');
  expect(await cp.getAttribute('[data-kpi="splitError"]', 'data-tone')).toBe('bad');
  expect(await cp.textContent(cf('rounds'))).toMatch(/, 1 failed$/);
  await cp.screenshot({ path: join(outDir, 'split-status-client.png'), fullPage: true });
  // a round completed since: the error stays, no longer in red
  client = { ...client, split: { ...client.split!, rounds: 10, lastRoundAt: Date.now() } };
  await textMatches(cp, '[data-kpi="uploaded"] .value', '10');
  expect(await cp.getAttribute('[data-kpi="splitError"]', 'data-tone')).toBeNull();
  expect(await classOf(cp, cf('error'))).toBe('');
  await cp.close();
});
