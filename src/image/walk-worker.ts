/**
 * The walking thread: walks a root for each job it is sent and posts the entries back in batches,
 * so that the writer reads files while the rest of the tree is still being walked.
 * Messages in: `{ job, root, label, live }`. Out: `{ job, entries, done? }`, `{ job, error: { code, message } }`.
 * @module
 */
import { parentPort } from 'node:worker_threads';
import { WparError } from '../kernel/errno.ts';
import { walkEntries, type SourceEntry } from './walk.ts';

/** Entries per message: few messages, yet the writer gets its first files at once. */
const BATCH = 256;
const port = parentPort!;

port.on('message', ({ job, root, label, live }: { job: number; root: string; label: string; live: boolean }) => {
  let entries: SourceEntry[] = [];
  try {
    for (const e of walkEntries(root, label, live)) {
      entries.push(e);
      if (entries.length === BATCH) {
        port.postMessage({ job, entries });
        entries = [];
      }
    }
    port.postMessage({ job, entries, done: true });
  } catch (err) {
    if (entries.length > 0) port.postMessage({ job, entries });
    const code = err instanceof WparError ? err.code : 'EINVAL';
    port.postMessage({ job, error: { code, message: err instanceof Error ? err.message : String(err) } });
  }
});
