import { expect, it } from 'vitest';
import { accuracyVersus } from '../../src/cli/experiment/index.ts';
import { formatDuration, progress } from '../../src/experiments/progress.ts';

function clocked(tty: boolean) {
  let t = 1_000_000;
  const out: string[] = [];
  const bar = progress(100, { tty, write: (s) => out.push(s), now: () => t });
  return { bar, out, advance: (ms: number) => (t += ms) };
}

it('off a terminal: a line at most once a minute, with the elapsed time and an ETA from the rate so far', () => {
  const { bar, out, advance } = clocked(false);
  for (let i = 0; i < 10; i++) {
    advance(5_000);
    bar(`step ${i}`);
  }
  expect(out).toEqual([]); // 50 s: nothing yet
  advance(10_000);
  bar.at(20, 'run 2: 20 of 100 s');
  // 20 % in 60 s: 240 s to go
  expect(out).toEqual([' 20 %  1 min 00 s elapsed, ETA 4 min 00 s  run 2: 20 of 100 s\n']);
  advance(30_000);
  bar('more');
  expect(out).toHaveLength(1);
  advance(30_000);
  bar('more');
  expect(out).toHaveLength(2);
  bar.done();
  expect(out[2]).toBe('done in 2 min 00 s\n');
});

it('on a terminal: one redrawn line with the bar and the ETA', () => {
  const { bar, out, advance } = clocked(true);
  advance(3_000);
  bar.at(50, 'half');
  expect(out[0]).toMatch(/^\r\[#{15}\.{15}\]  50 %  3 s elapsed, ETA 3 s  half/);
  bar.done();
  expect(out[1]).toBe('\n');
});

it('durations read as people say them', () => {
  expect(formatDuration(59_400)).toBe('59 s');
  expect(formatDuration(31 * 60_000 + 5_000)).toBe('31 min 05 s');
  expect(formatDuration(2 * 3600_000 + 7 * 60_000)).toBe('2 h 07 min');
});

it('the attack summary says higher when accuracy goes up under attack, lower when it goes down', () => {
  expect(accuracyVersus(0.91, 0.9, -1)).toBe('accuracy 0.9100 vs 0.9000 without attack (1 point higher)');
  expect(accuracyVersus(0.8, 0.9, 10)).toBe('accuracy 0.8000 vs 0.9000 without attack (10 points lower)');
  expect(accuracyVersus(0.9, 0.9, 0)).toMatch(/\(the same\)$/);
});
