/**
 * The control API between the commands and `wpard`: HTTP/1.1 with JSON bodies over the Unix socket
 * `HOME/run/wpard.sock` (mode 0600). This file is the contract; `docs/architecture.md` lists it too.
 *
 * | method | path | body | answer |
 * |---|---|---|---|
 * | GET | `/v1/system` | | {@link SystemInfo} |
 * | GET | `/v1/wpars[?name=A&name=B]` | | {@link WparInfo}[] by name; an unknown name → 404 ENOENT |
 * | POST | `/v1/wpars` | {@link CreateRequest} | 201 {@link WparInfo} |
 * | DELETE | `/v1/wpars/:name[?force=1]` | | 204; active without force → 409 EBUSY |
 * | POST | `/v1/wpars/:name/start` | | {@link WparInfo} once active (processes running) |
 * | POST | `/v1/wpars/:name/stop` | {@link StopRequest} | {@link WparInfo} once defined again |
 * | GET | `/v1/wpars/:name/wait` | | {@link ExitInfo} when the WPAR next returns to `D` (now, if it is `D` with an exit) |
 * | GET | `/v1/wpars/:name/logs[?follow=1[&next=1]&tail=LINES]` | | `text/plain` console log; `follow` streams until the current run ends (`next=1`: the next run, even if not started yet) |
 * | GET | `/v1/events[?follow=1&tail=N]` | | `application/x-ndjson` stream of {@link DaemonEvent} |
 * | POST | `/v1/wpars/:name/checkpoint` | {@link CheckpointRequest} | {@link CheckpointResult} |
 * | POST | `/v1/restart` | {@link RestartRequest} | 201 {@link WparInfo} |
 * | GET | `/v1/hosts` | | in a cluster: `HostInfo`[] (`src/cluster/membership.ts`); else 400 EINVAL |
 *
 * Errors: a non-2xx status with {@link ApiError}; `code` is the errno name where the kernel gave one.
 * @module
 */
import type { WparDefinition } from '../runtime/definition.ts';

/** AIX's state letters (`lswpar`): Defined, Transitional, Active, Frozen, Broken, Moving (M3.6). */
export type WparLetter = 'D' | 'T' | 'A' | 'F' | 'B' | 'M';

/** A denial as the API shows it. */
export interface DenialInfo {
  readonly owner: string;
  readonly reason: string;
  /** Milliseconds since the epoch. */
  readonly since: number;
}

/** How a WPAR's main process last ended. */
export interface ExitInfo {
  /** Exit code, or null when killed by a signal. */
  readonly code: number | null;
  /** Signal name (`SIGKILL`), or null. */
  readonly signal: string | null;
  /** When, in milliseconds since the epoch. */
  readonly at: number;
  /** Why, in words: `exited`, `stopped by stopwpar`, `killed by the memory limit`, `lost (daemon crashed)`, ... */
  readonly reason: string;
}

/** One WPAR as `lswpar --json` prints it. */
export interface WparInfo {
  readonly name: string;
  readonly state: WparLetter;
  /** The kernel's cid while it holds one, else null. */
  readonly cid: number | null;
  /** The kernel's checkpoint phase while it holds a cid, else null. */
  readonly phase: 'normal' | 'pending' | 'checkpointing' | 'restarting' | null;
  readonly checkpointable: boolean;
  readonly denials: readonly DenialInfo[];
  readonly autostart: boolean;
  readonly definition: WparDefinition;
  /** Absolute path of the WPAR's root directory. */
  readonly root: string;
  /** Isolation in force while it runs (`lswpar -L`), e.g. `sealed: user (uid 0 = host 134283264), ...; cgroup v1 ...`. */
  readonly isolation: string | null;
  /** What the daemon cannot give WPARs here, one line per missing piece with what to install (S7). */
  readonly isolationMissing: readonly string[];
  /** Limits of its definition that nothing in force enforces while it runs (`memoryBytes`, ...). */
  readonly unenforcedLimits: readonly string[];
  /** Host PID of the main process while it runs. */
  readonly pid: number | null;
  /** When it last became active (ms since the epoch), or null. */
  readonly startedAt: number | null;
  readonly lastExit: ExitInfo | null;
  /** Removed automatically when it ends (`wparexec`). */
  readonly transient: boolean;
  /** While a move is under way (state `M`): the peer it is moving to. */
  readonly movingTo?: string;
  /** In a cluster (C3): the host it is defined on. */
  readonly host?: string;
  /** In a cluster (C4): its ownership epoch, which rises with every change of owner (`WPAR_EPOCH`). */
  readonly epoch?: number;
  /** With scheduled checkpoints (C5): its last checkpoint and where its replicas are. */
  readonly checkpoint?: LastCheckpointInfo;
}

/** The last scheduled checkpoint of a WPAR (`lswpar -L`, C5). */
export interface LastCheckpointInfo {
  /** The epoch and sequence number it was taken at (its directory `HOME/checkpoints/NAME/EPOCH-SEQ`). */
  readonly epoch: number;
  readonly seq: number;
  /** When it completed (ms since the epoch). */
  readonly time: number;
  /** Seconds since then, when listed. */
  readonly ageSec: number;
  /** The image's size in bytes. */
  readonly size: number;
  /** The hosts holding a verified copy (empty outside a cluster). */
  readonly hosts: readonly string[];
}

/** `POST /v1/wpars`. */
export interface CreateRequest {
  readonly definition: WparDefinition;
  /** Start it right away (`mkwpar -s`, `wparexec`). A start that fails removes it again unless `keep`. */
  readonly start?: boolean;
  /** With `start`: keep the definition (state B, with the reason) if the start fails (`mkwpar -s --keep`). */
  readonly keep?: boolean;
  /** Remove it when it ends (`wparexec`). */
  readonly transient?: boolean;
  /** In a cluster (C3): the host to define it on (`mkwpar --host`); else the least-loaded up host. */
  readonly host?: string;
}

/** `POST /v1/wpars/:name/stop`. */
export interface StopRequest {
  /** SIGKILL at once (`stopwpar -F`). */
  readonly force?: boolean;
  /** Seconds between SIGTERM and SIGKILL (`stopwpar -t`, default 10). */
  readonly timeoutSec?: number;
}

/** `POST /v1/wpars/:name/checkpoint`. */
export interface CheckpointRequest {
  /** Absolute image directory. */
  readonly dir: string;
  /** Stop the WPAR after the checkpoint (`-k`). */
  readonly kill?: boolean;
  /** Willing-to-wait seconds for TRY (`-w`, default 30). */
  readonly waitSec?: number;
  /** Replace an image already in `dir` (`-F`); without it such a directory is refused (EEXIST). */
  readonly force?: boolean;
}

/** What a checkpoint did. */
export interface CheckpointResult {
  readonly name: string;
  readonly dir: string;
  readonly bytes: number;
  /** How long the WPAR's processes were frozen, in milliseconds. */
  readonly frozenMs: number;
  readonly totalMs: number;
  readonly agents: readonly string[];
  readonly killed: boolean;
  /**
   * The copy rounds (M5): the whole root while the WPAR ran, the deltas copied while it ran, and
   * the last delta, frozen. Entries stored, paths removed, image bytes and milliseconds of each.
   */
  readonly rounds?: ReadonlyArray<{ readonly entries: number; readonly removed: number; readonly bytes: number; readonly ms: number }>;
}

/** `POST /v1/restart`. */
export interface RestartRequest {
  /** Absolute image directory. */
  readonly dir: string;
  /** The WPAR name the image must hold (`restartwpar ... NAME`). */
  readonly name: string;
  /** Restart under another name (`-n NEWNAME`). */
  readonly newName?: string;
  /** Accept an image that is unsigned or not signed by this home or a trusted peer (`--insecure`). */
  readonly insecure?: boolean;
}

/** `GET /v1/system`. */
export interface SystemInfo {
  readonly home: string;
  readonly pid: number;
  readonly version: string;
  /** Isolation new WPARs get. */
  readonly isolation: string;
  /** What is missing from it, one line per piece with what to install or enable (S7). */
  readonly isolationMissing: readonly string[];
  readonly hiwater: number;
  readonly extensions: readonly string[];
}

/** A line of `wpar events` and `HOME/events.log`: a kernel event or a runtime event. */
export interface DaemonEvent {
  readonly type: string;
  /** Milliseconds since the epoch. */
  readonly time: number;
  readonly [field: string]: unknown;
}

/** The body of every error answer. */
export interface ApiError {
  readonly error: {
    /** Errno name (`ENOENT`, `EEXIST`, `EINVAL`, `EBUSY`, `ETIMEDOUT`, ...) or `EIO` for anything else. */
    readonly code: string;
    /** One line: what failed and why. */
    readonly message: string;
  };
}

/** HTTP status for an errno name. */
export function statusFor(code: string): number {
  switch (code) {
    case 'ENOENT': return 404;
    case 'EEXIST': case 'EBUSY': return 409;
    case 'EINVAL': return 400;
    case 'EPERM': case 'EACCES': return 403;
    case 'ETIMEDOUT': return 504;
    case 'EAGAIN': case 'ECONNREFUSED': return 503;
    case 'ECONNRESET': case 'EPROTO': return 502;
    case 'EMSGSIZE': return 413;
    default: return 500;
  }
}
