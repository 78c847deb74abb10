/**
 * `bfl-node --role miner|client`: the long-running node. Settings: flags > environment
 * (BFL_ROLE, BFL_CONFIG, BFL_IDENTITY, BFL_DATADIR, BFL_API, BFL_LISTEN, BFL_ATTACK) > the config file's
 * member entry > defaults. First SIGINT/SIGTERM: graceful shutdown; a second one: exit now.
 */
import { Exit, UsageError } from '../exit.ts';
import { type Attack, attackBehaviour, parseAttack } from '../../experiments/attacks.ts';
import { startNode } from '../../node/daemon.ts';
import { createLogger } from '../../util/logger.ts';

export interface DaemonFlags {
  role?: string;
  config?: string;
  identity?: string;
  datadir?: string;
  api?: string;
  listen?: string;
  miningWorkers?: number;
  attack?: string;
}

export const ENV = { role: 'BFL_ROLE', config: 'BFL_CONFIG', identity: 'BFL_IDENTITY', datadir: 'BFL_DATADIR', api: 'BFL_API', listen: 'BFL_LISTEN', attack: 'BFL_ATTACK' } as const;

export function resolveDaemonFlags(f: DaemonFlags, env: NodeJS.ProcessEnv = process.env) {
  const pick = (k: keyof typeof ENV) => f[k] ?? env[ENV[k]];
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
  return { role: role as 'miner' | 'client', config: need('config'), identity: need('identity'), datadir: need('datadir'), api: pick('api'), listen: pick('listen'), miningWorkers: f.miningWorkers, attack };
}

export async function runDaemon(flags: DaemonFlags): Promise<number> {
  const { attack, ...o } = resolveDaemonFlags(flags);
  const logger = createLogger();
  // the attack comes from the experiments (the top layer builds it; the node knows only behaviours)
  const node = await startNode({ ...o, behaviour: attack && attackBehaviour(attack), logger });
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (sig: string) => {
      if (stopping) {
        logger.warn({ sig }, 'second signal: exiting now');
        process.exit(Exit.INTERRUPTED);
      }
      stopping = true;
      logger.info({ sig }, 'shutting down (send the signal again to force)');
      node.stop().then(
        () => resolve(Exit.OK),
        (e) => {
          logger.error({ err: (e as Error).message }, 'shutdown failed');
          resolve(Exit.FAILURE);
        },
      );
    };
    process.on('SIGINT', () => onSignal('SIGINT'));
    process.on('SIGTERM', () => onSignal('SIGTERM'));
  });
}
