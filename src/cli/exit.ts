/** Exit codes of every command (documented in the README). */
export const Exit = {
  OK: 0,
  /** The command ran and the answer is "no": an invalid chain, a failed check, an error at run time. */
  FAILURE: 1,
  /** Bad flags or arguments. */
  USAGE: 2,
  /** The environment cannot run us (Node too old, see bin/bfl-node.js). */
  ENVIRONMENT: 3,
  /** Stopped by a signal after a graceful shutdown. */
  INTERRUPTED: 130,
} as const;

/** Thrown by commands for a usage problem commander cannot see (e.g. a bad value). */
export class UsageError extends Error {}

export function parseIntFlag(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${name} must be an integer from ${min} to ${max}, got "${v}"`);
    return n;
  };
}

export function parseNumberFlag(name: string, min: number, max = Number.MAX_VALUE) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`${name} must be a number from ${min} to ${max}, got "${v}"`);
    return n;
  };
}
