import { describe, expect, it } from 'vitest';
import { resolveDaemonFlags } from '../../src/cli/daemon/index.ts';
import { UsageError } from '../../src/cli/exit.ts';
import { Rng } from '../../src/core/random.ts';
import { aliePaperZ, attackLabels, attackUpdate, formatAttack, inverseNormalCdf, parseAttack, resolveAttack } from '../../src/experiments/attacks.ts';

describe('attacks', () => {
  it('parse and format', () => {
    for (const s of ['none', 'sign-flip', 'label-flip', 'scale:10', 'noise:0.05']) expect(formatAttack(parseAttack(s))).toBe(s);
    for (const bad of ['scale', 'scale:x', 'noise:-1', 'sign-flip:2', 'krum']) expect(() => parseAttack(bad), bad).toThrow(/attack/);
  });

  it('change the update or the labels as documented', () => {
    const d = Float32Array.of(1, -2, 0.5);
    expect(Array.from(attackUpdate(parseAttack('sign-flip'), d, new Rng(1)))).toEqual([-1, 2, -0.5]);
    expect(Array.from(attackUpdate(parseAttack('scale:3'), d, new Rng(1)))).toEqual([3, -6, 1.5]);
    const noisy = attackUpdate(parseAttack('noise:0.1'), d, new Rng(1));
    expect(noisy).not.toEqual(d);
    expect(Math.max(...noisy.map((v, i) => Math.abs(v - d[i])))).toBeLessThan(1);
    expect(Array.from(attackUpdate(parseAttack('label-flip'), d, new Rng(1)))).toEqual(Array.from(d));
    expect(Array.from(attackLabels(parseAttack('label-flip'), Uint8Array.of(0, 3, 9), 10))).toEqual([9, 6, 0]);
    expect(Array.from(attackLabels(parseAttack('sign-flip'), Uint8Array.of(0, 3, 9), 10))).toEqual([0, 3, 9]);
  });
});

describe('daemon settings: flags > environment > config file > defaults', () => {
  const env = { BFL_ROLE: 'client', BFL_CONFIG: '/env/net.json', BFL_IDENTITY: '/env/key.json', BFL_DATADIR: '/env/data', BFL_API: '127.0.0.1:9', BFL_ATTACK: 'scale:5' };

  it('flags win over the environment, the environment fills what flags leave out', () => {
    const r = resolveDaemonFlags({ config: '/flag/net.json', api: '0.0.0.0:1' }, env);
    expect(r).toMatchObject({ role: 'client', config: '/flag/net.json', identity: '/env/key.json', datadir: '/env/data', api: '0.0.0.0:1', attack: { kind: 'scale', factor: 5 } });
    // listen is in neither: left to the config's member entry (startNode)
    expect(r.listen).toBeUndefined();
  });

  it('missing or bad settings are usage errors that name the flag and the variable', () => {
    expect(() => resolveDaemonFlags({}, {})).toThrow(UsageError);
    expect(() => resolveDaemonFlags({ role: 'boss' }, {})).toThrow(/--role must be miner or client \(or set BFL_ROLE\)/);
    expect(() => resolveDaemonFlags({ role: 'miner' }, {})).toThrow(/--config is required \(or set BFL_CONFIG\)/);
    expect(() => resolveDaemonFlags({ role: 'miner', config: 'c', identity: 'i', datadir: 'd', attack: 'sign-flip' }, {})).toThrow(/--attack is for clients/);
    expect(() => resolveDaemonFlags({ role: 'client', config: 'c', identity: 'i', datadir: 'd', attack: 'nope' }, {})).toThrow(/unknown attack/);
  });
});

describe('omniscient attacks', () => {
  const honest = { mean: Float32Array.of(1, -2, 0.5), std: Float32Array.of(0.1, 0.2, 0) };
  it('ALIE is μ − zσ per coordinate; IPM is −εμ', () => {
    expect(Array.from(attackUpdate(parseAttack('alie:1.5'), Float32Array.of(9, 9, 9), new Rng(1), honest))).toEqual([1 - 0.15000000596046448, -2 - 0.30000001192092896, 0.5].map(Math.fround));
    expect(Array.from(attackUpdate(parseAttack('ipm:0.5'), Float32Array.of(9, 9, 9), new Rng(1), honest))).toEqual([-0.5, 1, -0.25]);
    expect(formatAttack(parseAttack('alie:1.5'))).toBe('alie:1.5');
    expect(formatAttack(parseAttack('ipm:0.5'))).toBe('ipm:0.5');
  });
  it('without the honest statistics they fall back to the client\'s own update', () => {
    const own = Float32Array.of(2, 4);
    expect(Array.from(attackUpdate(parseAttack('alie:1'), own, new Rng(1)))).toEqual([2, 4]);
    expect(Array.from(attackUpdate(parseAttack('ipm:0.5'), own, new Rng(1)))).toEqual([-1, -2]);
  });
});

describe('attacks at full strength (issue 11)', () => {
  it("ALIE's z is the paper's z_max for n and f unless given", () => {
    // Baruch et al. 2019: s = ⌊n/2 + 1⌋ − f, z = Φ⁻¹((n − s)/n); Φ⁻¹(0.78) = 0.7722, Φ⁻¹(0.7) = 0.5244
    expect(aliePaperZ(50, 15)).toBeCloseTo(0.7722, 3);
    expect(aliePaperZ(10, 3)).toBeCloseTo(0.5244, 3);
    expect(inverseNormalCdf(0.975)).toBeCloseTo(1.95996, 4);
    expect(inverseNormalCdf(0.001)).toBeCloseTo(-3.0902, 3);
    expect(resolveAttack(parseAttack('alie'), 50, 15)).toEqual({ kind: 'alie', z: aliePaperZ(50, 15) });
    expect(resolveAttack(parseAttack('alie:1.5'), 50, 15)).toEqual({ kind: 'alie', z: 1.5 });
    expect(formatAttack(parseAttack('alie'))).toBe('alie');
  });
  it('mimic copies the lowest-numbered honest client, copycat a random one byte for byte, free-ride-global the last global update', () => {
    const latest = [{ client: 2, delta: Float32Array.of(1, 2) }, { client: 5, delta: Float32Array.of(3, 4) }];
    const honest = { mean: Float32Array.of(0, 0), std: Float32Array.of(0, 0), latest, previousGlobal: Float32Array.of(7, 8) };
    expect(Array.from(attackUpdate(parseAttack('mimic'), Float32Array.of(9, 9), new Rng(1), honest))).toEqual([1, 2]);
    const copy = attackUpdate(parseAttack('copycat'), Float32Array.of(9, 9), new Rng(1), honest);
    expect(latest.some((l) => l.delta.every((v, k) => v === copy[k]))).toBe(true);
    // nothing to copy yet: a free-rider has no work of its own to send
    expect(Array.from(attackUpdate(parseAttack('copycat'), Float32Array.of(9, 9), new Rng(1), { ...honest, latest: [] }))).toEqual([0, 0]);
    expect(Array.from(attackUpdate(parseAttack('free-ride-global'), Float32Array.of(9, 9), new Rng(1), honest))).toEqual([7, 8]);
    for (const s of ['mimic', 'copycat', 'free-ride-global']) expect(formatAttack(parseAttack(s))).toBe(s);
    expect(() => parseAttack('mimic:1')).toThrow(/unknown attack/);
  });
});

describe('noisy labels (rewards --quality)', () => {
  it('replace about the given share of labels, reproducibly', () => {
    const y = Uint8Array.from({ length: 2000 }, (_, i) => i % 10);
    const a = parseAttack('noisy-labels:0.5');
    const out = attackLabels(a, y, 10);
    expect(attackLabels(a, y, 10)).toEqual(out);
    const changed = out.filter((v, i) => v !== y[i]).length / y.length;
    // half replaced, a tenth of those by the same label
    expect(changed).toBeGreaterThan(0.4);
    expect(changed).toBeLessThan(0.5);
    expect(attackLabels(parseAttack('noisy-labels:0'), y, 10)).toEqual(y);
    expect(formatAttack(a)).toBe('noisy-labels:0.5');
    expect(() => parseAttack('noisy-labels:2')).toThrow(/unknown attack/);
  });
});
