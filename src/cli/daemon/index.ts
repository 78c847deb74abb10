/**
 * `bfl-node --role miner|client`: the long-running node. Settings: flags > environment
 * (ENV below: one variable per flag) > the config file's member entry > defaults.
 * First SIGINT/SIGTERM: graceful shutdown; a second one: exit now.
 */
import { Exit, UsageError } from '../exit.ts';
import { type Attack, attackBehaviour, parseAttack } from '../../experiments/attacks.ts';
import type { RunningNode } from '../../node/daemon.ts';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, createLogger } from '../../util/logger.ts';
import { watchParent } from './parent.ts';
import { isLockError, lockedError, portInUseError, prepareDatadir, removePidFile, writePidFile } from '../datadir.ts';

export interface DaemonFlags {
  role?: string;
  config?: string;
  identity?: string;
  datadir?: string;
  api?: string;
  listen?: string;
  miningWorkers?: number;
  attack?: string;
  logLevel?: string;
  logFormat?: string;
}

let stopped = false;

/**
 * Whether a node ran in this process and has stopped, or failed to start: it closed what it
 * opened and flushed its stores (its log is written synchronously). A library may still hold a
 * timer (libp2p's address manager arms a 1 s debounce as its listeners close), which kept every
 * stopped node up for another second: an operator's restart, each node of a testnet, each stop
 * in the e2e tests. The launcher (bin/bfl-node.js) then exits at once, with the code.
 */
export const nodeStopped = (): boolean => stopped;

export const ENV = {
  role: 'BFL_ROLE',
  config: 'BFL_CONFIG',
  identity: 'BFL_IDENTITY',
  datadir: 'BFL_DATADIR',
  api: 'BFL_API',
  listen: 'BFL_LISTEN',
  miningWorkers: 'BFL_MINING_WORKERS',
  attack: 'BFL_ATTACK',
  logLevel: 'BFL_LOG_LEVEL',
  logFormat: 'BFL_LOG_FORMAT',
} as const;

type StringFlag = Exclude<keyof typeof ENV, 'miningWorkers'>;

export function resolveDaemonFlags(f: DaemonFlags, env: NodeJS.ProcessEnv = process.env) {
  const pick = (k: StringFlag) => f[k] ?? env[ENV[k]];
  const role = pick('role');
  if (role !== 'miner' && role !== 'client') throw new UsageError(`--role must be miner or client (or set ${ENV.role}), got ${JSON.stringify(role)}`);
  const need = (k: 'config' | 'identity' | 'datadir') => {
    const v = pick(k);
    if (!v) throw new UsageError(`--${k} is required (or set ${ENV[k]})`);
    return v;
  };
  const attackText = pick('attack');
  let attack: Attack | undefined;
  if (attackText) {
    if (role !== 'client') throw new UsageError('--attack is for clients');
    try {
      attack = parseAttack(attackText);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const logLevel = pick('logLevel') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) throw new UsageError(`--log-level (${ENV.logLevel}) must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);
  const logFormat = pick('logFormat') ?? 'json';
  if (!(LOG_FORMATS as readonly string[]).includes(logFormat)) throw new UsageError(`--log-format (${ENV.logFormat}) must be one of ${LOG_FORMATS.join(', ')}, got ${JSON.stringify(logFormat)}`);
  return {
    role: role as 'miner' | 'client',
    config: need('config'),
    identity: need('identity'),
    datadir: need('datadir'),
    api: pick('api'),
    listen: pick('listen'),
    miningWorkers: f.miningWorkers,
    attack,
    logLevel,
    logFormat: logFormat as LogFormat,
  };
}

export async function runDaemon(flags: DaemonFlags): Promise<number> {
  const { logLevel, logFormat, attack, ...o } = resolveDaemonFlags(flags);
  const logger = createLogger({ level: logLevel, format: logFormat });
  await prepareDatadir(o.datadir);
  // Signals and the parent's exit are handled from the start: one that arrives while the node
  // is starting stops it as soon as it has started (its stores are then closed cleanly).
  let node: RunningNode | undefined;
  let stopping = false;
  let finish: (code: number) => void = () => {};
  const done = new Promise<number>((r) => (finish = r));
  const shutdown = () =>
    node!.stop().then(
      () => {
        removePidFile(o.datadir);
        finish(Exit.OK);
      },
      (e) => {
        logger.error({ err: (e as Error).message }, 'shutdown failed');
        finish(Exit.FAILURE);
      },
    );
  const stop = (why: Record<string, string>) => {
    if (stopping) {
      logger.warn(why, 'second signal: exiting now');
      process.exit(Exit.INTERRUPTED);
    }
    stopping = true;
    logger.info(why, 'shutting down (send the signal again to force)');
    if (node) void shutdown();
  };
  const onInt = () => stop({ sig: 'SIGINT' });
  const onTerm = () => stop({ sig: 'SIGTERM' });
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  const watch = watchParent((parent) => stop({ parent }));
  try {
    // loaded here, not with the CLI: the node's modules (libp2p's among them) are for this command only
    const { startNode } = await import('../../node/daemon.ts');
    // the attack comes from the experiments (the top layer builds it; the node knows only behaviours)
    node = await startNode({ ...o, behaviour: attack && attackBehaviour(attack), logger });
  } catch (e) {
    watch.stop();
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    // startNode closed what it had opened before it threw: the launcher need not wait for timers either
    stopped = true;
    if (isLockError(e)) throw lockedError(o.datadir);
    throw portInUseError(e) ?? e;
  }
  writePidFile(o.datadir);
  if (stopping) void shutdown();
  const code = await done;
  watch.stop();
  stopped = true;
  return code;
}
