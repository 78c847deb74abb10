import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isBflError } from '../../src/core/errors.ts';
import { Rng } from '../../src/core/random.ts';
import { DEFAULT_POLICY, QNetRuntime, actionsToAssignment, agentRewards, agentStates, d3qnScheduler, defaultD3qnOptions, ruleValues, runAgents, savePolicy, stateSize, trainD3qn } from '../../src/association/d3qn.ts';
import { type QNetSpec, initQnet, qnetParamCount } from '../../src/association/qnet.ts';
import { Twin, checkOneToOne, emptyAssignment, roundCost, twinParams } from '../../src/association/twin.ts';
import { tmpDir } from '../helpers/tmp.ts';

/** A minibatch: states, one-hot taken actions (`dense`: a 0/1 weight on every action, as the
 * twin's counterfactual targets give) and targets per action. */
function batch(spec: QNetSpec, b: number, seed: number, dense = false) {
  const rng = new Rng(seed);
  const x = Float64Array.from({ length: b * spec.inputs }, () => rng.normal());
  const act = new Float64Array(b * spec.actions);
  for (let i = 0; i < b; i++) {
    if (dense) for (let a = 0; a < spec.actions; a++) act[i * spec.actions + a] = rng.float() < 0.7 ? 1 : 0;
    else act[i * spec.actions + rng.int(spec.actions)] = 1;
  }
  const y = Float64Array.from({ length: b * spec.actions }, () => rng.normal());
  return { x, act, y };
}

describe('the dueling Q-network graphs', () => {
  for (const [spec, dense] of [
    [{ inputs: 5, hidden: [6, 4], actions: 3 }, false],
    [{ inputs: 4, hidden: [5, 4, 3], actions: 6 }, true],
  ] as [QNetSpec, boolean][]) {
    it(`every gradient of the D3QN loss (22) for ${spec.inputs}-${spec.hidden.join('-')}-(1+${spec.actions}), ${dense ? 'targets on many actions' : 'taken action only'}, matches central finite differences`, async () => {
      const rt = await QNetRuntime.create(spec, { elem: 'double' });
      try {
        const rng = new Rng(11);
        // perturbed so that no ReLU input sits at 0 and the biases matter
        const p = Float64Array.from(initQnet(spec, 3), (v) => v + 0.2 * rng.normal());
        const { x, act, y } = batch(spec, 5, 12, dense);
        const grad = new Float64Array(p.length);
        await rt.grad(p, x, act, y, 5, grad);
        const scratch = new Float64Array(p.length);
        const h = 1e-6;
        for (let k = 0; k < p.length; k++) {
          const q = Float64Array.from(p);
          q[k] += h;
          const up = await rt.grad(q, x, act, y, 5, scratch);
          q[k] -= 2 * h;
          const down = await rt.grad(q, x, act, y, 5, scratch);
          const fd = (up - down) / (2 * h);
          expect(Math.abs(fd - grad[k]), `parameter ${k}`).toBeLessThan(1e-7 + 1e-5 * Math.abs(fd));
        }
      } finally {
        await rt.close();
      }
    });
  }

  it('Q = V + A − mean A: the dueling aggregation, and the loss is the mean squared TD error', async () => {
    const spec: QNetSpec = { inputs: 3, hidden: [4], actions: 3 };
    const rt = await QNetRuntime.create(spec, { elem: 'double' });
    const p = Float64Array.from(initQnet(spec, 2));
    const { x, act, y } = batch(spec, 4, 5);
    const q = await rt.q(p, x, 4);
    // shifting every advantage bias by the same amount leaves Q unchanged (identifiability)
    const ba = p.length - spec.actions;
    const shifted = Float64Array.from(p, (v, i) => (i >= ba ? v + 3 : v));
    const q2 = await rt.q(shifted, x, 4);
    for (let i = 0; i < q.length; i++) expect(q2[i]).toBeCloseTo(q[i], 12);
    let mse = 0;
    for (let i = 0; i < 4; i++) for (let a = 0; a < 3; a++) mse += act[i * 3 + a] * (q[i * 3 + a] - y[i * 3 + a]) ** 2;
    expect(await rt.grad(p, x, act, y, 4, new Float64Array(p.length))).toBeCloseTo(mse / 4, 12);
    await rt.close();
  });

  it('the fused RMSProp step is s′ = αs + (1−α)g², w′ = w − ηg/(√s′ + ε)', async () => {
    const spec: QNetSpec = { inputs: 4, hidden: [5], actions: 3 };
    const rt = await QNetRuntime.create(spec, { elem: 'double' });
    const p = Float64Array.from(initQnet(spec, 5));
    const s = Float64Array.from(p, (_, i) => 0.01 * (i % 4));
    const { x, act, y } = batch(spec, 6, 9);
    const g = new Float64Array(p.length);
    const loss = await rt.grad(p, x, act, y, 6, g);
    const next = new Float64Array(p.length);
    const sNext = new Float64Array(p.length);
    const o = { lr: 0.01, alpha: 0.9, eps: 1e-6 };
    expect(await rt.rmsprop(p, s, x, act, y, 6, o, next, sNext)).toBeCloseTo(loss, 14);
    for (let k = 0; k < p.length; k++) {
      const sk = o.alpha * s[k] + (1 - o.alpha) * g[k] * g[k];
      expect(sNext[k]).toBeCloseTo(sk, 14);
      expect(next[k]).toBeCloseTo(p[k] - (o.lr * g[k]) / (Math.sqrt(sk) + o.eps), 12);
    }
    await rt.close();
  });
});

describe('the D3QN scheduler', () => {
  it('a saved ONNX policy gives the same actions as the trainer\'s network, one-to-one', async () => {
    const p = twinParams({ clients: 6, servers: 2, channels: 4 });
    const r = await trainD3qn(p, { ...defaultD3qnOptions, hidden: [16, 8], episodes: 2, roundsPerEpisode: 5, warmupRounds: 2, batch: 8 });
    expect(r.params.length).toBe(qnetParamCount(r.spec));
    const stem = join(await tmpDir('bfl-d3qn-'), 'policy');
    await savePolicy(stem, r, p, 'test');
    const sched = await d3qnScheduler(stem);
    const rt = await QNetRuntime.create(r.spec);
    try {
      const twin = new Twin(p, 77);
      for (let round = 0; round < 5; round++) {
        const s = twin.next();
        const fromFile = await sched.assign(s);
        checkOneToOne(p, fromFile);
        const mine = actionsToAssignment(p, (await runAgents(s, r.options.state, r.options.group, r.options.queryPasses, (x, rows) => rt.q(r.params, x, rows), 0, undefined, undefined, { revise: r.options.revise, reviseBatch: r.options.reviseBatch })).act);
        expect(Array.from(fromFile.server)).toEqual(Array.from(mine.server));
        expect(Array.from(fromFile.channel)).toEqual(Array.from(mine.channel));
      }
    } finally {
      await rt.close();
      await sched.close?.();
    }
  });

  it('the speculative first pass (the scheduler\'s) makes the same choices as the plain sequential query, with fewer network calls', async () => {
    const p = twinParams({ clients: 10, servers: 3, channels: 4 });
    const r = await trainD3qn(p, { ...defaultD3qnOptions, hidden: [16, 8], episodes: 3, roundsPerEpisode: 5, warmupRounds: 2, batch: 8 });
    const rt = await QNetRuntime.create(r.spec);
    try {
      const twin = new Twin(p, 5);
      let plainCalls = 0;
      let specCalls = 0;
      for (let round = 0; round < 8; round++) {
        const s = twin.next();
        const o = { revise: r.options.revise, reviseBatch: r.options.reviseBatch, record: false };
        const plain = await runAgents(s, r.options.state, 1, 2, (x, rows) => (plainCalls++, rt.q(r.params, x, rows)), 0, undefined, undefined, o);
        for (const depth of [2, 3, 5]) {
          const spec = await runAgents(s, r.options.state, 1, 2, (x, rows) => (specCalls++, rt.q(r.params, x, rows)), 0, undefined, undefined, { ...o, speculate: { depth, rule: r.options } });
          expect(Array.from(spec.act), `round ${round}, depth ${depth}`).toEqual(Array.from(plain.act));
        }
      }
      expect(specCalls / 3).toBeLessThan(plainCalls);
    } finally {
      await rt.close();
    }
  });

  it('forced actions (the expert\'s rounds) are taken as given, the network not asked, each decision with the clients placed before it', async () => {
    const p = twinParams({ clients: 5, servers: 2, channels: 3 });
    const s = new Twin(p, 8).next();
    const forced = Int32Array.from([4, 0, 5, 2, 1]);
    let asked = 0;
    const { act, decisions } = await runAgents(s, 'sinr', 1, 1, async (_x, rows) => (asked++, new Float32Array(rows * 6)), 0, undefined, forced);
    expect(Array.from(act)).toEqual(Array.from(forced));
    expect(asked).toBe(0);
    expect(decisions).toHaveLength(5);
    decisions.forEach((d, i) => {
      expect(d.act).toBe(forced[d.agent]);
      // i agents placed before this one, and not this one
      expect(Array.from(d.placed.server).filter((m) => m >= 0)).toHaveLength(i);
      expect(d.placed.server[d.agent]).toBe(-1);
    });
  });

  for (const kind of ['sinr', 'sinr-dl'] as const) {
    it(`the query's incremental '${kind}' state of every decision, first pass and revising, is the state rebuilt from the clients placed before it`, async () => {
      const p = twinParams({ clients: 12, servers: 3, channels: 5 });
      const S = stateSize(p, kind);
      // the harm block: the last 15 before loads and count ('sinr'), the last 15 ('sinr-dl')
      const harm0 = kind === 'sinr' ? S - 4 - 15 : S - 15;
      const twin = new Twin(p, 21);
      const rng = new Rng(4);
      for (let r = 0; r < 4; r++) {
        const s = twin.next();
        // random Q values: agents spread over servers and channels, so interference and harm occur
        const { decisions } = await runAgents(s, kind, 1, 2, async (_x, rows) => Float32Array.from({ length: rows * 15 }, () => rng.float()), 0, undefined, undefined, { revise: 2, reviseBatch: r % 2 === 0 });
        expect(decisions).toHaveLength(14);
        let harmSeen = 0;
        for (const d of decisions) {
          const x = new Float32Array(S);
          agentStates(s, kind, [d.agent], d.placed, x);
          for (let i = 0; i < S; i++) expect(d.x[i], `state element ${i}`).toBeCloseTo(x[i], 6);
          for (let j = 0; j < 15; j++) harmSeen += d.x[harm0 + j];
        }
        expect(harmSeen).toBeGreaterThan(0);
      }
    });
  }

  it('the \'sinr-dl\' state: the agent\'s downlink spectral efficiency on every free pair and the seconds it takes from the placed clients are the twin\'s', () => {
    const p = twinParams({ clients: 5, servers: 2, channels: 3 });
    const S = stateSize(p, 'sinr-dl');
    const A = 6;
    // where the downlink part starts
    const base = p.servers + p.channels + 2 + A + p.servers + 1;
    expect(S).toBe(base + 2 * A);
    const edge = (p.serverFlopsPerSample * p.samplesPerRound) / p.serverFlops;
    let harmSeen = 0;
    for (let seed = 0; seed < 6; seed++) {
      const s = new Twin(p, 30 + seed).next();
      // clients 0, 1, 2 placed on (0, 0), (1, 1), (1, 0); agent 3 chooses
      const placed = emptyAssignment(5);
      placed.server.set([0, 1, 1]);
      placed.channel.set([0, 1, 0]);
      const x = new Float32Array(S);
      agentStates(s, 'sinr-dl', [3], placed, x);
      // as 'sinr' without its harm block: fingerprint, budgets, uplink efficiency, loads, count
      const y = new Float32Array(stateSize(p, 'sinr'));
      agentStates(s, 'sinr', [3], placed, y);
      const up = p.servers + p.channels + 2 + A;
      expect(Array.from(x.subarray(0, up))).toEqual(Array.from(y.subarray(0, up)));
      expect(Array.from(x.subarray(up, base))).toEqual(Array.from(y.subarray(up + A)));
      const before = roundCost(s, placed);
      for (let pair = 0; pair < A; pair++) {
        const a = { server: Int32Array.from(placed.server), channel: Int32Array.from(placed.channel) };
        a.server[3] = Math.floor(pair / 3);
        a.channel[3] = pair % 3;
        const taken = pair === 0 || pair === 4 || pair === 3;
        if (taken) {
          expect(x[base + pair]).toBe(0);
          expect(x[base + A + pair]).toBe(0);
          continue;
        }
        const c = roundCost(s, a);
        expect(x[base + pair]).toBeCloseTo(c.rateDown[3] / p.bandwidthHz / 8, 5);
        // the placed clients' lost seconds, up and down (edge time aside: the rule counts it)
        let lost = 0;
        for (let o = 0; o < 3; o++) lost += c.clientTimeS[o] - before.clientTimeS[o] - (a.server[o] === a.server[3] ? edge : 0);
        // capped at log1p(lost) = 8 (2980 s: the pair is simply bad); float32 inputs
        const want = Math.min(lost, Math.expm1(8));
        expect(Math.abs(Math.expm1(8 * x[base + A + pair]) - want)).toBeLessThan(1e-4 + 1e-5 * want);
        harmSeen += want;
      }
    }
    expect(harmSeen).toBeGreaterThan(0);
  });

  it('the rule\'s value of a pair for a client alone is −log of the twin\'s λT + μE for it alone there; taken pairs weigh 0; with a span, what lies further below the best weighs less', () => {
    const p = twinParams({ clients: 4, servers: 2, channels: 3 });
    const S = stateSize(p, 'sinr');
    const s = new Twin(p, 6).next();
    const x = new Float32Array(S);
    const out = new Float32Array(6);
    const w = new Float32Array(6);
    agentStates(s, 'sinr', [2], emptyAssignment(4), x);
    ruleValues(p, { state: 'sinr', ruleHarm: 0.3, ruleHarmTime: 1 }, x, 1, out, w);
    for (let pair = 0; pair < 6; pair++) {
      const a = emptyAssignment(4);
      a.server[2] = Math.floor(pair / 3);
      a.channel[2] = pair % 3;
      expect(out[pair]).toBeCloseTo(Math.max(-8, -Math.log(roundCost(s, a).cost)), 5);
      expect(w[pair]).toBe(1);
    }
    // client 0 on pair 4: that pair weighs 0, and pairs on its channel carry its harm
    const placed = emptyAssignment(4);
    placed.server[0] = 1;
    placed.channel[0] = 1;
    agentStates(s, 'sinr', [2], placed, x);
    const harmed = new Float32Array(6);
    ruleValues(p, { state: 'sinr', ruleHarm: 0.3, ruleHarmTime: 1 }, x, 1, harmed, w);
    expect(Array.from(w)).toEqual([1, 1, 1, 1, 0, 1]);
    expect(harmed[1]).toBeLessThan(out[1]);
    const spanned = new Float32Array(6);
    const ws = new Float32Array(6);
    ruleValues(p, { state: 'sinr', ruleHarm: 0.3, ruleHarmTime: 1 }, x, 1, spanned, ws, 0.5, 0.25);
    const best = Math.max(...Array.from(harmed).filter((_, j) => w[j]));
    expect(Array.from(spanned)).toEqual(Array.from(harmed));
    for (let j = 0; j < 6; j++) expect(ws[j]).toBe(!w[j] ? 0 : harmed[j] < best - 0.5 ? 0.25 : 1);
    expect(Array.from(ws).filter((v) => v === 0.25).length).toBeGreaterThan(0);
  });

  it('the rule reads the \'sinr\' state: another state with the rule is a BAD_CONFIG error', async () => {
    const p = twinParams({ clients: 4, servers: 2, channels: 3 });
    const err = await trainD3qn(p, { ...defaultD3qnOptions, hidden: [4], episodes: 1, roundsPerEpisode: 2, state: 'gains', expert: 'rule' }).catch((e: unknown) => e);
    expect(isBflError(err, 'BAD_CONFIG')).toBe(true);
  });

  it('the team difference reward is N·(log cost without the agent − log cost with it)', () => {
    const p = twinParams({ clients: 3, servers: 2, channels: 2 });
    const s = new Twin(p, 4).next();
    const a = { server: Int32Array.from([0, 1, 0]), channel: Int32Array.from([0, 0, 1]) };
    const c = roundCost(s, a);
    const r = agentRewards(s, a, c, 'team-diff');
    for (let n = 0; n < 3; n++) {
      const b = { server: Int32Array.from(a.server), channel: Int32Array.from(a.channel) };
      b.server[n] = -1;
      b.channel[n] = -1;
      expect(r[n]).toBeCloseTo(Math.max(-8, 3 * (Math.log(roundCost(s, b).cost) - Math.log(c.cost))), 12);
      expect(r[n]).toBeLessThan(0); // every client adds time or energy
    }
  });

  for (const over of [{ targets: 'placed' }, { reward: 'team-diff' }, { expertStart: 1, expertEnd: 0.5, targets: 'placed' }, { expert: 'rule', distilShare: 0.5, distilSpan: 2, distilLowWeight: 0.2, lrEnd: 1e-5 }] as const) {
    it(`trains with ${JSON.stringify(over)}: finite losses, a one-to-one policy`, async () => {
      const p = twinParams({ clients: 6, servers: 2, channels: 4 });
      const r = await trainD3qn(p, { ...defaultD3qnOptions, hidden: [16, 8], episodes: 2, roundsPerEpisode: 5, warmupRounds: 2, batch: 8, ...over });
      for (const e of r.episodes) expect(Number.isFinite(e.loss)).toBe(true);
      const rt = await QNetRuntime.create(r.spec);
      const s = new Twin(p, 9).next();
      checkOneToOne(p, actionsToAssignment(p, (await runAgents(s, r.options.state, 1, 1, (x, rows) => rt.q(r.params, x, rows))).act));
      await rt.close();
    });
  }

  it('the committed policy for the default twin loads and schedules one-to-one', async () => {
    const p = twinParams();
    const sched = await d3qnScheduler(DEFAULT_POLICY);
    const twin = new Twin(p, 3);
    for (let r = 0; r < 3; r++) checkOneToOne(p, await sched.assign(twin.next()));
    // N may change (the state does not depend on it); M × K may not
    const fewer = twinParams({ clients: 9 });
    checkOneToOne(fewer, await sched.assign(new Twin(fewer, 4).next()));
    await expect(Promise.resolve().then(() => sched.assign(new Twin(twinParams({ channels: 8 }), 4).next()))).rejects.toSatisfy((e) => isBflError(e, 'BAD_CONFIG'));
    await sched.close?.();
  });

  it('a policy of another state layout (an older version\'s) is a BAD_CONFIG error that says to retrain', async () => {
    const p = twinParams({ clients: 6, servers: 2, channels: 4 });
    const r = await trainD3qn(p, { ...defaultD3qnOptions, hidden: [8], episodes: 1, roundsPerEpisode: 3, warmupRounds: 1, batch: 4 });
    const stem = join(await tmpDir('bfl-d3qn-'), 'policy');
    await savePolicy(stem, r, p, 'test');
    const meta = JSON.parse(await readFile(`${stem}.json`, 'utf8'));
    await writeFile(`${stem}.json`, JSON.stringify({ ...meta, state: 'sinr' }));
    const sched = await d3qnScheduler(stem);
    const err = await Promise.resolve().then(() => sched.assign(new Twin(p, 1).next())).catch((e: unknown) => e);
    expect(isBflError(err, 'BAD_CONFIG')).toBe(true);
    expect((err as Error).message).toMatch(/--train/);
    await sched.close?.();
  });

  it('a missing policy file is a BAD_CONFIG error that says how to make one', async () => {
    const err = await d3qnScheduler(join(await tmpDir('bfl-d3qn-'), 'none')).catch((e: unknown) => e);
    expect(isBflError(err, 'BAD_CONFIG')).toBe(true);
    expect((err as Error).message).toMatch(/--train/);
  });
});
