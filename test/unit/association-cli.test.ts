import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.ts';
import { tmpDir } from '../helpers/tmp.ts';

const BIN = new URL('../../bin/bfl-node.js', import.meta.url).pathname;

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('bfl-node experiment association', () => {
  it('bad flags exit 2 with one line that says what to use', async () => {
    const sched = await cli(['experiment', 'association', '--schedulers', 'nearest,hungarian']);
    expect(sched.code).toBe(2);
    expect(sched.err).toMatch(/unknown scheduler hungarian: use nearest, greedy, decomposition, swap, d3qn/);
    expect(sched.err).not.toMatch(/\n\s+at /);
    const mob = await cli(['experiment', 'association', '--mobility', 'fly']);
    expect(mob.code).toBe(2);
    expect(mob.err).toMatch(/--mobility must be iid or walk/);
  });

  it('--json prints schedulers.<name>.meanCost|meanTimeS|meanEnergyJ|execMsPerRound and writes the figures', async () => {
    const out = await tmpDir('bfl-assoc-');
    const r = run('experiment', 'association', '--rounds', '3', '--schedulers', 'nearest,swap,d3qn', '--mobility', 'walk', '--out', out, '--json');
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out) as { rounds: number; schedulers: Record<string, Record<string, number>>; files: string[] };
    expect(j.rounds).toBe(3);
    expect(Object.keys(j.schedulers)).toEqual(['nearest', 'swap', 'd3qn']);
    for (const s of Object.values(j.schedulers)) {
      for (const k of ['meanCost', 'meanTimeS', 'meanEnergyJ', 'execMsPerRound']) expect(s[k], k).toBeGreaterThan(0);
      expect(s.meanCost).toBeCloseTo(0.5 * s.meanTimeS + 0.5 * s.meanEnergyJ, 9);
    }
    for (const f of ['association.json', 'association-rounds.csv', 'association-fig6-cost.png', 'association-fig8-time.svg', 'association-fig9-loss.png']) expect(existsSync(join(out, f)), f).toBe(true);
  });
});
