/**
 * The walking thread: walks a root for each job it is sent and posts the entries back in batches,
 * so that the writer reads files while the rest of the tree is still being walked.
 *
 * For a pre-copied image it also remembers, per `tree`, each entry's signature as first walked, and
 * a delta job walks the root again and posts only what is new or changed since (with `final`, also
 * the racy entries), then the paths removed: the comparison runs here, so that the frozen delta
 * costs the walk itself and not a copy of every entry to the writer's thread.
 *
 * Messages in: `{ job, root, label, live, tree? }` (a walk, remembered under `tree` when given),
 * `{ job, root, label, live, tree, delta: { final, unstable } }` (`unstable`: paths stored since the
 * last walk that changed while being read), `{ tree, forget: true }`.
 * Out: `{ job, entries, done?, removed? }`, `{ job, error: { code, message } }`.
 * @module
 */
import { parentPort } from 'node:worker_threads';
import { WparError } from '../../kernel/errno.ts';
import { sameSignature, type Signature } from './precopy.ts';
import { walkEntries, type SourceEntry } from './walk.ts';

/** Entries per message: few messages, yet the writer gets its first files at once. */
const BATCH = 256;
const port = parentPort!;

interface Known {
  readonly type: SourceEntry['type'];
  /** `null` when it changed while it was being stored. */
  readonly sig: Signature | null;
  readonly racy: boolean;
}

interface Job {
  readonly job: number;
  readonly root: string;
  readonly label: string;
  readonly live: boolean;
  readonly tree?: number;
  readonly delta?: { readonly final: boolean; readonly unstable: readonly string[] };
  readonly forget?: true;
}

const trees = new Map<number, Map<string, Known>>();

function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

port.on('message', (m: Job) => {
  if (m.forget) {
    trees.delete(m.tree!);
    return;
  }
  const { job, root, label, live } = m;
  let entries: SourceEntry[] = [];
  const post = (e: SourceEntry) => {
    entries.push(e);
    if (entries.length === BATCH) {
      port.postMessage({ job, entries });
      entries = [];
    }
  };
  try {
    if (m.delta === undefined) {
      const known = m.tree === undefined ? null : new Map<string, Known>();
      if (known !== null) trees.set(m.tree!, known);
      for (const e of walkEntries(root, label, live)) {
        known?.set(e.rel, { type: e.type, sig: e.sig, racy: e.racy });
        post(e);
      }
      port.postMessage({ job, entries, done: true });
      return;
    }
    const known = trees.get(m.tree!);
    if (known === undefined) throw new Error(`no earlier walk of ${root} to compare with`);
    for (const rel of m.delta.unstable) {
      const k = known.get(rel);
      if (k !== undefined) known.set(rel, { ...k, sig: null });
    }
    const { final } = m.delta;
    const seen = new Set<string>();
    const retyped: string[] = [];
    const changed: SourceEntry[] = [];
    for (const e of walkEntries(root, label, live)) {
      seen.add(e.rel);
      const before = known.get(e.rel);
      if (before !== undefined && before.type !== e.type) retyped.push(e.rel);
      if (before === undefined || before.type !== e.type || !sameSignature(before.sig, e.sig) || (final && before.racy)) {
        changed.push(e);
        post(e);
      }
    }
    // Removed: what is gone, and what changed type (removed, then stored anew); only the topmost
    // of a removed subtree is listed (removing a directory takes what is under it).
    const gone = new Set(retyped);
    for (const rel of known.keys()) if (!seen.has(rel)) gone.add(rel);
    const removed = [...gone].filter((rel) => !gone.has(parentOf(rel))).sort();
    for (const rel of gone) known.delete(rel);
    for (const e of changed) known.set(e.rel, { type: e.type, sig: e.sig, racy: e.racy });
    port.postMessage({ job, entries, done: true, removed });
  } catch (err) {
    if (entries.length > 0) port.postMessage({ job, entries });
    const code = err instanceof WparError ? err.code : 'EINVAL';
    port.postMessage({ job, error: { code, message: err instanceof Error ? err.message : String(err) } });
  }
});
