/**
 * Errors of the idiomatic API that carry more than a code: which owner denied what, since when.
 * @module
 */
import { WparError, type ErrnoCode } from '../kernel/errno.ts';
import type { Denial } from '../kernel/wpar.ts';

/** A checkpoint that could not start because of denials (ETIMEDOUT): lists every outstanding one. */
export class CheckpointDeniedError extends WparError {
  /** The denials outstanding when the wait ended, oldest first. */
  readonly denials: readonly Denial[];

  constructor(code: ErrnoCode, message: string, denials: readonly Denial[]) {
    super(code, `${message}: ${describeDenials(denials)}`);
    this.name = 'CheckpointDeniedError';
    this.denials = denials;
  }
}

/** How many denials an error message lists before it counts the rest. */
export const DENIALS_SHOWN = 20;
/** The longest reason an error message quotes in full (longer ones are cut, with "..."). */
export const REASON_SHOWN = 120;

/**
 * `denied by agent:web/4711 "writing batch 12" since 10:02:11; denied by ...`: every denial (R4.2)
 * up to the oldest {@link DENIALS_SHOWN}, then `and N more`, so a checkpoint refused by 10,000
 * denials is still one bounded line (`lswpar -L` and the error's `denials` list them all).
 */
export function describeDenials(denials: readonly Denial[]): string {
  if (denials.length === 0) return 'no denial outstanding';
  const shown = denials.slice(0, DENIALS_SHOWN).map((d) => `denied by ${d.owner} ${JSON.stringify(cut(d.reason))} since ${clockTime(d.since)}`);
  const more = denials.length - shown.length;
  return shown.join('; ') + (more > 0 ? `; and ${more} more denial${more === 1 ? '' : 's'} (lswpar -L lists them)` : '');
}

function cut(reason: string): string {
  return reason.length <= REASON_SHOWN ? reason : `${reason.slice(0, REASON_SHOWN - 3)}...`;
}

/** HH:MM:SS of an epoch-milliseconds time, in local time. */
export function clockTime(ms: number): string {
  return new Date(ms).toTimeString().slice(0, 8);
}
