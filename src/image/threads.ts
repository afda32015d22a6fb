/**
 * Starting this module's worker threads. Their modules sit beside this one (`.ts` in the sources,
 * `.js` once built). They are loaded by a one-line `eval` worker doing `import(url)`: a worker
 * started from a file would inherit `--input-type` from a parent run with `-e` and refuse to start,
 * and passing `execArgv` instead makes Node reject any per-process flag of the parent.
 * @module
 */
import { extname } from 'node:path';
import { Worker } from 'node:worker_threads';

/** Start the worker module `name` (e.g. `'walk-worker'`) of this directory. */
export function startWorker(name: string, workerData?: unknown): Worker {
  const url = new URL(`./${name}${extname(new URL(import.meta.url).pathname)}`, import.meta.url);
  return new Worker(`import(${JSON.stringify(url.href)});`, { eval: true, workerData, name: `corral-image-${name}` });
}
