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

/** `denied by agent:web/4711 "writing batch 12" since 10:02:11; denied by ...` */
export function describeDenials(denials: readonly Denial[]): string {
  if (denials.length === 0) return 'no denial outstanding';
  return denials.map((d) => `denied by ${d.owner} ${JSON.stringify(d.reason)} since ${clockTime(d.since)}`).join('; ');
}

/** HH:MM:SS of an epoch-milliseconds time, in local time. */
export function clockTime(ms: number): string {
  return new Date(ms).toTimeString().slice(0, 8);
}
