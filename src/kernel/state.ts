/**
 * The state of one kernel (one boot instance): its tables, its clock and its event hub. Kernels share
 * nothing, so two of them in one process are two systems.
 * @module
 */
import { CidTable } from './cid-table.ts';
import type { Clock } from './clock.ts';
import { EventHub } from './events.ts';
import { HookRegistry } from './hooks.ts';
import type { OwnerState } from './owner.ts';
import type { Subsystem } from './subsystem.ts';
import type { Wpar } from './wpar.ts';

export type { OwnerState } from './owner.ts';

/** Limits and collaborators of a kernel, resolved from `createKernel` options. */
export interface KernelConfig {
  readonly maxWpars: number;
  readonly maxHooks: number;
  readonly calloutTimeoutMs: number;
  readonly clock: Clock;
  readonly onListenerError: (err: unknown) => void;
}

/** Everything one kernel holds. */
export class KernelState {
  readonly clock: Clock;
  readonly calloutTimeoutMs: number;
  readonly events: EventHub;
  readonly table: CidTable<Wpar>;
  /** WPARs by name, for EEXIST (K14.1). */
  readonly names = new Map<string, Wpar>();
  readonly hooks: HookRegistry;
  /** Replaced on `use()`, never mutated: each WPAR keeps the array it was activated with. */
  subsystems: readonly Subsystem[] = [];
  readonly owners = new Map<string, OwnerState>();

  constructor(config: KernelConfig) {
    this.clock = config.clock;
    this.calloutTimeoutMs = config.calloutTimeoutMs;
    this.events = new EventHub(config.onListenerError);
    this.table = new CidTable(config.maxWpars);
    this.hooks = new HookRegistry(config.maxHooks);
  }
}
