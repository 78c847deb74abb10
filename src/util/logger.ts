/**
 * Structured JSON logs (pino) on stderr, so that stdout stays free for command output such as
 * `--json` results. One child logger per subsystem: `logger.child({ sub: 'chain' })`.
 * Level: BFL_LOG_LEVEL (trace|debug|info|warn|error|fatal|silent), default info.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(opts: { level?: string; name?: string; destination?: number } = {}): Logger {
  return pino(
    { name: opts.name ?? 'bfl-node', level: opts.level ?? process.env.BFL_LOG_LEVEL ?? 'info', base: { pid: process.pid } },
    pino.destination({ dest: opts.destination ?? 2, sync: true }),
  );
}

/** A logger that drops everything (tests, library use). */
export const silentLogger: Logger = pino({ level: 'silent' });
