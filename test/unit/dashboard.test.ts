/**
 * The dashboard's routes on a real chain store (real ML-DSA signatures, mined blocks) behind the
 * real HTTP server: the page and its assets, /healthz, and the JSON of every /api route.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DashboardSource, createDashboard } from '../../src/api/dashboard.ts';
import { AccuracyLog, Sampler, UploadLog, sampleOf } from '../../src/api/history.ts';
import { EXPLORER_MEMO, Memo } from '../../src/api/explorer.ts';
import { startApi, stopApi } from '../../src/api/server.ts';
import type { ClientStatus, MinerStatus } from '../../src/api/status.ts';
import { ChainStore } from '../../src/chain/store.ts';
import { toHex } from '../../src/core/bytes.ts';
import { sha256 } from '../../src/core/hash.ts';
import type { AggregationTx } from '../../src/core/types.ts';
import type { ChainState } from '../../src/core/validation.ts';
import { InThreadVerifier } from '../../src/crypto/verifier.ts';
import { payloadToDelta } from '../../src/core/update.ts';
import { Metrics } from '../../src/util/metrics.ts';
import { makeNetwork, mineBlock, nextAggregation, signedRecord } from '../helpers/network.ts';
import { tmpDir } from '../helpers/tmp.ts';

const net = makeNetwork({ phi: 2, clients: 3 });
let store: ChainStore;
let server: Server;
let base: string;
let healthy = true;
const accuracy = new AccuracyLog();
const aggregations: { height: number; tx: AggregationTx }[] = [];
let dashboard: ReturnType<typeof createDashboard>;

const statusOf = (): MinerStatus => ({
  role: 'miner',
  id: 'miner-1',
  peerId: '12D3KooWself',
  height: store.tip.height,
  tip: toHex(store.tip.hash),
  work: store.tip.work.toString(),
  aggregations: store.tip.rounds - 1,
  pending: store.tip.pending.length,
  peers: 1,
  miners: ['miner-2'],
  pool: { unrecorded: 1, total: 5 },
  lastAccuracy: 0.5,
  flagged: [],
  hashRate: 1000,
  penalties: {},
  orphans: 0,
});

async function extend(n: number): Promise<void> {
  let p: ChainState = store.tip;
  for (let i = 0; i < n; i++) {
    const records = [signedRecord(net, net.clients[(p.height + i) % 3], net.miners[i % 2].id, p.modelHash)];
    const aggregation = nextAggregation(net, p, records);
    const b = mineBlock(net, p, net.miners[i % 2], { records, aggregation, timestamp: p.timestamp + 1000 });
    await store.addBlock(b);
    p = store.tip;
    if (aggregation) aggregations.push({ height: p.height, tx: aggregation });
  }
}

const modelHash = (m: Float32Array) => sha256(new Uint8Array(m.buffer, m.byteOffset, m.byteLength));
const get = (path: string, headers: Record<string, string> = {}) => fetch(`${base}${path}`, { headers });
const getJson = async (path: string) => {
  const r = await get(path);
  expect(r.status, path).toBe(200);
  return (await r.json()) as any;
};

beforeAll(async () => {
  store = await ChainStore.open({ datadir: await tmpDir('bfl-dash-'), params: net.params, signatures: new InThreadVerifier(), now: () => net.params.genesisTime + 1e9 });
  await extend(6); // records at every height, an aggregation every second block (ϕ = 2)
  // the miner evaluated the genesis model and the second aggregation only
  accuracy.note(payloadToDelta(net.params.initialModel), 0.1);
  accuracy.note(payloadToDelta(aggregations[1].tx.model), 0.8);
  const source: DashboardSource = {
    role: 'miner',
    id: 'miner-1',
    networkId: net.params.networkId,
    members: net.params.members.map((m) => ({ id: m.id, role: m.role })),
    status: statusOf,
    healthy: () => healthy,
    peers: () => [{ peer: '12D3KooWpeer', memberId: 'miner-2', role: 'miner', penalty: 10, banned: false }],
    chain: store,
    accuracyOf: accuracy.of,
  };
  dashboard = createDashboard(source, { sampleMs: 50, pushMs: 50 });
  server = await startApi({ host: '127.0.0.1', port: 0, status: statusOf, metrics: new Metrics(), dashboard });
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  dashboard?.close();
  if (server) await stopApi(server);
  await store?.close();
});

describe('dashboard routes', () => {
  it('serves the page and its assets from the project and node_modules (no CDN)', async () => {
    const page = await get('/');
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
    expect(assets).toEqual(expect.arrayContaining(['/assets/app.js', '/assets/style.css', '/assets/uPlot.iife.min.js', '/assets/uPlot.min.css']));
    for (const src of assets) {
      const r = await get(src);
      expect(r.status, src).toBe(200);
    }
    expect(html).not.toMatch(/https?:\/\//); // every asset is served by the node itself
    const uplot = await get('/assets/uPlot.iife.min.js');
    expect(uplot.headers.get('content-type')).toMatch(/javascript/);
    expect(await uplot.text()).toBe(readFileSync(fileURLToPath(import.meta.resolve('uplot/dist/uPlot.iife.min.js')), 'utf8'));
    expect((await get('/assets/../package.json')).status).toBe(404);
  });

  it('GET /healthz: 200 while healthy, 503 otherwise', async () => {
    healthy = true;
    const ok = await get('/healthz');
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ ok: true, id: 'miner-1', role: 'miner' });
    healthy = false;
    const down = await get('/healthz');
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ ok: false });
    healthy = true;
  });

  it('/api/node names the node, its build and the members', async () => {
    const n = await getJson('/api/node');
    expect(n).toMatchObject({ id: 'miner-1', role: 'miner', networkId: net.params.networkId, version: JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version });
    expect(n.commit).toMatch(/^([0-9a-f]{7,40}|unknown)$/);
    expect(n.members.map((m: { id: string }) => m.id).sort()).toEqual(net.params.members.map((m) => m.id).sort());
  });

  it('/api/blocks: canonical blocks newest first, paged with before', async () => {
    const { height, blocks } = await getJson('/api/blocks?limit=4');
    expect(height).toBe(store.tip.height);
    expect(blocks.map((b: { height: number }) => b.height)).toEqual([6, 5, 4, 3]);
    for (const b of blocks) expect(b.hash).toBe(await store.hashAt(b.height));
    expect(blocks.find((b: { height: number }) => b.height === 4).aggregation).toBe(2);
    expect(blocks.find((b: { height: number }) => b.height === 3).aggregation).toBeNull();
    const older = await getJson('/api/blocks?limit=10&before=3');
    expect(older.blocks.map((b: { height: number }) => b.height)).toEqual([2, 1, 0]);
  });

  it("/api/blocks/{height|hash}: a block's records and its aggregation", async () => {
    const { height, tx } = aggregations[1];
    const byHeight = await getJson(`/api/blocks/${height}`);
    const byHash = await getJson(`/api/blocks/${byHeight.hash}`);
    expect(byHash).toEqual(byHeight);
    const block = (await store.blockAt(height))!;
    const records = block.txs.filter((t) => t.type === 'record');
    expect(byHeight.recordList).toHaveLength(records.length);
    expect(byHeight.recordList[0]).toMatchObject({ clientId: records[0].clientId, minerId: records[0].minerId, digest: toHex(records[0].updateDigest), signatureBytes: 2420 });
    const a = byHeight.aggregationDetail;
    expect(a.round).toBe(tx.round);
    expect(a.modelHash).toBe(toHex(tx.modelHash));
    expect(a.entries).toEqual(tx.entries.map((e) => ({ clientId: e.clientId, digest: toHex(e.updateDigest), high: e.high, weight: e.weight })));
    expect(a.rewards.map((r: { id: string; units: string }) => [r.id, r.units])).toEqual(tx.rewards.map((r) => [r.id, r.amount.toString()]));
    expect(a.accuracy).toBe(0.8);
    expect(byHeight.canonical).toBe(true);
    expect(byHeight.coinbase.miner).toBe(block.header.minerId);
    const plain = await getJson('/api/blocks/1');
    expect(plain.aggregationDetail).toBeNull();
    const genesis = await getJson('/api/blocks/0');
    expect(genesis.genesis.networkId).toBe(net.params.networkId);
  });

  it('/api/blocks/{id}: unknown or malformed ids are a 404 that says what to give', async () => {
    for (const id of ['99', 'ab'.repeat(32), 'not-a-block']) {
      const r = await get(`/api/blocks/${id}`);
      expect(r.status).toBe(404);
      expect(((await r.json()) as any).error).toMatch(/height of the canonical chain or a 64-hex-digit block hash/);
    }
  });

  it('/api/aggregations: every round back to genesis, with labels, rewards and measured accuracy', async () => {
    const { aggregations: list } = await getJson('/api/aggregations');
    expect(list.map((a: { round: number }) => a.round)).toEqual([3, 2, 1, 0]);
    expect(list.map((a: { height: number }) => a.height)).toEqual([...aggregations.map((a) => a.height)].reverse().concat(0));
    expect(list.map((a: { accuracy: number | null }) => a.accuracy)).toEqual([null, 0.8, null, 0.1]);
    const r2 = list[1];
    const tx = aggregations[1].tx;
    expect(r2.updates).toBe(tx.entries.length);
    expect(Object.keys(r2.labels).sort()).toEqual([...new Set(tx.entries.map((e) => e.clientId))].sort());
    expect(r2.rewards).toEqual(Object.fromEntries(tx.rewards.map((r) => [r.id, Number(r.amount) / 1e6])));
    expect((await getJson('/api/aggregations?limit=2')).aggregations).toHaveLength(2);
  });

  it('/api/rewards: the ledger, largest first, equal to the store balances', async () => {
    const { ledger } = await getJson('/api/rewards');
    const balances = await store.balances();
    expect(ledger).toHaveLength(balances.size);
    for (const row of ledger) expect(row.units).toBe(balances.get(row.id)!.toString());
    expect(ledger.map((r: { tokens: number }) => r.tokens)).toEqual([...ledger.map((r: { tokens: number }) => r.tokens)].sort((a, b) => b - a));
    expect(ledger.find((r: { id: string }) => r.id === net.miners[0].id).role).toBe('miner');
  });

  it('JSON answers carry an ETag: unchanged is a 304, a new block a 200', async () => {
    const first = await get('/api/blocks?limit=3');
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^".+"$/);
    expect((await get('/api/blocks?limit=3', { 'if-none-match': etag })).status).toBe(304);
    await extend(1);
    const after = await get('/api/blocks?limit=3', { 'if-none-match': etag });
    expect(after.status).toBe(200);
    expect(((await after.json()) as any).blocks[0].height).toBe(store.tip.height);
  });

  it('/api/events pushes the status as Server-Sent Events, again when it changes', async () => {
    const ac = new AbortController();
    const r = await fetch(`${base}/api/events`, { signal: ac.signal });
    expect(r.headers.get('content-type')).toBe('text/event-stream');
    const reader = r.body!.getReader();
    let text = '';
    const events = () => [...text.matchAll(/event: status\ndata: (.+)\n\n/g)].map((m) => JSON.parse(m[1]));
    const until = Date.now() + 10_000;
    const before = store.tip.height;
    let extended = false;
    while (Date.now() < until) {
      text += new TextDecoder().decode((await reader.read()).value);
      if (events().length >= 1 && !extended) {
        extended = true;
        await extend(1);
      }
      if (events().some((e) => e.height === before + 1)) break;
    }
    ac.abort();
    expect(events()[0]).toEqual(JSON.parse(JSON.stringify({ ...statusOf(), height: before, tip: events()[0].tip, work: events()[0].work, aggregations: events()[0].aggregations, pending: events()[0].pending })));
    expect(events().at(-1).height).toBe(before + 1);
  });

  it('/api/series and /api/peers', async () => {
    await new Promise((r) => setTimeout(r, 120));
    const s = await getJson('/api/series');
    expect(s.intervalMs).toBe(50);
    expect(s.t.length).toBeGreaterThanOrEqual(2);
    expect(s.series.height).toHaveLength(s.t.length);
    expect(s.series.height.at(-1)).toBe(store.tip.height);
    const p = await getJson('/api/peers');
    expect(p.peers[0]).toMatchObject({ memberId: 'miner-2', penalty: 10 });
    expect(p.members.map((m: { id: string }) => m.id)).not.toContain('miner-1');
  });

  it('the server keeps its own routes; a miss lists every route', async () => {
    expect((await getJson('/status')).id).toBe('miner-1');
    const miss = await get('/api/nothing');
    expect(miss.status).toBe(404);
    expect(((await miss.json()) as any).routes).toEqual(expect.arrayContaining(['/status', '/metrics', '/', '/healthz', '/api/blocks', '/api/aggregations']));
    expect((await get('/api/uploads')).status).toBe(404); // clients only
  });
});

describe('dashboard history', () => {
  it('sampleOf: the plotted numbers of a miner and of a client', () => {
    const m: MinerStatus = { role: 'miner', id: 'm', peerId: 'p', height: 3, tip: '00', work: '9', aggregations: 1, pending: 2, peers: 4, miners: [], pool: { unrecorded: 2, total: 4 }, lastAccuracy: null, flagged: [], hashRate: 5, penalties: {}, orphans: 0 };
    expect(sampleOf(m)).toEqual({ height: 3, aggregations: 1, pending: 2, peers: 4, hashRate: 5, lastAccuracy: null, orphans: 0, unrecorded: 2 });
    const c: ClientStatus = { role: 'client', id: 'c', peerId: 'p', round: 2, anchor: '00', modelHash: '00', lastAccuracy: 0.5, trained: 5, uploaded: 4, buffered: 0, lastUpload: null, lastAveragedUpload: null, balance: '2500000', miners: { 'miner-1': 12.5, 'miner-2': null }, nearest: 'miner-1', freshSamples: 7, attack: 'none' };
    expect(sampleOf(c)).toEqual({ round: 2, trained: 5, uploaded: 4, buffered: 0, lastAccuracy: 0.5, freshSamples: 7, balance: 2.5, 'rtt:miner-1': 12.5, 'rtt:miner-2': null });
    expect(sampleOf({ ...c, balance: null }).balance).toBeNull();
  });

  it('Sampler: a late quantity is null before it appears; the oldest samples go first', () => {
    const s = new Sampler({ intervalMs: 1000, capacity: 3 });
    s.add(1, { a: 1 });
    s.add(2, { a: 2, b: 20 });
    expect(s.toJSON().series).toEqual({ a: [1, 2], b: [null, 20] });
    s.add(3, { a: 3 });
    s.add(4, { a: 4, b: 40 });
    expect(s.toJSON()).toEqual({ intervalMs: 1000, t: [2, 3, 4], series: { a: [2, 3, 4], b: [20, null, 40] } });
  });

  it('AccuracyLog keys by the chain model hash; UploadLog keeps the newest', () => {
    const log = new AccuracyLog(2);
    const model = new Float32Array([1, 2, 3]);
    log.note(model, 0.5);
    expect(log.of(toHex(aggregations[0].tx.modelHash))).toBeUndefined();
    expect(log.of(toHex(modelHash(model)))).toBe(0.5);
    log.note(new Float32Array([4]), 0.6);
    log.note(new Float32Array([5]), 0.7);
    expect(log.of(toHex(modelHash(model)))).toBeUndefined(); // bounded
    const u = new UploadLog(2);
    for (let i = 0; i < 3; i++) u.note({ at: i, miner: 'm', digest: String(i), samples: 1, averaged: 1 });
    expect(u.list().map((e) => e.digest)).toEqual(['1', '2']);
  });

  it("the explorer's memos hold at most their bound, the oldest summary going first (issue 13)", () => {
    const memo = new Memo<number>(3);
    for (let i = 0; i < 5; i++) memo.set(`h${i}`, i);
    expect(memo.size).toBe(3);
    expect(memo.get('h1')).toBeUndefined();
    expect([memo.get('h2'), memo.get('h3'), memo.get('h4')]).toEqual([2, 3, 4]);
    // the largest page the API serves (/api/blocks limit 500, /api/aggregations 5000) fits, so
    // polling it again reads no block
    expect(EXPLORER_MEMO.blocks).toBeGreaterThanOrEqual(500);
    expect(EXPLORER_MEMO.aggregations).toBeGreaterThanOrEqual(5000);
  });
});
