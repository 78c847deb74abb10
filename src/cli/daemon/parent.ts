/**
 * A node started as somebody's child stops when that parent is gone, so that no miner keeps
 * mining as an orphan:
 * - spawned with an IPC channel (bfl-node testnet, the e2e tests): the channel closes when the
 *   parent exits, even on SIGKILL;
 * - started through npm (npx bfl-node, npm run): npm runs us under `sh -c`, and a SIGTERM to npm
 *   reaches that shell, not us; the shell dies and leaves us behind. We watch our parent and its
 *   parent (npm itself): when either is gone (we or the shell get re-parented), we stop.
 * A node started directly (systemd, docker, a shell with nohup) is left alone: being re-parented
 * there is normal.
 */
import { readFileSync } from 'node:fs';

export interface ParentWatch {
  /** Why the watch is on ('ipc', 'npm'), or undefined if it is off. */
  mode?: 'ipc' | 'npm';
  stop(): void;
}

/** The parent pid of `pid` from /proc (Linux), or undefined. */
export function ppidOf(pid: number): number | undefined {
  try {
    // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

export function watchParent(onGone: (why: string) => void, o: { env?: NodeJS.ProcessEnv; intervalMs?: number } = {}): ParentWatch {
  const env = o.env ?? process.env;
  if (process.channel) {
    // the channel must not keep the node alive, nor a message from the parent matter
    process.channel.unref();
    const gone = () => onGone('the parent process closed its IPC channel (it exited)');
    process.once('disconnect', gone);
    return { mode: 'ipc', stop: () => process.off('disconnect', gone) };
  }
  if (!env.npm_command && !env.BFL_WATCH_PARENT) return { stop: () => {} };
  const parent = process.ppid;
  const grandparent = ppidOf(parent);
  // 1 s: a stopped supervisor's node is gone within a second or two (plus its graceful stop)
  const timer = setInterval(() => {
    if (process.ppid !== parent) onGone(`the parent process ${parent} exited`);
    else if (grandparent !== undefined && ppidOf(parent) !== grandparent) onGone(`the process ${grandparent} that started ours (npm) exited`);
    else return;
    clearInterval(timer);
  }, o.intervalMs ?? 1000);
  timer.unref();
  return { mode: 'npm', stop: () => clearInterval(timer) };
}
