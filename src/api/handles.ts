/**
 * Handles that release themselves: a hook (`await using`), a denial (`using`), a checkpoint (`using`).
 * @module
 */
import { allowDenial, clear } from '../kernel/checkpoint.ts';
import type { Hook } from '../kernel/hooks.ts';
import { whenIdle } from '../kernel/hooks.ts';
import type { KernelState } from '../kernel/state.ts';
import type { Denial, Wpar } from '../kernel/wpar.ts';
import { unregisterHook } from '../kernel/owners.ts';

/** A registered hook. Unregistering waits for its callouts in flight. */
export class HookHandle implements Disposable, AsyncDisposable {
  /** The registration key (as `kwpar_reghook` returns). */
  readonly key: number;
  /** The kernel's hiwater when it registered: every cid allocated before is `<=` this (K7). */
  readonly hiwater: number;
  readonly #k: KernelState;
  readonly #hook: Hook;

  /** @internal */
  constructor(k: KernelState, hook: Hook, hiwater: number) {
    this.#k = k;
    this.#hook = hook;
    this.key = hook.key;
    this.hiwater = hiwater;
  }

  /** False once unregistered (by this handle, the C facade, or the owner closing). */
  get registered(): boolean {
    return this.#hook.registered;
  }

  /**
   * Unregisters (no new callout begins from now on) and resolves when no callout to it is in flight.
   * Idempotent. Do not await it from inside this hook's own asynchronous callout: it would wait on itself.
   */
  unregister(): Promise<void> {
    if (this.#hook.registered) unregisterHook(this.#k, this.#hook.owner, this.key);
    return whenIdle(this.#hook);
  }

  /** Unregisters without waiting for callouts in flight. */
  [Symbol.dispose](): void {
    if (this.#hook.registered) unregisterHook(this.#k, this.#hook.owner, this.key);
  }

  /** Unregisters and waits for callouts in flight. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.unregister();
  }
}

/** One outstanding checkpoint denial. `allow()` withdraws exactly this denial. */
export class DenialHandle implements Disposable {
  /** The WPAR denied. */
  readonly cid: number;
  /** Who denied: the owner's name. */
  readonly owner: string;
  /** Why. */
  readonly reason: string;
  /** When, in milliseconds since the epoch. */
  readonly since: number;
  readonly #k: KernelState;
  readonly #w: Wpar;
  readonly #denial: Denial;

  /** @internal */
  constructor(k: KernelState, w: Wpar, denial: Denial) {
    this.#k = k;
    this.#w = w;
    this.#denial = denial;
    this.cid = w.cid;
    this.owner = denial.owner;
    this.reason = denial.reason;
    this.since = denial.since;
  }

  /** True while the denial is outstanding (not allowed, its owner open, its WPAR not stopping). */
  get active(): boolean {
    return this.#w.denials.includes(this.#denial);
  }

  /** Withdraws this denial; may let a waiting TRY proceed. Idempotent: false if it was already gone. */
  allow(): boolean {
    return allowDenial(this.#k, this.#w, this.#denial);
  }

  /** Same as {@link DenialHandle.allow}. */
  [Symbol.dispose](): void {
    this.allow();
  }
}

/** A checkpoint in progress (a TRY succeeded). `clear()` ends it (WPAR_CHECKPOINT_CLEAR). */
export class CheckpointHandle implements Disposable {
  /** The WPAR being checkpointed. */
  readonly cid: number;
  readonly #k: KernelState;
  readonly #w: Wpar;
  readonly #owner: string;
  #cleared = false;

  /** @internal */
  constructor(k: KernelState, w: Wpar, owner: string) {
    this.#k = k;
    this.#w = w;
    this.#owner = owner;
    this.cid = w.cid;
  }

  /** Ends the checkpoint. False if it was already cleared or the WPAR has left. */
  clear(): boolean {
    if (this.#cleared) return false;
    this.#cleared = true;
    if (this.#w.state === 'stopping' || this.#k.table.get(this.cid) !== this.#w) return false;
    return clear(this.#k, this.#w, this.#owner) === 0;
  }

  /** Same as {@link CheckpointHandle.clear}. */
  [Symbol.dispose](): void {
    this.clear();
  }
}
