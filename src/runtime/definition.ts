/**
 * A WPAR's definition: what `mkwpar` records and what survives daemon restarts (R2). The rules each
 * field follows are in `src/definition/rules.ts`, the one module every layer checks with.
 * @module
 */
import { NAME_PATTERN } from '../kernel/corral.ts';

/** Resource limits; an absent field is unlimited. */
export interface Limits {
  /** Memory limit in bytes (`-R memory=256M`). */
  readonly memoryBytes?: number;
  /** CPU limit as a percentage of one CPU (`-R cpu=50`; 200 is two CPUs). */
  readonly cpuPercent?: number;
  /** Maximum number of processes (`-R procs=64`). */
  readonly procs?: number;
}

import type { NetworkSpec } from '../definition/network.ts';

/** Everything `mkwpar` defines about a WPAR. Plain data: it is stored as JSON and carried in images. */
export interface WparDefinition {
  /** The WPAR's name (the kernel's rule: `^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`). */
  readonly name: string;
  /** The command and its arguments; executed directly, never through a shell. */
  readonly argv: readonly string[];
  /** Extra environment variables for the WPAR's processes. */
  readonly env: Readonly<Record<string, string>>;
  /** Hostname inside the WPAR (UTS namespace); `null` means the WPAR's name. */
  readonly hostname: string | null;
  /** Whether `chkptwpar` may checkpoint it (`mkwpar -c`). */
  readonly checkpointable: boolean;
  /** Resource limits (`mkwpar -R`). */
  readonly limits: Limits;
  /** Start it when the daemon starts (`mkwpar -A`). */
  readonly autostart: boolean;
  /** In a cluster: fenced when the host loses its lease, restarted elsewhere (`mkwpar --failover`, C4, C6); absent is false. */
  readonly failover?: boolean;
  /** Its network (`mkwpar -N`, S5); absent is the host's network. */
  readonly network?: NetworkSpec;
  /** Checkpointed every this many seconds by its owner (`mkwpar --checkpoint-every`, C5); absent: never. */
  readonly checkpointEvery?: number;
  /** With `checkpointEvery`, in a cluster: how many other hosts get each image (`--replicas`, default 1). */
  readonly replicas?: number;
}

/** The kernel's WPAR name rule (K14), shared by every layer that accepts a name. */
export const WPAR_NAME_PATTERN: RegExp = NAME_PATTERN;
