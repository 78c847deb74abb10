/**
 * What an operator's paths and ports can go wrong with, as one-line BflErrors that say what to
 * do: a datadir that is a file or not writable, a datadir held by a running node (LevelDB's
 * LOCK; the node records its pid in DATADIR/node.pid so that the message can name it), a port
 * already taken, an output directory that does not exist.
 */
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { access, constants, mkdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { levelFilesWithoutCurrent } from '../chain/leveldb.ts';
import { BflError, ErrorCode } from '../core/errors.ts';
import { writeFileAtomic } from '../util/atomic-file.ts';

export const PID_FILE = 'node.pid';

const codeOf = (e: unknown) => (e as { code?: string })?.code;

/** Create the datadir if needed; refuse a file, a path under a file, or a directory we cannot write. */
export async function prepareDatadir(dir: string, flag = '--datadir'): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    if (!(await stat(dir)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    await access(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw pathError(e, dir, flag, 'datadir');
  }
}

/** A BflError(BAD_PATH) for a failed file-system call on a path the operator gave with `flag`. */
export function pathError(e: unknown, path: string, flag: string, what: string): Error {
  switch (codeOf(e)) {
    case 'ENOTDIR':
    case 'EEXIST':
      return new BflError(ErrorCode.BAD_PATH, `${what} ${path} is a file or lies under one; pass ${flag} a directory`);
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new BflError(ErrorCode.BAD_PATH, `${what} ${path} is not writable by this user (uid ${process.getuid?.() ?? '?'}); fix its permissions or pass ${flag} another directory`);
    case 'EISDIR':
      return new BflError(ErrorCode.BAD_PATH, `${what} ${path} is a directory; pass ${flag} a file path`);
    case 'ENOENT':
      return new BflError(ErrorCode.BAD_PATH, `${dirname(path)} does not exist; create it (mkdir -p ${dirname(path)}) or pass ${flag} a path in an existing directory`);
    default:
      return e as Error;
  }
}

/**
 * Record this process as the node holding `datadir` (after its stores are open, i.e. locked).
 * Written aside and renamed into place, so that a reader (a second node naming the holder, a
 * supervisor waiting for the node) never sees the file created but still empty.
 */
export function writePidFile(datadir: string): void {
  writeFileAtomic(join(datadir, PID_FILE), `${process.pid}\n`);
}

/** Remove the pid file if it still names this process. */
export function removePidFile(datadir: string): void {
  if (readPid(datadir) === process.pid) rmSync(join(datadir, PID_FILE), { force: true });
}

/** The pid recorded in the datadir, if that process is alive. */
export function readPid(datadir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(datadir, PID_FILE), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    process.kill(pid, 0);
    return pid;
  } catch (e) {
    return codeOf(e) === 'EPERM' ? Number(readFileSync(join(datadir, PID_FILE), 'utf8').trim()) : undefined;
  }
}

/** Is this (or what caused it) LevelDB refusing to open because another process holds the LOCK? */
export function isLockError(e: unknown): boolean {
  for (let x = e as { code?: string; message?: string; cause?: unknown } | undefined, i = 0; x && i < 5; x = x.cause as typeof x, i++) {
    if (x.code === 'LEVEL_LOCKED' || x.code === ErrorCode.STORE_LOCKED || /LOCK: already held by process/.test(x.message ?? '')) return true;
  }
  return false;
}

export function lockedError(datadir: string, hint = 'stop it first, or give this process another --datadir'): BflError {
  const pid = readPid(datadir);
  return new BflError(ErrorCode.STORE_LOCKED, `${datadir} is locked by a running node${pid ? ` (pid ${pid})` : ''}; ${hint}`);
}

/**
 * The chain store of a node's datadir: DATADIR/chain (what the node writes), or DATADIR itself
 * if it is a chain store (a copied-out chain). Never creates anything.
 */
export function chainDirOf(datadir: string): string {
  if (!existsSync(datadir)) throw new BflError(ErrorCode.BAD_PATH, `${datadir} does not exist; pass --datadir the node's data directory`);
  if (!statSync(datadir).isDirectory()) throw new BflError(ErrorCode.BAD_PATH, `${datadir} is a file; pass --datadir the node's data directory`);
  // a store without its CURRENT file still counts: opening it says it is damaged and how to repair it
  if (existsSync(join(datadir, 'chain', 'CURRENT')) || levelFilesWithoutCurrent(join(datadir, 'chain'))) return join(datadir, 'chain');
  if (existsSync(join(datadir, 'CURRENT')) || levelFilesWithoutCurrent(datadir)) return datadir;
  throw new BflError(ErrorCode.NOT_FOUND, `${datadir} holds no chain (no ${join(datadir, 'chain')} store); pass --datadir the data directory of a miner`);
}

/** The node's datadir that holds a chain directory (for the pid of a lock holder). */
export function nodeDirOfChain(chainDir: string): string {
  return chainDir.replace(/\/+$/, '').endsWith('/chain') ? dirname(chainDir) : chainDir;
}

/**
 * Which of the node's listen addresses is taken, from a libp2p or HTTP server error
 * (libp2p wraps the EADDRINUSE of its TCP listener into a message that names the multiaddr).
 */
export function portInUseError(e: unknown): BflError | undefined {
  const text = `${(e as Error)?.message ?? ''}`;
  if (codeOf(e) !== 'EADDRINUSE' && !/EADDRINUSE/.test(text)) return undefined;
  if (codeOf(e) === 'EADDRINUSE') {
    const { address, port } = e as { address?: string; port?: number };
    return new BflError(ErrorCode.PORT_IN_USE, `the HTTP API address ${address}:${port} is in use by another process; stop it, or pass --api HOST:PORT (env BFL_API; port 0 picks a free one)`);
  }
  const ma = /(\/ip[46]\/[^\s:]+\/tcp\/\d+)/.exec(text)?.[1] ?? 'of this node';
  return new BflError(ErrorCode.PORT_IN_USE, `the libp2p listen address ${ma} is in use by another process; stop it, or pass --listen MULTIADDR (env BFL_LISTEN)`);
}
