/**
 * Shared pieces of the runtime tests: definitions, scratch directories, a cgroup parent per test
 * file, and waiting for a WPAR's output without sleeping.
 * @module
 */

import { mkdtempSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WparDefinition } from '../../src/runtime/definition.ts';
import { followLog } from '../../src/runtime/console-log.ts';
import { detectIsolation, type Isolation } from '../../src/runtime/isolation.ts';
import { killLeftovers } from '../../src/runtime/leftovers.ts';
import { launch, type WparProcess } from '../../src/runtime/launch.ts';
import { readStat } from '../../src/runtime/proc.ts';

/** The isolation this machine gives WPARs. */
export const isolation: Isolation = detectIsolation();
/** The forced fallback: process group and rlimits. */
export const fallback: Isolation = detectIsolation({ fallback: true });
/** Whether the sealed runtime and a cgroup with every controller are in force (Linux, root). */
export const fullIsolation = isolation.seal !== null && isolation.cgroup?.controllers.length === 4;
/** Why a root-only test is skipped here, or `false`. */
export const skipUnlessIsolated: string | false = fullIsolation ? false : `needs the sealed runtime and cgroups (${isolation.notes.join('; ')})`;

/** A definition with defaults for everything but the command. */
export function definition(name: string, argv: readonly string[], more: Partial<WparDefinition> = {}): WparDefinition {
  return { name, argv, env: {}, hostname: null, checkpointable: false, limits: {}, autostart: false, ...more };
}

/** A scratch directory, a cgroup parent unique to it, and launching WPARs in them; `cleanup()` removes all. */
export class Scratch {
  readonly dir = mkdtempSync(join(tmpdir(), 'corral-runtime-'));
  /** Unique per scratch so parallel test files never share a cgroup. */
  readonly cgroupParent = `corral-test/${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  readonly #running: WparProcess[] = [];

  /** The console log of WPAR `name`. */
  log(name: string): string {
    return join(this.dir, name, 'console.log');
  }

  /** The root of WPAR `name`. */
  root(name: string): string {
    return join(this.dir, name, 'root');
  }

  /** Launches `def` with `iso` in this scratch directory. */
  async launch(def: WparDefinition, iso: Isolation = isolation): Promise<WparProcess> {
    const wpar = await launch({
      definition: def, cid: 42, root: this.root(def.name), agentPath: join(this.dir, def.name, 'agent', 'agent.sock'),
      consoleLog: this.log(def.name), isolation: iso, cgroupParent: this.cgroupParent,
    });
    this.#running.push(wpar);
    return wpar;
  }

  /** Kills whatever is still running and removes the cgroups and files. */
  async cleanup(): Promise<void> {
    await Promise.all(this.#running.map((w) => w.stop({ force: true }).catch(() => undefined)));
    await killLeftovers({ isolation, cgroupParent: this.cgroupParent });
    // The shared top directory goes once the last test file is done with it.
    for (const mount of new Set(Object.values(isolation.cgroup?.mounts ?? {}))) {
      try {
        rmdirSync(join(mount, 'corral-test'));
      } catch {
        // another test file still uses it
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Resolves with the log's text once it contains every marker (follows the log; no polling). */
export async function waitForOutput(log: string, markers: string | readonly string[], timeoutMs = 10_000): Promise<string> {
  const wanted = typeof markers === 'string' ? [markers] : markers;
  const signal = AbortSignal.timeout(timeoutMs);
  let text = '';
  for await (const chunk of followLog(log, { signal })) {
    text += chunk;
    if (wanted.every((m) => text.includes(m))) return text;
  }
  throw new Error(`no ${JSON.stringify(wanted)} in ${log} after ${timeoutMs} ms; got: ${JSON.stringify(text)}`);
}

/** Whether a process is still running (a zombie is not). */
export function running(pid: number): boolean {
  const stat = readStat(pid);
  return stat !== null && stat.state !== 'Z';
}
