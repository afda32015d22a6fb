/**
 * Activation and deactivation (K14–K16): one function per direction, each rollback next to the step
 * it undoes, as Linux's net_namespace.c does for pernet init/exit.
 * @module
 */
import { callout, describe, isThenable, type CalloutFailure } from './callout.ts';
import { dropAll } from './checkpoint.ts';
import { CID_MAX, WPARSTART, WPARSTOP } from './constants.ts';
import { copyCorral, CorralCopyError, NAME_PATTERN, sealCorral } from './corral.ts';
import { WparError } from './errno.ts';
import type { Hook } from './hooks.ts';
import type { KernelState } from './state.ts';
import { Wpar } from './wpar.ts';

/** An activation refused by a WPARSTART callout: names the hook's owner and key. */
export class CalloutError extends WparError {
  /** The owner of the hook that refused. */
  readonly owner: string;
  /** The key of the hook that refused. */
  readonly key: number;

  constructor(failure: CalloutFailure, w: Wpar) {
    super(
      failure.code,
      `activation of WPAR "${w.name}" (cid ${w.cid}) cancelled: WPARSTART callout to hook ${failure.hook.key} ` +
        `of owner "${failure.hook.owner.name}" ${failure.detail}`,
      failure.cause === undefined ? undefined : { cause: failure.cause },
    );
    this.owner = failure.hook.owner.name;
    this.key = failure.hook.key;
  }
}

/** True for an integer that can name a WPAR. */
export function isCid(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= CID_MAX;
}

/**
 * K14: validates and copies the corral, allocates the lowest free cid, then (asynchronously) runs the
 * WPARSTART callouts and starts the subsystems. The cid, the hook snapshot and the subsystem list are
 * all taken in this synchronous step, so a hook registered after it returns saw this cid in its hiwater.
 * With `atCid` that exact cid is taken instead of the lowest free one (a daemon adopting a running
 * WPAR after a restart, R7); everything else — callouts, subsystems, events — is an ordinary activation.
 */
export function activate(k: KernelState, corral: unknown, restart: boolean, atCid?: number): Promise<number> {
  let copy: Record<string, unknown>;
  try {
    copy = copyCorral(corral);
  } catch (err) {
    const why = err instanceof CorralCopyError ? err.message : `corral could not be read: ${describe(err)}`;
    return Promise.reject(new WparError('EINVAL', `cannot activate: ${why}`));
  }
  const name = copy.name;
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    return Promise.reject(new WparError('EINVAL',
      `cannot activate: invalid WPAR name ${describe(name)}: a name is 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit`));
  }
  const holder = k.names.get(name);
  if (holder) {
    return Promise.reject(new WparError('EEXIST', `cannot activate "${name}": the name is in use by cid ${holder.cid}`));
  }
  const subsystems = k.subsystems;
  const make = (c: number): Wpar => new Wpar(c, sealCorral(copy, c), subsystems, restart);
  if (atCid !== undefined) {
    // Adoption (R7): the WPAR already runs with this cid (its agent directory is named after it).
    if (!isCid(atCid)) return Promise.reject(new WparError('EINVAL', `cannot activate "${name}": cid ${describe(atCid)} is not a cid (1 to ${CID_MAX})`));
    const held = k.table.get(atCid);
    if (held) return Promise.reject(new WparError('EEXIST', `cannot activate "${name}" with cid ${atCid}: the cid is held by "${held.name}"`));
  }
  const cid = atCid === undefined ? k.table.allocate(make) : k.table.allocateAt(atCid, make);
  if (cid === 0) {
    return Promise.reject(new WparError('EAGAIN', `cannot activate "${name}": no free cid (${k.table.size} WPARs hold one; maxWpars)`));
  }
  const w = k.table.get(cid)!;
  k.names.set(name, w);
  w.activation = runActivation(k, w, k.hooks.ordered);
  return w.activation;
}

async function runActivation(k: KernelState, w: Wpar, hooks: readonly Hook[]): Promise<number> {
  if (k.events.active) k.events.emit({ type: 'wpar.activating', time: k.clock.now(), cid: w.cid, name: w.name, restart: w.phase === 'restarting' });

  // K14.3: WPARSTART before any subsystem, one at a time, in registration order, to hooks still registered.
  const called: Hook[] = [];
  for (const hook of hooks) {
    if (!hook.registered) continue;
    let failure = callout(k, hook, WPARSTART, w);
    if (failure instanceof Promise) failure = await failure;
    if (failure !== undefined) {
      // K15: no later hook, no subsystem; WPARSTOP to the hooks that succeeded, in reverse; cid freed.
      await rollback(k, w, called, 0);
      throw fail(k, w, new CalloutError(failure, w));
    }
    called.push(hook);
  }

  // K14.4: subsystems in use() order. K15: a failure stops those already started, then unwinds as above.
  const subsystems = w.subsystems;
  for (let i = 0; i < subsystems.length; i++) {
    const sub = subsystems[i]!;
    try {
      const started = sub.start(w.cid, w.corral);
      if (isThenable(started)) await started;
      if (k.events.active) k.events.emit({ type: 'subsystem', time: k.clock.now(), cid: w.cid, name: w.name, step: 'start', subsystem: sub.name, ok: true });
    } catch (err) {
      if (k.events.active) k.events.emit({ type: 'subsystem', time: k.clock.now(), cid: w.cid, name: w.name, step: 'start', subsystem: sub.name, ok: false, detail: describe(err) });
      await rollback(k, w, called, i);
      throw fail(k, w, new WparError('ECANCELED',
        `activation of WPAR "${w.name}" (cid ${w.cid}) cancelled: subsystem "${sub.name}" failed to start: ${describe(err)}`,
        { cause: err }));
    }
  }

  // K14.5
  w.state = 'active';
  w.activating = false;
  if (k.events.active) k.events.emit({ type: 'wpar.active', time: k.clock.now(), cid: w.cid, name: w.name });
  return w.cid;
}

/** Undoes a failed activation: the first `startedSubsystems` stop in reverse, then WPARSTOP to `called` in reverse. */
async function rollback(k: KernelState, w: Wpar, called: readonly Hook[], startedSubsystems: number): Promise<void> {
  leave(k, w);
  await stopSubsystems(k, w, startedSubsystems);
  for (let i = called.length - 1; i >= 0; i--) {
    const hook = called[i]!;
    if (!hook.registered) continue;
    const r = callout(k, hook, WPARSTOP, w);
    if (r instanceof Promise) await r;
  }
  free(k, w);
  w.activating = false;
}

function fail(k: KernelState, w: Wpar, err: WparError): WparError {
  if (k.events.active) k.events.emit({ type: 'wpar.failed', time: k.clock.now(), cid: w.cid, name: w.name, code: err.code, message: err.message });
  return err;
}

/**
 * K16: deactivates WPAR `cid`. A starting WPAR is stopped once its activation settles; a second call
 * while it stops returns the same promise.
 */
export function deactivate(k: KernelState, cid: unknown): Promise<void> {
  const w = isCid(cid) ? k.table.get(cid) : undefined;
  if (w === undefined) {
    return Promise.reject(new WparError('ENOENT', `cannot deactivate cid ${describe(cid)}: no such WPAR`));
  }
  if (w.stopped === undefined) {
    w.stopped = w.activating
      ? w.activation!.then(() => runDeactivation(k, w), () => undefined)
      : runDeactivation(k, w);
  }
  return w.stopped;
}

async function runDeactivation(k: KernelState, w: Wpar): Promise<void> {
  // K16.2: the WPAR has left: denials dropped, a waiting TRY gets ENOENT.
  leave(k, w);
  // K16.3: subsystems stop in reverse use() order.
  await stopSubsystems(k, w, w.subsystems.length);
  // K16.4: WPARSTOP after all subsystem processing, in reverse registration order, to every hook
  // registered now and still registered when its turn comes. Failures are reported, never fatal.
  const hooks = k.hooks.ordered;
  for (let i = hooks.length - 1; i >= 0; i--) {
    const hook = hooks[i]!;
    if (!hook.registered) continue;
    const r = callout(k, hook, WPARSTOP, w);
    if (r instanceof Promise) await r;
  }
  // K16.5
  free(k, w);
}

function leave(k: KernelState, w: Wpar): void {
  w.state = 'stopping';
  if (k.events.active) k.events.emit({ type: 'wpar.stopping', time: k.clock.now(), cid: w.cid, name: w.name });
  dropAll(k, w);
}

async function stopSubsystems(k: KernelState, w: Wpar, count: number): Promise<void> {
  for (let i = count - 1; i >= 0; i--) {
    const sub = w.subsystems[i]!;
    let detail: string | undefined;
    try {
      const stopped = sub.stop(w.cid, w.corral);
      if (isThenable(stopped)) await stopped;
    } catch (err) {
      detail = describe(err);
    }
    if (k.events.active) {
      k.events.emit({ type: 'subsystem', time: k.clock.now(), cid: w.cid, name: w.name, step: 'stop', subsystem: sub.name, ok: detail === undefined, ...(detail !== undefined && { detail }) });
    }
  }
}

function free(k: KernelState, w: Wpar): void {
  k.table.release(w.cid);
  if (k.names.get(w.name) === w) k.names.delete(w.name);
  if (k.events.active) k.events.emit({ type: 'wpar.stopped', time: k.clock.now(), cid: w.cid, name: w.name });
}
