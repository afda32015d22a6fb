/**
 * The daemon's home: everything one system keeps (R1). Every command finds its daemon the same way:
 * `--home DIR`, else `$WPAR_HOME`, else a per-user default.
 * @module
 */
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { idRangeForHome, type IdRange } from '../runtime/idmap.ts';
import { resolveHome as resolveHomeRule, RUN_DIR, socketPath } from '../definition/home.ts';

/** The home directory for a `--home` value (or none): the rule every command uses too. */
export function resolveHome(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolveHomeRule(flag, env);
}

/** Unix socket paths are limited to 107 bytes on Linux; a home deeper than this cannot hold them. */
export const MAX_SOCKET_PATH = 107;

/** Where each thing lives inside a home. */
export class HomeLayout {
  /** The home directory, absolute. */
  readonly home: string;

  constructor(home: string) {
    this.home = resolve(home);
  }

  /** The embedded database. */
  get database(): string { return join(this.home, 'corral.db'); }
  /** Every kernel and runtime event as JSON lines. */
  get eventsLog(): string { return join(this.home, 'events.log'); }
  /** Directory of sockets, mode 0700. */
  get runDir(): string { return join(this.home, RUN_DIR); }
  /** The control socket (mode 0600). */
  get socket(): string { return socketPath(this.home); }
  /**
   * The directory of the agent socket of the WPAR holding `cid`: its own, because a sealed WPAR sees
   * exactly this directory of the home (S3).
   */
  agentDir(cid: number): string { return join(this.runDir, `agent-${cid}`); }
  /** The agent socket of the WPAR holding `cid` (short, so deep homes still fit the socket path limit). */
  agentSocket(cid: number): string { return join(this.agentDir(cid), 'agent.sock'); }
  /** Directory of the WPARs' directories, mode 0700. */
  get wparsDir(): string { return join(this.home, 'wpars'); }
  /** Directory of one WPAR, mode 0700 (its root inside keeps its own mode). */
  wparDir(name: string): string { return join(this.home, 'wpars', name); }
  /** A WPAR's root: its private writable directory and its processes' working directory (R2). */
  root(name: string): string { return join(this.wparDir(name), 'root'); }
  /** A sealed WPAR's private temporary directory (`TMPDIR`): a tmpfs inside, nothing on the host. */
  tmpDir(name: string): string { return join(this.wparDir(name), 'tmp'); }
  /** The host ids a sealed WPAR's ids map to: one range per home (see `runtime/idmap.ts`). */
  get ids(): IdRange { return idRangeForHome(this.home); }
  /** A WPAR's console log. */
  consoleLog(name: string): string { return join(this.wparDir(name), 'console.log'); }
  /** Where a sealed WPAR's outer bwrap writes its status and exit code (`--json-status-fd`, R7). */
  statusFile(name: string): string { return join(this.wparDir(name), 'status.json'); }
  /** `wpars/NAME/checkpoint-kill.json`: `chkptwpar -k` wrote its image and is stopping the frozen processes (R7). */
  pendingKill(name: string): string { return join(this.wparDir(name), 'checkpoint-kill.json'); }
  /** The cgroup parent of this home's WPARs: stable per home, so leftovers are found after a crash. */
  get cgroupParent(): string {
    return `corral/${createHash('sha256').update(this.home).digest('hex').slice(0, 12)}`;
  }
}
