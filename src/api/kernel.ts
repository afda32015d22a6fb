/**
 * `createKernel`: one kernel object is one boot instance of the system (kernels share nothing).
 * @module
 */
import { systemClock, type Clock } from '../kernel/clock.ts';
import type { Corral } from '../kernel/corral.ts';
import { WparError } from '../kernel/errno.ts';
import type { KernelEventListener, Subscription } from '../kernel/events.ts';
import { activate, deactivate, isCid } from '../kernel/lifecycle.ts';
import { KernelState, type OwnerState } from '../kernel/state.ts';
import type { Subsystem } from '../kernel/subsystem.ts';
import type { CheckpointPhase, Wpar, WparState } from '../kernel/wpar.ts';
import { Owner } from './owner.ts';

/** Options of {@link createKernel}. */
export interface KernelOptions {
  /** Most WPARs holding a cid at once (default 8192); one more activation fails with EAGAIN. */
  readonly maxWpars?: number;
  /** Most hooks registered at once (default 256); one more `kwpar_reghook` returns BADREGKEY. */
  readonly maxHooks?: number;
  /** How long an asynchronous callout may take (default 30000 ms) before it counts as failed (ETIMEDOUT). */
  readonly calloutTimeoutMs?: number;
  /** Time source (default: the system clock). Tests inject a fake one. */
  readonly clock?: Clock;
  /** Receives errors thrown by event listeners (default: ignore them; the kernel never sees them). */
  readonly onListenerError?: (err: unknown) => void;
}

/** Options of {@link Kernel.activate}. */
export interface ActivateOptions {
  /** The WPAR is being re-created on an arrival system: its phase is `restarting` until RESTART_CLEAR. */
  readonly restart?: boolean;
  /**
   * Take exactly this cid instead of the lowest free one (EEXIST if it is held): a daemon adopting a
   * WPAR that kept running across its restart (R7). WPARSTART callouts and subsystems see an
   * ordinary activation.
   */
  readonly cid?: number;
}

/** A WPAR as `status()` and `list()` report it: a snapshot, safe to keep and to change. */
export interface WparStatus {
  cid: number;
  name: string;
  state: WparState;
  phase: CheckpointPhase;
  /** Outstanding denials, oldest first (copies). */
  denials: { owner: string; reason: string; since: number }[];
}

/** One boot instance of the WPAR kernel. */
export class Kernel {
  /** The owner named `kernel`: the C-shaped services and the idiomatic API. It cannot be closed. */
  readonly services: Owner;
  readonly #k: KernelState;

  /** @internal Use {@link createKernel}. */
  constructor(k: KernelState) {
    this.#k = k;
    this.services = new Owner(k, this.#ownerState('kernel'), false);
  }

  /** K2: the highest cid this kernel has ever allocated (0 before any). Never decreases. */
  get hiwater(): number {
    return this.#k.table.hiwater;
  }

  /** Opens the owner for one kernel extension. Throws EEXIST if `name` is open, EINVAL if it is not a name. */
  extension(name: string): Owner {
    if (typeof name !== 'string' || name.length === 0 || name.length > 256 || /[\p{Cc}]/u.test(name)) {
      throw new WparError('EINVAL', `invalid owner name ${JSON.stringify(String(name))}: 1 to 256 characters, no control characters`);
    }
    if (this.#k.owners.has(name)) throw new WparError('EEXIST', `owner "${name}" is already open`);
    return new Owner(this.#k, this.#ownerState(name), true);
  }

  /** Adds a kernel subsystem; WPARs activated from now on start and stop it (K14.4, K16.3). */
  use(subsystem: Subsystem): void {
    if (typeof subsystem?.name !== 'string' || typeof subsystem.start !== 'function' || typeof subsystem.stop !== 'function') {
      throw new WparError('EINVAL', 'a subsystem is { name: string, start(cid, corral), stop(cid, corral) }');
    }
    this.#k.subsystems = [...this.#k.subsystems, subsystem];
  }

  /** K14: activates a WPAR; resolves its cid, rejects with a WparError (EINVAL, EEXIST, EAGAIN, ECANCELED, ETIMEDOUT). */
  activate(corral: Corral, options: ActivateOptions = {}): Promise<number> {
    return activate(this.#k, corral, options?.restart === true, options?.cid);
  }

  /** K16: deactivates WPAR `cid`; rejects ENOENT if there is none. */
  deactivate(cid: number): Promise<void> {
    return deactivate(this.#k, cid);
  }

  /** WPAR `cid` now (any state), or `undefined`. */
  status(cid: number): WparStatus | undefined {
    const w = isCid(cid) ? this.#k.table.get(cid) : undefined;
    return w && snapshot(w);
  }

  /** Every WPAR holding a cid, by cid. */
  list(): WparStatus[] {
    return Array.from(this.#k.table.values(), snapshot);
  }

  /** Delivers every kernel event to `listener`, synchronously, until unsubscribed. */
  subscribe(listener: KernelEventListener): Subscription {
    if (typeof listener !== 'function') throw new WparError('EINVAL', 'a kernel event listener must be a function');
    return this.#k.events.subscribe(listener);
  }

  #ownerState(name: string): OwnerState {
    const s: OwnerState = { name, closed: false };
    this.#k.owners.set(name, s);
    if (this.#k.events.active) this.#k.events.emit({ type: 'owner.open', time: this.#k.clock.now(), owner: name });
    return s;
  }
}

function snapshot(w: Wpar): WparStatus {
  return { cid: w.cid, name: w.name, state: w.state, phase: w.phase, denials: w.denials.map((d) => ({ ...d })) };
}

/** Makes a kernel: one boot instance of the system. Throws EINVAL for options out of range. */
export function createKernel(options: KernelOptions = {}): Kernel {
  const maxWpars = intOption(options.maxWpars, 8192, 'maxWpars', 2 ** 31 - 1);
  const maxHooks = intOption(options.maxHooks, 256, 'maxHooks', 2 ** 31 - 1);
  const calloutTimeoutMs = intOption(options.calloutTimeoutMs, 30_000, 'calloutTimeoutMs', 2 ** 31 - 1);
  return new Kernel(new KernelState({
    maxWpars, maxHooks, calloutTimeoutMs,
    clock: options.clock ?? systemClock,
    onListenerError: options.onListenerError ?? (() => {}),
  }));
}

function intOption(value: unknown, fallback: number, name: string, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new WparError('EINVAL', `createKernel: ${name} must be an integer from 1 to ${max}`);
  }
  return value;
}
