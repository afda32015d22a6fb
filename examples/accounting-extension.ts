/**
 * Example kernel extension: per-WPAR run-time accounting.
 *
 *     wpard --extension examples/accounting-extension.ts
 *
 * It uses the C-shaped facade the way an AIX kernel extension would: it registers a WPAR_NOTIFY_HOOK,
 * sizes its per-cid table from `current_hiwater` (every existing cid is <= it), grows the table when a
 * WPARSTART brings a higher cid, and on WPARSTOP appends one usage record per run to
 * `HOME/extensions/accounting/usage.jsonl`. Unloading (daemon stop) closes its owner, which
 * unregisters the hook.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BADREGKEY, WPAR_NOTIFY_HOOK, WPARSTART, WPARSTOP, type KernelCorral, type Owner } from 'corral';

/** The extension's owner name. */
export const name = 'accounting';

/** One line of usage.jsonl. */
export interface UsageRecord {
  name: string;
  cid: number;
  startedAt: number;
  stoppedAt: number;
  seconds: number;
}

export default function accounting(owner: Owner, context: { home: string; log(message: string): void }): () => void {
  const dir = join(context.home, 'extensions', name);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'usage.jsonl');
  let startedAt = new Float64Array(0);

  const hook = {
    current_hiwater: 0,
    configp(flags: number, cid: number, corralp: KernelCorral): number {
      if (flags === WPARSTART) {
        if (cid >= startedAt.length) startedAt = grow(startedAt, cid + 1);
        startedAt[cid] = Date.now();
      } else if (flags === WPARSTOP && cid < startedAt.length && startedAt[cid]! > 0) {
        const stoppedAt = Date.now();
        const record: UsageRecord = { name: corralp.name, cid, startedAt: startedAt[cid]!, stoppedAt, seconds: (stoppedAt - startedAt[cid]!) / 1000 };
        appendFileSync(file, JSON.stringify(record) + '\n');
        startedAt[cid] = 0;
      }
      return 0;
    },
  };
  const key = owner.kwpar_reghook(WPAR_NOTIFY_HOOK, hook);
  if (key === BADREGKEY) throw new Error('no hook slot left');
  startedAt = new Float64Array(hook.current_hiwater + 1); // sized for every WPAR that exists already
  context.log(`accounting: hook ${key}, table sized for hiwater ${hook.current_hiwater}`);
  return () => { owner.kwpar_unreghook(key); };
}

function grow(table: Float64Array<ArrayBuffer>, size: number): Float64Array<ArrayBuffer> {
  const bigger = new Float64Array(Math.max(size, table.length * 2));
  bigger.set(table);
  return bigger;
}
