/**
 * `chkptwpar -k` between its image and the stop (R4.5, R7): once the image is complete the frozen
 * processes must never run again (they would move away from the image), so a daemon that dies
 * before it has stopped them leaves this record, and the next daemon stops them instead of
 * adopting and thawing them.
 * @module
 */
import { closeSync, fsyncSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import type { HomeLayout } from './home.ts';

/** What the record says. */
export interface PendingKill {
  /** The image directory the checkpoint completed. */
  readonly dir: string;
  /** When (ms since the epoch). */
  readonly at: number;
}

/** Records, durably (fsync), that `name`'s processes are to be stopped after its checkpoint into `dir`. */
export function recordPendingKill(layout: HomeLayout, name: string, dir: string): void {
  const fd = openSync(layout.pendingKill(name), 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify({ dir, at: Date.now() } satisfies PendingKill));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Removes the record (the processes are stopped). */
export function clearPendingKill(layout: HomeLayout, name: string): void {
  rmSync(layout.pendingKill(name), { force: true });
}

/** Reads and removes the record; null if there is none (a torn one counts: the image was complete). */
export function takePendingKill(layout: HomeLayout, name: string): PendingKill | null {
  let text: string;
  try {
    text = readFileSync(layout.pendingKill(name), 'utf8');
  } catch {
    return null;
  }
  clearPendingKill(layout, name);
  try {
    const v = JSON.parse(text) as Partial<PendingKill>;
    return { dir: typeof v.dir === 'string' ? v.dir : '(unknown)', at: typeof v.at === 'number' ? v.at : Date.now() };
  } catch {
    return { dir: '(unknown)', at: Date.now() };
  }
}
