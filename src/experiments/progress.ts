/**
 * Progress of a long experiment on stderr: on a terminal one redrawn line with a bar, the
 * elapsed time and an ETA; elsewhere (a log file, CI, `docker logs`) a plain line at most every
 * `everyMs` (default a minute), so a 30-minute grid is never silent for long and a log stays short.
 */
export interface ProgressOptions {
  tty?: boolean;
  write?: (s: string) => void;
  now?: () => number;
  /** Off a terminal: one line per this many ms (a minute: readable in a log, not a flood). */
  everyMs?: number;
}

export interface Progress {
  (label: string): void;
  at(n: number, label: string): void;
  done(): void;
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** `bar(label)` counts one step of `total`, `bar.at(n, label)` sets the count. */
export function progress(total: number, o: ProgressOptions = {}): Progress {
  const tty = o.tty ?? Boolean(process.stderr.isTTY);
  const write = o.write ?? ((s: string) => void process.stderr.write(s));
  const now = o.now ?? Date.now;
  const everyMs = o.everyMs ?? 60_000;
  const t0 = now();
  let n = 0;
  let lastLine = t0;
  const status = () => {
    const elapsed = now() - t0;
    const frac = Math.min(n, total) / Math.max(1, total);
    // the rate so far: runs of an experiment take about as long as each other
    const eta = n > 0 && frac < 1 ? formatDuration((elapsed / frac) * (1 - frac)) : n > 0 ? '0 s' : '?';
    return { frac, text: `${(frac * 100).toFixed(0).padStart(3)} %  ${formatDuration(elapsed)} elapsed, ETA ${eta}` };
  };
  const draw = (label: string) => {
    const s = status();
    if (tty) {
      const width = 30;
      const filled = Math.round(s.frac * width);
      write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${s.text}  ${label}`.padEnd(120));
    } else if (now() - lastLine >= everyMs) {
      lastLine = now();
      write(`${s.text}  ${label}\n`);
    }
  };
  const f = ((label: string) => {
    n++;
    draw(label);
  }) as Progress;
  f.at = (at: number, label: string) => {
    n = at;
    draw(label);
  };
  f.done = () => {
    if (tty) write('\n');
    else write(`done in ${formatDuration(now() - t0)}\n`);
  };
  return f;
}
