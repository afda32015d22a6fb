/**
 * Kernel subsystems: "other kernel subsystem processing" that runs after WPARSTART callouts and before
 * WPARSTOP callouts (the runtime that starts processes is one).
 * @module
 */
import type { KernelCorral } from './corral.ts';

/** A kernel subsystem added with `kernel.use()`. */
export interface Subsystem {
  /** Names the subsystem in events and errors. */
  readonly name: string;
  /** Called during activation, after every WPARSTART callout, in `use()` order. Throw or reject to refuse. */
  start(cid: number, corral: KernelCorral): void | Promise<void>;
  /** Called during deactivation, before any WPARSTOP callout, in reverse `use()` order. Errors are reported. */
  stop(cid: number, corral: KernelCorral): void | Promise<void>;
}
