/**
 * One record per WPAR: its lifecycle state, checkpoint phase and denials (the kernel's per-WPAR state,
 * kept in one place as illumos keeps per-zone state).
 * @module
 */
import type { KernelCorral } from './corral.ts';
import type { Subsystem } from './subsystem.ts';

/** Lifecycle state (K14–K16). A `stopping` WPAR has left: checkpoint services answer ENOENT. */
export type WparState = 'starting' | 'active' | 'stopping';

/** Checkpoint phase (K11): `pending` while a TRY waits, `checkpointing` after it succeeded. */
export type CheckpointPhase = 'normal' | 'pending' | 'checkpointing' | 'restarting';

/** A checkpoint denial: who posted it, why, and when (milliseconds since the epoch). */
export interface Denial {
  readonly owner: string;
  readonly reason: string;
  readonly since: number;
}

/** A TRY that is waiting for denials to clear. */
export interface TryWaiter {
  readonly owner: string;
  readonly startedAt: number;
  readonly timeoutMs: number;
  timer: unknown;
  readonly settle: (errno: number) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: (() => void) | undefined;
}

/** The kernel's record of one WPAR. Fields are set in the constructor so every record has one shape. */
export class Wpar {
  readonly cid: number;
  readonly name: string;
  readonly corral: KernelCorral;
  /** The subsystems in force when it was activated: those are the ones that stop. */
  readonly subsystems: readonly Subsystem[];
  state: WparState = 'starting';
  phase: CheckpointPhase;
  /** Outstanding denials, oldest first. */
  denials: Denial[] = [];
  waiter: TryWaiter | undefined = undefined;
  /** True until activation has settled (including a failed activation's rollback). */
  activating = true;
  activation: Promise<number> | undefined = undefined;
  stopped: Promise<void> | undefined = undefined;

  constructor(cid: number, corral: KernelCorral, subsystems: readonly Subsystem[], restart: boolean) {
    this.cid = cid;
    this.name = corral.name;
    this.corral = corral;
    this.subsystems = subsystems;
    this.phase = restart ? 'restarting' : 'normal';
  }
}
