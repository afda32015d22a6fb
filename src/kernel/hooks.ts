/**
 * The hook registry (K4–K9): a table of small records (key, owner, function), kept in registration
 * order. The owner on each record is what makes EPERM and "release on close" trivial.
 * @module
 */
import type { KernelCorral } from './corral.ts';
import type { OwnerState } from './owner.ts';

/** A notification function as the kernel calls it: `(flags, cid, corralp, null)`. */
export type ConfigFunc = (flags: number, cid: number, corralp: KernelCorral, unused: null) => unknown;

/** One registered hook. */
export interface Hook {
  readonly key: number;
  readonly owner: OwnerState;
  readonly fn: ConfigFunc;
  /** False from the moment it is unregistered: no new callout to it begins (K8). */
  registered: boolean;
  /** Callouts to it that have begun and not yet settled (or timed out). */
  inflight: number;
  /** Waiters for `inflight` to reach zero (the idiomatic unregister). */
  idle: (() => void)[] | undefined;
}

/** Registered hooks by key, and a registration-ordered snapshot that is replaced, never mutated. */
export class HookRegistry {
  readonly #byKey = new Map<number, Hook>();
  #ordered: readonly Hook[] = [];
  #nextKey = 1;
  readonly #max: number;

  /** @param max the most hooks registered at once (`maxHooks`). */
  constructor(max: number) {
    this.#max = max;
  }

  /** True when another hook fits (K6). */
  get hasRoom(): boolean {
    return this.#byKey.size < this.#max;
  }

  /** Registered hooks in registration order. The array is never mutated, so it is a safe snapshot. */
  get ordered(): readonly Hook[] {
    return this.#ordered;
  }

  /** Registers `fn` for `owner` under the next key (K5: increasing, never reused). Caller checks room. */
  add(owner: OwnerState, fn: ConfigFunc): Hook {
    const hook: Hook = { key: this.#nextKey++, owner, fn, registered: true, inflight: 0, idle: undefined };
    this.#byKey.set(hook.key, hook);
    this.#ordered = [...this.#ordered, hook];
    return hook;
  }

  /** The registered hook with `key`, if any. */
  get(key: number): Hook | undefined {
    return this.#byKey.get(key);
  }

  /** Removes `hook`; from now on no callout to it begins. */
  remove(hook: Hook): void {
    if (!hook.registered) return;
    hook.registered = false;
    this.#byKey.delete(hook.key);
    this.#ordered = this.#ordered.filter((h) => h !== hook);
  }
}

/** Marks one callout to `hook` settled and wakes idle waiters when none remain. */
export function calloutSettled(hook: Hook): void {
  if (--hook.inflight === 0 && hook.idle !== undefined) {
    const waiters = hook.idle;
    hook.idle = undefined;
    for (const wake of waiters) wake();
  }
}

/** Resolves once no callout to `hook` is in flight. */
export function whenIdle(hook: Hook): Promise<void> {
  if (hook.inflight === 0) return Promise.resolve();
  return new Promise((resolve) => (hook.idle ??= []).push(resolve));
}
