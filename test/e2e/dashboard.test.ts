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
import { Cluster, type Status } from '../helpers/cluster.ts';
import { grafanaMetricNames } from '../helpers/grafana.ts';

/** Debian's chromium first (.ci/run installs it); BFL_CHROMIUM names another build. */
const candidates = [process.env.BFL_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'].filter(Boolean) as string[];
const executable = candidates.find((p) => existsSync(p));
const outDir = new URL('../../out/test/dashboard/', import.meta.url).pathname;
if (!executable) console.warn(`dashboard browser test skipped: no Chromium at ${candidates.join(', ')}; install it (apt-get install -y chromium) or set BFL_CHROMIUM`);

let cluster: Cluster | undefined;
let browser: Browser | undefined;
afterAll(async () => {
  await browser?.close();
  await cluster?.stopAll();
});

const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
const int = (n: number) => n.toLocaleString('en-US');

/** Poll until what the page shows equals what /status says (both move while the network runs). */
async function shownMatches(page: Page, c: Cluster, id: string, kpi: string, expected: (s: Status) => string, timeoutMs = 30_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < until) {
    const before = (await page.textContent(`[data-kpi="${kpi}"] .value`))?.trim();
    const s = await c.status(id);
    const after = (await page.textContent(`[data-kpi="${kpi}"] .value`))?.trim();
    if (s) {
      last = `page ${before} / ${after}, status ${expected(s)}`;
      if (before === expected(s) || after === expected(s)) return expected(s);
    }
    await page.waitForTimeout(300);
  }
  throw new Error(`${id}: the ${kpi} on the page never matched /status (${last})`);
}

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
  const c = (cluster = await Cluster.create({ miners: 2, clients: 2, phi: 2 }));
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
