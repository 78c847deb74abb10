import { BflError } from '../../src/core/errors.ts';

/** The BflError code `fn` throws, or 'NO_ERROR'; anything else is rethrown. */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof BflError) return e.code;
    throw e;
  }
  return 'NO_ERROR';
}
