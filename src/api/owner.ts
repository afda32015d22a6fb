/**
 * An owner: the C-shaped services and the idiomatic API over one kernel owner (`kernel.services`,
 * `kernel.extension(name)`). Both faces act on the same hooks and denials.
 * @module
 */
import { deny, restartClear, tryCheckpoint } from '../kernel/checkpoint.ts';
import { WPARSTART, WPARSTOP } from '../kernel/constants.ts';
import type { KernelCorral } from '../kernel/corral.ts';
import { EBUSY, EINVAL, ENOENT, ETIMEDOUT, WparError, errnoName } from '../kernel/errno.ts';
import { isThenable } from '../kernel/callout.ts';
import { isCid } from '../kernel/lifecycle.ts';
import { closeOwner, isReason, liveWpar, MAX_REASON_LENGTH, MAX_TRY_SECONDS, registerHook, type OwnerState } from '../kernel/owners.ts';
import type { KernelState } from '../kernel/state.ts';
import type { Wpar } from '../kernel/wpar.ts';
import { servicesFor, type KernelServices } from '../facade/services.ts';
import { CheckpointDeniedError } from './errors.ts';
import { CheckpointHandle, DenialHandle, HookHandle } from './handles.ts';

/** What an idiomatic hook watches for. A `start` that throws or rejects refuses the activation. */
export interface WparWatcher {
  /** A WPAR is being activated (before any subsystem starts). Throw or reject to refuse it. */
  start?(wpar: KernelCorral): void | Promise<void>;
  /** A WPAR has been deactivated (after every subsystem stopped). Errors are reported, not fatal. */
  stop?(wpar: KernelCorral): void | Promise<void>;
}

/** Options of {@link Owner.tryCheckpoint}. */
export interface TryOptions {
  /** How long to wait for denials to clear, in milliseconds (default 30000; 0 = do not wait). */
  readonly timeoutMs?: number;
  /** Aborting ends the wait with EINTR and leaves the phase `normal`. */
  readonly signal?: AbortSignal;
}

/** One kernel owner. Closing it unregisters its hooks and releases its denials (K13). */
export class Owner implements KernelServices, Disposable {
  /** The owner's name (`kernel`, an extension's name, `agent:NAME/PID`). */
  readonly name: string;
  readonly kwpar_reghook: KernelServices['kwpar_reghook'];
  readonly kwpar_unreghook: KernelServices['kwpar_unreghook'];
  readonly kwpar_checkpoint_status: KernelServices['kwpar_checkpoint_status'];
  readonly #k: KernelState;
  readonly #s: OwnerState;
  readonly #closable: boolean;

  /** @internal Owners are made by `kernel.extension(name)`. */
  constructor(k: KernelState, s: OwnerState, closable: boolean) {
    this.#k = k;
    this.#s = s;
    this.#closable = closable;
    this.name = s.name;
    const services = servicesFor(k, s);
    this.kwpar_reghook = services.kwpar_reghook;
    this.kwpar_unreghook = services.kwpar_unreghook;
    this.kwpar_checkpoint_status = services.kwpar_checkpoint_status;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#s.closed;
  }

  /** Registers a hook; throws EAGAIN when `maxHooks` are registered, EPERM when closed. */
  watch(watcher: WparWatcher): HookHandle {
    this.#open('register a hook');
    const configp = (flags: number, _cid: number, wpar: KernelCorral): number | Promise<number> => {
      const fn = flags === WPARSTART ? watcher.start : flags === WPARSTOP ? watcher.stop : undefined;
      if (fn === undefined) return 0;
      const r = fn.call(watcher, wpar);
      return isThenable(r) ? Promise.resolve(r).then(() => 0) : 0;
    };
    const registered = registerHook(this.#k, this.#s, configp);
    if (registered === undefined) {
      throw new WparError('EAGAIN', `owner "${this.name}" cannot register a hook: the kernel's hook table is full (maxHooks)`);
    }
    return new HookHandle(this.#k, registered.hook, registered.hiwater);
  }

  /** Denies checkpoints of WPAR `cid` for `reason` until the handle's `allow()`. */
  deny(cid: number, reason: string): DenialHandle {
    this.#open('deny a checkpoint');
    if (!isReason(reason)) {
      throw new WparError('EINVAL', `a denial reason must be a string of 1 to ${MAX_REASON_LENGTH} characters`);
    }
    const w = this.#wpar(cid, 'deny a checkpoint of');
    const d = deny(this.#k, w, this.name, reason);
    if (typeof d === 'number') {
      throw new WparError('EBUSY',
        `cannot deny a checkpoint of WPAR "${w.name}" (cid ${cid}): a checkpoint is in progress; ` +
        `a denial can be posted again once it clears`);
    }
    return new DenialHandle(this.#k, w, d);
  }

  /**
   * TRY: resolves a {@link CheckpointHandle} once no denial is outstanding (the WPAR is then
   * `checkpointing` until the handle clears). Rejects with a {@link CheckpointDeniedError} (ETIMEDOUT)
   * naming every denial, EBUSY, ENOENT, or EINTR on abort.
   */
  tryCheckpoint(cid: number, options: TryOptions = {}): Promise<CheckpointHandle> {
    try {
      this.#open('try a checkpoint');
      const timeoutMs = options.timeoutMs ?? 30_000;
      if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_TRY_SECONDS * 1000) {
        throw new WparError('EINVAL', `a checkpoint timeout must be an integer number of milliseconds from 0 to ${MAX_TRY_SECONDS * 1000}`);
      }
      const w = this.#wpar(cid, 'checkpoint');
      const busy = w.state === 'starting' ? 'it is still being activated'
        : w.phase === 'pending' ? 'another checkpoint is waiting for its denials to clear'
        : w.phase === 'checkpointing' ? 'a checkpoint is already in progress'
        : w.phase === 'restarting' ? 'it is restarting (no RESTART_CLEAR yet)' : '';
      return new Promise((resolve, reject) => {
        tryCheckpoint(this.#k, w, this.name, timeoutMs, options.signal, (errno) => {
          if (errno === 0) resolve(new CheckpointHandle(this.#k, w, this.name));
          else if (errno === ETIMEDOUT) {
            reject(new CheckpointDeniedError('ETIMEDOUT',
              `WPAR "${w.name}" (cid ${cid}) not checkpointed after ${timeoutMs / 1000} s`, w.denials.slice()));
          } else if (errno === EBUSY) reject(new WparError('EBUSY', `cannot checkpoint WPAR "${w.name}" (cid ${cid}): ${busy}`));
          else if (errno === ENOENT) reject(new WparError('ENOENT', `WPAR "${w.name}" (cid ${cid}) stopped before it could be checkpointed`));
          else reject(new WparError(errnoName(errno) ?? 'EINVAL', `checkpoint of WPAR "${w.name}" (cid ${cid}) aborted`, { cause: options.signal?.reason }));
        });
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** RESTART_CLEAR: the restart of WPAR `cid` is complete. Throws EINVAL if it is not restarting. */
  restartClear(cid: number): void {
    this.#open('clear a restart');
    const w = this.#wpar(cid, 'clear the restart of');
    const errno = restartClear(this.#k, w, this.name);
    if (errno !== 0) {
      throw new WparError(errnoName(errno) ?? 'EINVAL', errno === EINVAL
        ? `cannot clear the restart of WPAR "${w.name}" (cid ${cid}): it is not restarting (phase ${w.phase})`
        : `cannot clear the restart of WPAR "${w.name}" (cid ${cid}): it is still being activated`);
    }
  }

  /** K13: unregisters this owner's hooks and releases its denials. Idempotent. */
  close(): void {
    if (!this.#closable) throw new WparError('EPERM', `owner "${this.name}" cannot be closed`);
    closeOwner(this.#k, this.#s);
  }

  /** Same as {@link Owner.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  #open(what: string): void {
    if (this.#s.closed) throw new WparError('EPERM', `owner "${this.name}" is closed: cannot ${what}`);
  }

  #wpar(cid: number, what: string): Wpar {
    if (!isCid(cid)) throw new WparError('EINVAL', `cannot ${what} cid ${String(cid)}: a cid is an integer from 1 to 2147483647`);
    const w = liveWpar(this.#k, cid);
    if (w === undefined) throw new WparError('ENOENT', `cannot ${what} cid ${cid}: no WPAR with that cid is starting or active`);
    return w;
  }
}

