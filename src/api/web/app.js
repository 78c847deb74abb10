// The dashboard page: plain JavaScript, no build step. Reads the node's JSON routes (/api/...),
// follows the status over Server-Sent Events (/api/events) and draws charts with uPlot, which
// the node serves from node_modules (no CDN: the page works offline).
'use strict';

(() => {
  const $ = (sel, root = document) => root.querySelector(sel);

  /** Build an element: h('td', { class: 'num' }, 'text', childNode...). */
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'style') e.style.cssText = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) e.append(c instanceof Node ? c : String(c));
    return e;
  }

  const fmt = {
    int: (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US')),
    pct: (x) => (x === null || x === undefined ? '–' : `${(x * 100).toFixed(2)} %`),
    tokens: (x) => (x === null || x === undefined ? '–' : Number(x).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })),
    rate: (r) => (r === null || r === undefined ? '–' : r >= 1e6 ? `${(r / 1e6).toFixed(2)} MH/s` : r >= 1e3 ? `${(r / 1e3).toFixed(1)} kH/s` : `${Math.round(r)} H/s`),
    short: (hex, n = 10) => (hex ? `${hex.slice(0, n)}…` : '–'),
    // ε as `bfl-node status` prints it (4 significant digits); null: no noise, no bound
    epsDelta: (a) => `(${a.epsilon === null ? '∞, no noise' : Number(a.epsilon).toPrecision(4)}, ${a.delta})`,
    ms: (x) => (x === null || x === undefined ? '–' : `${x < 10 ? x.toFixed(1) : Math.round(x)} ms`),
    time: (ms) => new Date(ms).toLocaleTimeString('en-GB', { hour12: false }),
    // a loss as `bfl-node status` prints it
    loss: (x) => (typeof x === 'number' ? x.toFixed(4) : '–'),
    utc: (ms) => `${new Date(ms).toISOString().slice(11, 19)} UTC`,
    ago(ms) {
      const s = Math.max(0, (Date.now() - ms) / 1000);
      return s < 60 ? `${Math.round(s)} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : `${(s / 3600).toFixed(1)} h ago`;
    },
  };

  // Colour-blind-friendlier order (Okabe-Ito first), then more hues for larger networks.
  const PALETTE = ['#0072b2', '#e69f00', '#009e73', '#d55e00', '#cc79a7', '#56b4e9', '#8c6d1f', '#5d6d7e', '#7b3fb5', '#c0392b', '#16a085', '#2c3e50'];
  const colourOf = (i) => PALETTE[i % PALETTE.length];

  async function getJson(url) {
    // no-cache: revalidate with the ETag every time; an unchanged answer is a 304
    const r = await fetch(url, { cache: 'no-cache' });
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    return r.json();
  }

  // ---- charts ----

  // Axis steps for counts (rounds, updates): whole numbers only.
  const COUNT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];

  /** A uPlot chart that keeps its instance while the set of series stays the same. */
  class Chart {
    constructor(container, o) {
      this.c = container;
      this.o = o; // { xTime, yFormat, yRange, xLabel, points }
      this.u = null;
      this.key = '';
      new ResizeObserver(() => this.u && this.u.setSize({ width: this.width(), height: 240 })).observe(container);
    }

    width() {
      return Math.max(280, this.c.clientWidth);
    }

    /** x: numbers; ys: [{ label, values, scale? }] aligned with x. */
    set(x, ys, emptyText) {
      const points = ys.reduce((n, s) => n + s.values.filter((v) => v !== null && v !== undefined).length, 0);
      this.c.dataset.points = String(points);
      if (points === 0) {
        if (this.u) this.u.destroy();
        this.u = null;
        this.key = '';
        this.c.replaceChildren(h('div', { class: 'empty' }, emptyText || 'no data yet'));
        return;
      }
      const key = ys.map((s) => `${s.label}/${s.scale || 'y'}`).join('|');
      const data = [x, ...ys.map((s) => s.values)];
      if (this.u && key === this.key) {
        this.u.setData(data);
        return;
      }
      if (this.u) this.u.destroy();
      this.c.replaceChildren();
      this.key = key;
      const o = this.o;
      const scales = { x: { time: !!o.xTime } };
      if (o.yRange) scales.y = { range: o.yRange };
      const axes = [
        {
          label: o.xLabel,
          labelSize: o.xLabel ? 22 : 0,
          stroke: '#6a7585',
          grid: { stroke: '#eef1f5' },
          ticks: { stroke: '#e3e8ef' },
          // 24-hour clock times; rounds are whole numbers
          ...(o.xTime ? { values: (u, vals, ax, space, incr) => vals.map((v) => new Date(v * 1000).toLocaleTimeString('en-GB', { hour12: false, hour: '2-digit', minute: '2-digit', ...(incr < 60 ? { second: '2-digit' } : {}) })) } : { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }),
        },
        { label: o.yLabel, labelSize: o.yLabel ? 18 : 0, stroke: '#6a7585', grid: { stroke: '#eef1f5' }, ticks: { stroke: '#e3e8ef' }, size: 56, values: o.yAxisFormat || o.yFormat ? (u, vals) => vals.map(o.yAxisFormat || o.yFormat) : undefined, ...(o.yCounts ? { incrs: COUNT_STEPS } : {}) },
      ];
      if (ys.some((s) => s.scale === 'y2')) {
        scales.y2 = { range: (u, min, max) => [0, Math.max(1, max * 1.1)] };
        axes.push({ scale: 'y2', side: 1, stroke: '#6a7585', grid: { show: false }, size: 50, label: o.y2Label, labelSize: 18, incrs: COUNT_STEPS });
      }
      this.u = new uPlot(
        {
          width: this.width(),
          height: 240,
          scales,
          axes,
          legend: { live: true },
          cursor: { drag: { x: false, y: false } },
          series: [
            { label: o.xLabel || 'time', value: (u, v) => (v === null || v === undefined ? '–' : o.xTime ? fmt.time(v * 1000) : `round ${v}`) },
            ...ys.map((s, i) => ({
              label: s.label,
              scale: s.scale || 'y',
              stroke: s.colour || colourOf(i),
              width: 2,
              spanGaps: true,
              points: { show: o.points !== false, size: 5 },
              fill: ys.length === 1 && o.fill ? `${s.colour || colourOf(i)}1a` : undefined,
              value: (u, v) => (v === null || v === undefined ? '–' : o.yFormat && (s.scale || 'y') === 'y' ? o.yFormat(v) : Number(v).toLocaleString('en-US', { maximumFractionDigits: 2 })),
            })),
          ],
        },
        data,
        this.c,
      );
    }
  }

  // ---- KPI cards ----

  const kpiEls = new Map();
  function kpi(key, label, value, sub, tone) {
    let e = kpiEls.get(key);
    if (!e) {
      e = h('div', { class: 'kpi', 'data-kpi': key }, h('div', { class: 'label' }, label), h('div', { class: 'value' }), h('div', { class: 'sub' }));
      $('#kpis').append(e);
      kpiEls.set(key, e);
    }
    $('.value', e).textContent = value;
    $('.value', e).title = value;
    $('.sub', e).textContent = sub || '\u00a0';
    $('.sub', e).title = sub || '';
    if (tone) e.dataset.tone = tone;
    else delete e.dataset.tone;
  }

  // ---- state ----

  let node = null; // /api/node
  let status = null; // latest /status
  let peerInfo = { peers: [], members: [] };
  const charts = {};
  let lastHeight = -1;
  let lastUploaded = -1;
  let selected = null; // block hash shown in the explorer
  let followNewest = true; // until the reader picks a block, show the newest aggregation block

  // ---- miner ----

  function renderMinerKpis(s) {
    kpi('height', 'Height', fmt.int(s.height), `tip ${fmt.short(s.tip, 12)}`);
    kpi('aggregations', 'Aggregations', fmt.int(s.aggregations), `${fmt.int(s.pending)} updates pending`);
    // split mode (/status has `split`): a miner holds no head, so it evaluates no model
    kpi('accuracy', 'Model accuracy', fmt.pct(s.lastAccuracy), s.split && s.lastAccuracy === null ? 'split: no head here, clients evaluate theirs' : 'newest model, test set');
    kpi('hashrate', 'Hash rate', fmt.rate(s.hashRate), 'last proof-of-work job');
    kpi('peers', 'Peers', fmt.int(s.peers), s.miners && s.miners.length ? `miners: ${s.miners.join(', ')}` : 'no miner connected', s.miners && s.miners.length ? undefined : 'bad');
    kpi('pool', 'Unrecorded', fmt.int(s.pool ? s.pool.unrecorded : null), s.pool ? `${fmt.int(s.pool.total)} in the update pool` : '');
    const flagged = [...new Set(s.flagged || [])];
    kpi('flagged', 'Labelled low', fmt.int(flagged.length), flagged.length ? flagged.join(', ') : 'none in the last aggregation', flagged.length ? 'bad' : 'good');
    const pens = Object.entries(s.penalties || {});
    kpi('penalties', 'Penalties', fmt.int(pens.reduce((n, [, v]) => n + v, 0)), pens.length ? pens.map(([k, v]) => `${k} ${v}`).join(', ') : 'no peer penalised', pens.length ? 'bad' : undefined);
    if (s.split) {
      const sp = s.split;
      kpi('mode', 'Learning mode', 'split', 'trains the body; heads stay on clients');
      kpi('clients', 'Split clients', fmt.int(sp.clients.length), sp.clients.length ? `in the last ${windowOf(sp)}: ${listed(sp.clients)}` : `none in the last ${windowOf(sp)}`);
      kpi('body', 'Client batches', fmt.int(sp.batches), `answered, ${fmt.int(sp.refused)} refused; ${fmt.int(sp.samples)} samples, last loss ${fmt.loss(sp.lastLoss)}`);
      kpi('bodyUpdates', 'Body updates', fmt.int(sp.bodyUpdates), `made, ${fmt.int(sp.bodyUpdatesRefused)} refused by its intake; next after ${fmt.int(sp.sinceUpdate)} of ${fmt.int(sp.samplesPerUpdate)} samples`);
      kpi('headShares', 'Head shares', fmt.int(sp.headShares), `received (eq. 4), ${fmt.int(sp.headSharesRefused)} refused`);
      splitErrorKpi(s, 'miner');
    }
  }

  // ---- split mode: what /status's `split` says, worded as `bfl-node status` prints it ----

  const windowOf = (sp) => `${Math.round(sp.clientWindowMs / 1000)} s`;
  // the first 8, as `bfl-node status` prints them
  const listed = (ids) => (ids.length > 8 ? `${ids.slice(0, 8).join(', ')}, … (${ids.length - 8} more)` : ids.join(', '));

  /** An error's other end: a miner hears from a client; a client's round is with a miner, its head share goes to one. */
  const errorPeer = (e, role) => (e.peer ? (role === 'miner' ? ` from ${e.peer}` : e.what === 'round' ? ` with ${e.peer}` : ` to ${e.peer}`) : '');

  /** /status `split.lastError` (SplitError) as one line: what, with whom, how long ago, code and message. */
  const splitError = (e, role) => (e ? `${e.what}${errorPeer(e, role)}, ${fmt.ago(e.at)} (${fmt.utc(e.at)}): ${e.code}: ${e.message}` : 'none since the node started');

  /** Whether the newest split error still matters: a miner's within its clients' window (the span it calls recent for
   * the clients it serves); a client's when no round has completed since (it is still failing). Shown in red. */
  function errorIsRecent(s) {
    const e = s.split.lastError;
    if (!e) return false;
    return s.role === 'miner' ? Date.now() - e.at < s.split.clientWindowMs : s.split.lastRoundAt === null || e.at >= s.split.lastRoundAt;
  }

  /** The newest split error as a key figure. */
  function splitErrorKpi(s, role) {
    const e = s.split.lastError;
    kpi('splitError', 'Split error', e ? e.code : 'none', e ? `${e.what}${errorPeer(e, role)}, ${fmt.ago(e.at)}: ${e.message}` : 'none since the node started', e ? (errorIsRecent(s) ? 'bad' : undefined) : 'good');
  }

  /** Rows of a definition list: [data-field, term, value]. */
  const kvRows = (rows) => rows.flatMap(([key, k, v]) => [h('dt', {}, k), h('dd', { 'data-field': key, title: v }, v)]);

  /** The miner's "Split learning" card: the rows of `bfl-node status` for a split miner. */
  function renderSplitMiner(s) {
    const sp = s.split;
    const low = (s.flagged || []).includes(s.id) ? '; labelled low in the newest aggregation' : '';
    $('#split-miner-kv').replaceChildren(
      ...kvRows([
        ['clients', 'split clients', sp.clients.length ? `${sp.clients.length} trained with it in the last ${windowOf(sp)}: ${listed(sp.clients)}` : `none in the last ${windowOf(sp)} (no client is training with this miner)`],
        ['batches', 'split batches', `${fmt.int(sp.batches)} answered (${fmt.int(sp.samples)} samples, last loss ${fmt.loss(sp.lastLoss)}), ${fmt.int(sp.refused)} refused`],
        ['bodyUpdates', 'body updates', `${fmt.int(sp.bodyUpdates)} made, ${fmt.int(sp.bodyUpdatesRefused)} refused by its intake; the next after ${fmt.int(sp.sinceUpdate)} of ${fmt.int(sp.samplesPerUpdate)} samples${low}`],
        ['headShares', 'head shares', `${fmt.int(sp.headShares)} received (eq. 4), ${fmt.int(sp.headSharesRefused)} refused`],
        ['error', 'split error', splitError(sp.lastError, 'miner')],
      ]),
    );
    $('#split-miner-kv dd[data-field="error"]').classList.toggle('bad', errorIsRecent(s));
  }

  /** A split client's rounds line, as `bfl-node status` prints it (the time as an age). */
  const splitRounds = (sp) => `${fmt.int(sp.rounds)} trained with a miner${sp.rounds > 0 ? ` (the last with ${sp.miner}, ${fmt.ago(sp.lastRoundAt)}, loss ${fmt.loss(sp.lastLoss)})` : ' (no miner has answered a round yet)'}, ${fmt.int(sp.failed)} failed`;

  // one refresh of the chain views at a time; a request while one runs is served once it ends
  let chainBusy = null;
  let chainAgain = false;
  function refreshChain() {
    if (chainBusy) {
      chainAgain = true;
      return chainBusy;
    }
    chainBusy = loadChain()
      .catch((e) => console.warn(e))
      .finally(() => {
        chainBusy = null;
        if (chainAgain) {
          chainAgain = false;
          refreshChain();
        }
      });
    return chainBusy;
  }

  async function loadChain() {
    const [aggs, blocks, rewards] = await Promise.all([getJson('/api/aggregations?limit=300'), getJson('/api/blocks?limit=30'), getJson('/api/rewards')]);
    renderAccuracy(aggs.aggregations);
    renderRewards(aggs.aggregations);
    renderLabels(aggs.aggregations);
    renderLedger(rewards.ledger);
    renderBlocks(blocks.blocks);
  }

  // split mode: the updates on chain are the miners' body updates, so the labels and rewards are theirs
  const updaterRole = () => (status && status.split ? 'miner' : 'client');
  const updaterIds = () => (node ? node.members.filter((m) => m.role === updaterRole()).map((m) => m.id).sort() : []);

  function renderAccuracy(aggs) {
    const asc = [...aggs].reverse();
    charts.accuracy.set(asc.map((a) => a.round), [{ label: 'test accuracy', values: asc.map((a) => a.accuracy), colour: '#0072b2' }], 'no aggregation evaluated yet');
  }

  function renderRewards(aggs) {
    const asc = [...aggs].reverse().filter((a) => a.round > 0);
    const ids = updaterIds();
    $('#rewards-who').textContent = updaterRole();
    const sums = Object.fromEntries(ids.map((id) => [id, 0]));
    const cols = Object.fromEntries(ids.map((id) => [id, []]));
    for (const a of asc) for (const id of ids) cols[id].push((sums[id] += a.rewards[id] || 0));
    charts.rewards.set(asc.map((a) => a.round), ids.map((id) => ({ label: id, values: cols[id] })), 'no rewards paid yet');
  }

  function renderLabels(aggs) {
    const rounds = [...aggs].reverse().filter((a) => a.round > 0).slice(-36);
    const box = $('#labels');
    if (rounds.length === 0) {
      box.replaceChildren(h('div', { class: 'muted' }, 'no aggregation yet'));
      return;
    }
    const head = h('tr', {}, h('th', {}, 'round'), rounds.map((a) => h('th', {}, a.round % 5 === 0 || rounds.length <= 12 ? a.round : '')));
    const rows = updaterIds().map((id) =>
      h('tr', {}, h('th', {}, id), rounds.map((a) => {
        const l = a.labels[id];
        return h('td', { class: l || '', title: `round ${a.round}: ${id} ${l || 'sent no update'}` });
      })),
    );
    const lowCount = rounds.reduce((n, a) => n + a.low.length, 0);
    box.replaceChildren(
      h('table', {}, h('thead', {}, head), h('tbody', {}, rows)),
      h('div', { class: 'legend' }, h('span', {}, h('i', { style: 'background:#4cbf7f' }), 'high'), h('span', {}, h('i', { style: 'background:#e05a5a' }), 'low'), h('span', {}, h('i', { style: 'background:#f2b544' }), 'both (several updates)'), h('span', {}, h('i', { style: 'background:#f0f2f5' }), 'no update'), h('span', {}, `${lowCount} low label${lowCount === 1 ? '' : 's'} in the last ${rounds.length} rounds`)),
    );
  }

  function renderLedger(ledger) {
    const max = Math.max(1e-9, ...ledger.map((r) => r.tokens));
    $('#ledger tbody').replaceChildren(
      ...ledger.map((r) => h('tr', {}, h('td', {}, r.id), h('td', {}, h('span', { class: 'chip' }, r.role)), h('td', { class: 'num' }, fmt.tokens(r.tokens)), h('td', {}, h('div', { class: `bar ${r.role}`, style: `width:${(100 * r.tokens) / max}%` })))),
    );
    if (ledger.length === 0) $('#ledger tbody').replaceChildren(h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'nothing paid yet')));
  }

  function renderBlocks(blocks) {
    if (followNewest) {
      const agg = blocks.find((b) => b.aggregation !== null && b.aggregation > 0);
      const pick = (agg || blocks[0] || {}).hash;
      if (pick && pick !== selected) selectBlock(pick, false);
    }
    $('#blocks tbody').replaceChildren(
      ...blocks.map((b) =>
        h(
          'tr',
          { 'data-hash': b.hash, class: b.hash === selected ? 'selected' : '', onclick: () => selectBlock(b.hash, true) },
          h('td', { class: 'num' }, fmt.int(b.height)),
          h('td', { class: 'mono' }, fmt.short(b.hash, 12)),
          h('td', {}, b.miner),
          h('td', { class: 'muted', 'data-ts': b.timestamp }, fmt.ago(b.timestamp)),
          h('td', { class: 'num' }, b.records),
          h('td', {}, b.aggregation !== null ? h('span', { class: 'chip agg' }, `round ${b.aggregation}`) : ''),
        ),
      ),
    );
  }

  async function selectBlock(hash, byReader) {
    if (byReader) {
      followNewest = false;
      history.replaceState(null, '', `#block=${hash}`);
    }
    selected = hash;
    for (const tr of document.querySelectorAll('#blocks tbody tr')) tr.classList.toggle('selected', tr.dataset.hash === hash);
    try {
      renderBlock(await getJson(`/api/blocks/${hash}`));
    } catch (e) {
      $('#block-detail').replaceChildren(h('p', { class: 'muted' }, `block ${fmt.short(hash)}: ${e.message}`));
    }
  }

  function kv(pairs) {
    return h('dl', { class: 'kv' }, pairs.flatMap(([k, v, cls]) => [h('dt', {}, k), h('dd', { class: cls || '', title: typeof v === 'string' ? v : '' }, v)]));
  }

  function renderBlock(b) {
    const a = b.aggregationDetail;
    const parts = [
      h('h3', {}, `Block ${fmt.int(b.height)} `, a ? h('span', { class: 'chip agg' }, `aggregation round ${a.round}`) : '', b.canonical ? '' : h('span', { class: 'chip off' }, 'not canonical'), b.acceptedOnWork ? h('span', { class: 'chip', title: 'aggregation taken on the proof of work built on it while syncing; its updates were pruned' }, 'accepted on work') : ''),
      kv([
        ['hash', b.hash, 'mono'],
        ['parent', b.prevHash, 'mono'],
        ['miner', b.miner],
        ['time', `${new Date(b.timestamp).toISOString().replace('T', ' ').slice(0, 19)} UTC (${fmt.ago(b.timestamp)})`],
        ['size', `${fmt.int(b.bytes)} bytes, block signature ${fmt.int(b.signatureBytes)} bytes (ML-DSA-44)`],
        ['difficulty · nonce', `${fmt.int(b.difficulty)} · ${fmt.int(b.nonce)}`],
        ['merkle root', b.merkleRoot, 'mono'],
        ...(b.coinbase ? [['coinbase', `${fmt.tokens(b.coinbase.tokens)} tokens to ${b.coinbase.miner}`]] : []),
        ...(b.genesis ? [['genesis', `network ${b.genesis.networkId}, parameters ${fmt.short(b.genesis.paramsDigest, 16)}`]] : []),
      ]),
      h('h4', {}, `Records (${b.recordList.length})`),
      b.recordList.length
        ? h(
            'table',
            { class: 'table', 'data-section': 'records' },
            h('thead', {}, h('tr', {}, ['client', 'miner', 'update digest', 'base model', 'signature', 'samples'].map((t, i) => h('th', { class: i >= 4 ? 'num' : '' }, t)))),
            h('tbody', {}, b.recordList.map((r) => h('tr', {}, h('td', {}, r.clientId), h('td', {}, r.minerId), h('td', { class: 'mono', title: r.digest }, fmt.short(r.digest, 16)), h('td', { class: 'mono', title: r.baseModelHash }, fmt.short(r.baseModelHash, 10)), h('td', { class: 'num' }, `${fmt.int(r.signatureBytes)} B`), h('td', { class: 'num' }, fmt.int(r.sampleCount))))),
          )
        : h('p', { class: 'muted' }, 'no update records in this block'),
    ];
    if (a) {
      const rewardOf = Object.fromEntries(a.rewards.map((r) => [r.id, r.tokens]));
      const maxW = Math.max(1e-9, ...a.entries.map((e) => e.weight));
      const shown = new Set();
      parts.push(
        h('h4', {}, `Aggregation — round ${a.round}`),
        kv([
          ['global model', a.modelHash, 'mono'],
          ['built on', a.baseModelHash, 'mono'],
          ['parameters', fmt.int(a.parameters)],
          ['test accuracy', fmt.pct(a.accuracy)],
          ['updates', `${a.entries.length}: ${a.entries.filter((e) => e.high).length} high, ${a.entries.filter((e) => !e.high).length} low`],
        ]),
        a.entries.length
          ? h(
              'table',
              { class: 'table', 'data-section': 'aggregation' },
              h('thead', {}, h('tr', {}, h('th', {}, 'client'), h('th', {}, 'update digest'), h('th', {}, 'label'), h('th', {}, 'weight'), h('th', { class: 'num' }, 'reward'))),
              h(
                'tbody',
                {},
                a.entries.map((e) => {
                  const first = !shown.has(e.clientId);
                  shown.add(e.clientId);
                  return h(
                    'tr',
                    {},
                    h('td', {}, e.clientId),
                    h('td', { class: 'mono', title: e.digest }, fmt.short(e.digest, 16)),
                    h('td', {}, h('span', { class: `chip ${e.high ? 'high' : 'low'}` }, e.high ? 'high' : 'low')),
                    h('td', {}, h('div', { class: 'weight' }, h('div', { class: 'bar', style: `width:${Math.round((90 * e.weight) / maxW)}px` }), e.weight.toFixed(4))),
                    h('td', { class: 'num' }, first && rewardOf[e.clientId] !== undefined ? fmt.tokens(rewardOf[e.clientId]) : first ? '0.00' : ''),
                  );
                }),
              ),
            )
          : h('p', { class: 'muted' }, 'the initial global model (no updates)'),
      );
    }
    $('#block-detail').replaceChildren(...parts);
  }

  function renderPeersMiner() {
    const byMember = new Map(peerInfo.peers.filter((p) => p.memberId).map((p) => [p.memberId, p]));
    const pens = (status && status.penalties) || {};
    const rows = peerInfo.members.map((m) => {
      const p = byMember.get(m.id);
      const pen = pens[m.id] || (p && p.penalty) || 0;
      return h('tr', {}, h('td', {}, m.id), h('td', {}, h('span', { class: 'chip' }, m.role)), h('td', {}, p ? h('span', { class: `chip ${p.banned ? 'off' : 'ok'}` }, p.banned ? 'banned' : 'connected') : h('span', { class: 'muted' }, m.role === 'client' ? 'not connected (clients dial in)' : 'not connected')), h('td', { class: 'num' }, pen ? h('b', { style: 'color:#d64545' }, pen) : '0'));
    });
    $('#peers tbody').replaceChildren(...rows);
    const memberIds = new Set(peerInfo.members.map((m) => m.id));
    const others = Object.entries(pens).filter(([k]) => !memberIds.has(k));
    const anonymous = peerInfo.peers.filter((p) => !p.memberId).length;
    $('#penalties-other').textContent = [anonymous ? `${anonymous} connection${anonymous === 1 ? '' : 's'} not (yet) identified as a member` : '', others.length ? `penalised outsiders: ${others.map(([k, v]) => `${fmt.short(k, 14)} ${v}`).join(', ')}` : ''].filter(Boolean).join(' · ');
  }

  function renderMiningSeries(sr) {
    const x = sr.t.map((t) => t / 1000);
    charts.mining.set(x, [
      { label: 'hash rate (H/s)', values: sr.series.hashRate || [], colour: '#0072b2' },
      { label: 'unrecorded updates', values: sr.series.unrecorded || [], scale: 'y2', colour: '#e69f00' },
    ]);
  }

  // ---- client ----

  function renderClientKpis(s) {
    // split mode: `uploaded` counts rounds trained with a miner and the accuracy is the client's
    // own head on the global body (src/api/status.ts); nothing is buffered
    const split = s.mode === 'split';
    kpi('round', 'Global round', fmt.int(s.round), `model ${fmt.short(s.modelHash, 12)}`);
    kpi('accuracy', 'Held-out accuracy', fmt.pct(s.lastAccuracy), split ? 'own head on the global body' : 'global model, own data');
    if (split && s.split) kpi('uploaded', 'Split rounds', fmt.int(s.split.rounds), `${fmt.int(s.split.failed)} failed${s.split.rounds > 0 ? `; the last with ${s.split.miner}, ${fmt.ago(s.split.lastRoundAt)}, loss ${fmt.loss(s.split.lastLoss)}` : '; no miner has answered a round yet'}`, s.split.rounds === 0 && s.split.failed > 0 ? 'bad' : undefined);
    else if (split) kpi('uploaded', 'Split rounds', fmt.int(s.uploaded), 'local rounds trained with a miner');
    else kpi('uploaded', 'Uploaded', fmt.int(s.uploaded), `${fmt.int(s.trained)} local updates trained`);
    if (!split) kpi('buffered', 'Buffered', fmt.int(s.buffered), s.buffered ? 'waiting for a reachable miner' : 'nothing waiting', s.buffered ? 'bad' : undefined);
    kpi('balance', 'Balance', s.balance === null ? '–' : fmt.tokens(Number(s.balance) / 1e6), 'tokens earned');
    kpi('nearest', split ? 'Trains with' : 'Uploads to', s.nearest || 'no miner', s.nearest ? `RTT ${fmt.ms(s.miners[s.nearest])}` : split ? 'none reachable: samples wait' : 'none reachable: buffering', s.nearest ? undefined : 'bad');
    kpi('fresh', 'Fresh samples', fmt.int(s.freshSamples), 'since the last round');
    if (s.attack && s.attack !== 'none') kpi('attack', 'Attack injected', s.attack, 'experiment: this client misbehaves', 'bad');
    if (split) {
      const hs = s.headSharing;
      kpi('mode', 'Learning mode', 'split', hs ? `head shared every ${plural(hs.every, 'local round')} (eq. 4)` : 'private head, never shared');
      kpi('head', 'Head shares', hs ? fmt.int(hs.shares) : 'none', hs ? `(ε, δ) = ${fmt.epsDelta(hs)}` : 'private head, never shared', hs ? undefined : 'good');
      if (s.split) splitErrorKpi(s, 'client');
    }
  }

  const plural = (n, what) => (n === 1 ? `${what}` : `${fmt.int(n)} ${what}s`);

  /** The split-learning card: what /status's `split` says of its rounds and `headSharing` of eq. 4 and its privacy account. */
  function renderSplitClient(s) {
    const hs = s.headSharing;
    const sp = s.split;
    const rows = [
      ['mode', 'mode', 'split: the head trains here, the body on the miners'],
      ...(sp
        ? [
            ['rounds', 'split rounds', splitRounds(sp)],
            ['error', 'split error', splitError(sp.lastError, 'client')],
          ]
        : []),
      ['head', 'head', hs ? 'shared (eq. 4): clipped, noised, aggregated on chain' : 'private head, never shared'],
      ...(hs
        ? [
            ['shares', 'shares so far', fmt.int(hs.shares)],
            ['every', 'shares', `every ${plural(hs.every, 'local round')}`],
            ['clip', 'clip', `C = ${hs.clip} (L2 norm of a shared head update)`],
            ['noise', 'noise', `z = ${hs.noise}, σ = z·C = ${Number((hs.noise * hs.clip).toPrecision(4))} per coordinate`],
            ['privacy', '(ε, δ)', fmt.epsDelta(hs)],
          ]
        : [['privacy', '(ε, δ)', 'nothing released']]),
    ];
    $('#split-client-kv').replaceChildren(...kvRows(rows));
    if (sp) $('#split-client-kv dd[data-field="error"]').classList.toggle('bad', errorIsRecent(s));
  }

  function renderMinersTable(s) {
    const connected = new Set(peerInfo.peers.filter((p) => p.memberId).map((p) => p.memberId));
    const ids = [...new Set([...Object.keys(s.miners || {}), ...peerInfo.members.filter((m) => m.role === 'miner').map((m) => m.id)])].sort();
    $('#miners tbody').replaceChildren(
      ...ids.map((id) => {
        const rtt = (s.miners || {})[id];
        return h('tr', {}, h('td', {}, id), h('td', { class: 'num' }, rtt === null || rtt === undefined ? 'unreachable' : fmt.ms(rtt)), h('td', {}, id === s.nearest ? h('span', { class: 'chip ok' }, 'nearest') : ''), h('td', {}, connected.has(id) ? h('span', { class: 'chip ok' }, 'connected') : h('span', { class: 'chip off' }, 'not connected')));
      }),
    );
  }

  function renderClientSeries(sr) {
    const x = sr.t.map((t) => t / 1000);
    const S = sr.series;
    charts.clientAccuracy.set(x, [{ label: 'held-out accuracy', values: S.lastAccuracy || [], colour: '#0072b2' }], 'not evaluated yet');
    charts.balance.set(x, [{ label: 'balance (tokens)', values: S.balance || [], colour: '#009e73' }], 'balance not read yet');
    const rtts = Object.keys(S).filter((k) => k.startsWith('rtt:')).sort();
    charts.rtt.set(x, rtts.map((k) => ({ label: k.slice(4), values: S[k] })), 'no round trip measured yet');
    charts.rounds.set(x, [
      { label: 'global round', values: S.round || [], colour: '#0072b2' },
      { label: 'uploaded', values: S.uploaded || [], colour: '#009e73' },
      { label: 'buffered', values: S.buffered || [], scale: 'y2', colour: '#d55e00' },
    ]);
  }

  async function refreshUploads() {
    const { uploads } = await getJson('/api/uploads');
    const rows = [...uploads].reverse().slice(0, 50).map((u) => h('tr', {}, h('td', {}, fmt.time(u.at)), h('td', {}, u.miner || '–'), h('td', { class: 'mono', title: u.digest }, fmt.short(u.digest, 16)), h('td', { class: 'num' }, fmt.int(u.samples)), h('td', { class: 'num' }, u.averaged > 1 ? h('span', { class: 'chip' }, `${u.averaged} buffered`) : '1')));
    $('#uploads tbody').replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'no upload yet'))]));
  }

  // ---- wiring ----

  function onStatus(s) {
    status = s;
    if (s.role === 'miner') {
      renderMinerKpis(s);
      if (s.split) {
        $('#split-miner').hidden = false;
        renderSplitMiner(s);
      }
      if (s.height !== lastHeight) {
        lastHeight = s.height;
        refreshChain();
      }
    } else {
      renderClientKpis(s);
      renderMinersTable(s);
      if (s.mode === 'split') {
        // a split client uploads no model: its split-learning card takes the uploads' place
        $('#split-client').hidden = false;
        $('#uploads-card').hidden = true;
        $('#client-accuracy-of').textContent = 'of its own head on the global body, on its own data';
        renderSplitClient(s);
      } else if (s.uploaded !== lastUploaded) {
        lastUploaded = s.uploaded;
        refreshUploads().catch((e) => console.warn(e));
      }
    }
    document.body.dataset.updated = String(Date.now());
  }

  async function refreshSlow() {
    try {
      const [sr, p] = await Promise.all([getJson('/api/series'), getJson('/api/peers')]);
      peerInfo = p;
      if (node.role === 'miner') {
        renderMiningSeries(sr);
        renderPeersMiner();
      } else {
        renderClientSeries(sr);
        if (status) renderMinersTable(status);
      }
    } catch (e) {
      console.warn(e);
    }
    // relative ages in the blocks table move on between blocks, and so do a split node's (its last round, its last error)
    if (status && status.split) {
      if (status.role === 'miner') {
        renderMinerKpis(status);
        renderSplitMiner(status);
      } else if (status.mode === 'split') {
        renderClientKpis(status);
        renderSplitClient(status);
      }
    }
    for (const td of document.querySelectorAll('[data-ts]')) td.textContent = fmt.ago(Number(td.dataset.ts));
  }

  function setLive(state) {
    const e = $('#live');
    e.dataset.state = state;
    e.textContent = state === 'live' ? 'live' : state === 'down' ? 'reconnecting…' : 'connecting';
  }

  function follow() {
    if (!window.EventSource) {
      // no Server-Sent Events: poll (the ETag makes an unchanged status a 304)
      const poll = () => getJson('/api/status').then((s) => (setLive('live'), onStatus(s)), () => setLive('down'));
      poll();
      setInterval(poll, 2000);
      return;
    }
    const es = new EventSource('/api/events');
    es.addEventListener('status', (ev) => {
      setLive('live');
      onStatus(JSON.parse(ev.data));
    });
    es.onerror = () => setLive('down'); // EventSource reconnects by itself
  }

  async function start() {
    node = await getJson('/api/node');
    document.title = `${node.id} · bfl-node`;
    $('#node-id').textContent = node.id;
    $('#node-role').textContent = node.role;
    $('#node-role').dataset.role = node.role;
    $('#node-network').textContent = node.networkId;
    $('#build').textContent = `v${node.version} · ${node.commit}`;
    for (const e of document.querySelectorAll(`[data-role="${node.role}"]`)) e.hidden = false;
    const pct = (v) => `${Math.round(v * 100)} %`;
    if (node.role === 'miner') {
      charts.accuracy = new Chart($('#chart-accuracy'), { xLabel: 'aggregation round', yFormat: pct, yRange: [0, 1], fill: true });
      charts.rewards = new Chart($('#chart-rewards'), { xLabel: 'aggregation round', points: false });
      charts.mining = new Chart($('#chart-mining'), { xTime: true, points: false, y2Label: 'updates', yFormat: fmt.rate, yAxisFormat: (v) => (v >= 1e6 ? `${v / 1e6}M` : v >= 1e3 ? `${v / 1e3}k` : String(v)), yLabel: 'hashes / s' });
      const m = /#block=([0-9a-f]{64})/.exec(location.hash);
      if (m) {
        followNewest = false;
        selectBlock(m[1], false);
      }
    } else {
      charts.clientAccuracy = new Chart($('#chart-client-accuracy'), { xTime: true, yFormat: pct, yRange: [0, 1], points: false, fill: true });
      charts.balance = new Chart($('#chart-balance'), { xTime: true, points: false, fill: true });
      charts.rtt = new Chart($('#chart-rtt'), { xTime: true, points: false });
      charts.rounds = new Chart($('#chart-rounds'), { xTime: true, points: false, y2Label: 'buffered', yCounts: true });
    }
    follow();
    await refreshSlow();
    setInterval(refreshSlow, Math.max(2000, node.sampleMs || 2000));
  }

  start().catch((e) => {
    setLive('down');
    $('#kpis').replaceChildren(h('div', { class: 'card' }, `Cannot read this node's API: ${e.message}`));
  });
})();
