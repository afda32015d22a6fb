/**
 * Observable kernel events: one typed stream of every transition, so a daemon can log them and a
 * console can show them. With no listener, nothing is built: call sites test {@link EventHub.active}.
 * @module
 */

/** Fields every event carries. */
interface Base {
  /** Wall-clock milliseconds since the epoch. */
  readonly time: number;
}
/** Fields of events about one WPAR. */
interface AboutWpar extends Base {
  readonly cid: number;
  readonly name: string;
}

/** Every kernel event, discriminated by `type`. */
export type KernelEvent =
  | (Base & { readonly type: 'owner.open' | 'owner.close'; readonly owner: string })
  | (Base & { readonly type: 'hook.register'; readonly owner: string; readonly key: number; readonly hiwater: number })
  | (Base & { readonly type: 'hook.unregister'; readonly owner: string; readonly key: number })
  | (AboutWpar & { readonly type: 'wpar.activating'; readonly restart: boolean })
  | (AboutWpar & { readonly type: 'wpar.active' | 'wpar.stopping' | 'wpar.stopped' })
  | (AboutWpar & { readonly type: 'wpar.failed'; readonly code: string; readonly message: string })
  | (AboutWpar & {
      readonly type: 'callout';
      readonly flags: 'WPARSTART' | 'WPARSTOP';
      readonly owner: string;
      readonly key: number;
      /** `ok`, or why it failed: returned non-zero, threw/rejected, or outlasted the callout timeout. */
      readonly outcome: 'ok' | 'failed' | 'timeout';
      readonly detail?: string;
      readonly ms: number;
    })
  | (AboutWpar & {
      readonly type: 'subsystem';
      readonly step: 'start' | 'stop';
      readonly subsystem: string;
      readonly ok: boolean;
      readonly detail?: string;
    })
  | (AboutWpar & { readonly type: 'deny'; readonly owner: string; readonly reason: string; readonly since: number })
  | (AboutWpar & {
      readonly type: 'allow';
      readonly owner: string;
      readonly reason: string;
      readonly since: number;
      /** Why the denial ended: its owner allowed it, its owner closed, or the WPAR started stopping. */
      readonly cause: 'allow' | 'owner-closed' | 'wpar-stopping';
    })
  | (AboutWpar & { readonly type: 'try.wait'; readonly owner: string; readonly timeoutMs: number; readonly denials: number })
  | (AboutWpar & {
      readonly type: 'try.done';
      readonly owner: string;
      /** 'ok' when the checkpoint may proceed; otherwise the errno name the TRY returned. */
      readonly result: 'ok' | 'ETIMEDOUT' | 'ENOENT' | 'EINTR' | 'EBUSY';
      readonly waitedMs: number;
    })
  | (AboutWpar & { readonly type: 'checkpoint.clear' | 'restart.clear'; readonly owner: string });

/** The `type` of a {@link KernelEvent}. */
export type KernelEventType = KernelEvent['type'];

/** Receives kernel events, synchronously, in the order they happen. */
export type KernelEventListener = (event: KernelEvent) => void;

/** Stops a listener; also `Disposable`, so `using sub = kernel.subscribe(...)` works. */
export interface Subscription extends Disposable {
  /** Stops delivery to this listener. Idempotent. */
  unsubscribe(): void;
}

/** Fan-out to listeners. A throwing listener never disturbs the kernel: its error goes to `onError`. */
export class EventHub {
  /** True when at least one listener is subscribed; emitters check it before building an event. */
  active = false;
  #listeners: KernelEventListener[] = [];
  readonly #onError: (err: unknown, event: KernelEvent) => void;

  constructor(onError: (err: unknown, event: KernelEvent) => void) {
    this.#onError = onError;
  }

  /** Adds a listener. */
  subscribe(listener: KernelEventListener): Subscription {
    this.#listeners = [...this.#listeners, listener];
    this.active = true;
    const unsubscribe = (): void => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
      this.active = this.#listeners.length > 0;
    };
    return { unsubscribe, [Symbol.dispose]: unsubscribe };
  }

  /** Delivers `event` to every listener subscribed now. */
  emit(event: KernelEvent): void {
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch (err) {
        this.#onError(err, event);
      }
    }
  }
}
