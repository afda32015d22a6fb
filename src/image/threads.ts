/**
 * The one helper for this module's worker threads (walking in `write/walk-worker`, hashing and
 * writing in `write/hash-worker`, creating files in `read/extract-worker`): each {@link WorkerHost}
 * starts its thread on first use, routes the thread's replies to the job they name, keeps the
 * process alive only while a job is waiting, and on a crash fails every waiting job and starts a
 * fresh thread for the next.
 *
 * Thread modules sit below this directory (`.ts` in the sources, `.js` once built). They are loaded
 * by a one-line `eval` worker doing `import(url)`: a worker started from a file would inherit
 * `--input-type` from a parent run with `-e` and refuse to start, and passing `execArgv` instead
 * makes Node reject any per-process flag of the parent.
 * @module
 */
import { extname } from 'node:path';
import { Worker } from 'node:worker_threads';

/** Start the worker module `name` (e.g. `'write/walk-worker'`), relative to this directory. */
function startWorker(name: string): Worker {
  const url = new URL(`./${name}${extname(new URL(import.meta.url).pathname)}`, import.meta.url);
  return new Worker(`import(${JSON.stringify(url.href)});`, { eval: true, name: `corral-image-${name.replace(/.*\//, '')}` });
}

/** One worker thread and the jobs waiting for its replies. */
export class WorkerHost<Reply> {
  readonly #module: string;
  readonly #jobOf: (reply: Reply) => number;
  #worker: Worker | null = null;
  readonly #jobs = new Map<number, (reply: Reply | Error) => void>();

  /** `module`: the thread's module (see {@link startWorker}); `jobOf`: the job a reply is for. */
  constructor(module: string, jobOf: (reply: Reply) => number) {
    this.#module = module;
    this.#jobOf = jobOf;
  }

  /** Start the thread now (it takes tens of milliseconds), so that it is ready when needed. */
  warm(): void {
    this.#thread();
  }

  /**
   * Route the replies for `job` to `deliver` (an Error when the thread dies) until {@link done};
   * the process stays alive while any job is routed.
   */
  wait(job: number, deliver: (reply: Reply | Error) => void): void {
    this.#jobs.set(job, deliver);
    this.#thread().ref();
  }

  /** `job` expects no more replies. */
  done(job: number): void {
    this.#jobs.delete(job);
    if (this.#jobs.size === 0) this.#worker?.unref();
  }

  /** Send `message` to the thread (started if need be). */
  post(message: unknown): void {
    this.#thread().postMessage(message);
  }

  /** Send `message` only if the thread runs (a message that matters to a running thread only). */
  postIfRunning(message: unknown): void {
    this.#worker?.postMessage(message);
  }

  #thread(): Worker {
    if (this.#worker !== null) return this.#worker;
    const w = startWorker(this.#module);
    w.on('message', (reply: Reply) => this.#jobs.get(this.#jobOf(reply))?.(reply));
    const fail = (err: Error) => {
      if (this.#worker === w) this.#worker = null;
      for (const deliver of [...this.#jobs.values()]) deliver(err);
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`the ${this.#module} thread exited (${code})`)));
    w.unref();
    this.#worker = w;
    return w;
  }
}
