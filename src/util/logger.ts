/**
 * Structured JSON logs (pino) on stderr, so that stdout stays free for command output such as
 * `--json` results. One child logger per subsystem: `logger.child({ sub: 'chain' })`.
 * Level: --log-level or BFL_LOG_LEVEL (trace|debug|info|warn|error|fatal|silent), default info.
 * Format: json (one object a line, for log collectors) or pretty (pino-pretty, for a terminal).
 */
import { pino, type Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';

export type { Logger };

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function createLogger(opts: { level?: string; format?: LogFormat; name?: string; destination?: number } = {}): Logger {
  const level = opts.level ?? process.env.BFL_LOG_LEVEL ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new Error(`log level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`);
  const dest = opts.destination ?? 2;
  const stream =
    opts.format === 'pretty'
      ? PinoPretty({ destination: dest, sync: true, colorize: dest === 2 ? process.stderr.isTTY : false, ignore: 'hostname', translateTime: 'SYS:HH:MM:ss.l' })
      : pino.destination({ dest, sync: true });
  return pino({ name: opts.name ?? 'bfl-node', level, base: { pid: process.pid } }, stream);
}

/** A logger that drops everything (tests, library use). */
export const silentLogger: Logger = pino({ level: 'silent' });
