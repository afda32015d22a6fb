/**
 * Finding and killing what a crashed daemon left running that the new one could not adopt (R7): at
 * start-up the daemon hands over the cgroup parent, the process groups it had recorded and the
 * cgroups of the WPARs it adopted; nothing else of those WPARs survives.
 * @module
 */

import { WparError } from '../kernel/errno.ts';
import { Cgroup, signalProcess } from './cgroup.ts';
import { errorCode, systemError } from './errors.ts';
import type { Isolation } from './isolation.ts';
import { waitFor } from './poll.ts';
import { childrenOf, environValue, groupMembers, namespaceMembers, ownPidNamespace } from './proc.ts';

/** A WPAR started without a cgroup, as the daemon recorded it. */
export interface RecordedGroup {
  /** Its process group ({@link WparProcess.pgid}). */
  readonly pgid: number;
  /** Its name: a group is only killed if one of its processes has `WPAR_NAME` set to it. */
  readonly name: string;
}

/** Where to look for leftovers. */
export interface LeftoverOptions {
  /** The isolation of this machine; its cgroup hierarchy is searched (use the detected one even if WPARs are forced to the fallback). */
  readonly isolation: Isolation;
  /** The cgroup parent the previous daemon used (the same `cgroupParent` as given to launch). */
  readonly cgroupParent?: string;
  /** The process groups the previous daemon recorded. */
  readonly groups?: readonly RecordedGroup[];
  /** Cgroups below `cgroupParent` to leave alone (WPARs adopted by the new daemon); the parent then stays. */
  readonly keep?: readonly string[];
}

/** What {@link killLeftovers} did. */
export interface LeftoverReport {
  /** Host pids that were killed. */
  readonly killed: readonly number[];
  /** Cgroups (paths) that were removed, the parent included. */
  readonly cgroupsRemoved: readonly string[];
}

/**
 * SIGKILLs every process in the cgroups below `cgroupParent` and in the recorded process groups, waits
 * until they are gone and removes the cgroups. A recorded pgid whose processes do not carry the
 * WPAR's name is left alone: after a reboot the number may belong to something else.
 */
export async function killLeftovers(options: LeftoverOptions): Promise<LeftoverReport> {
  const killed: number[] = [];
  const cgroupsRemoved: string[] = [];
  const support = options.isolation.cgroup;
  if (options.cgroupParent !== undefined && support) {
    const parent = Cgroup.open(support, options.cgroupParent);
    const keep = options.keep ?? [];
    const kept = (path: string): boolean => keep.some((k) => path === k || path.startsWith(`${k}/`));
    if (parent.exists()) {
      const paths = parent.descendants().filter((p) => !kept(p));
      for (const path of keep.length > 0 ? paths : [...paths, parent.path]) {
        const cgroup = Cgroup.open(support, path);
        killed.push(...cgroup.pids());
        await cgroup.killAll();
        await cgroup.remove();
        cgroupsRemoved.push(path);
      }
    }
  }
  for (const group of options.groups ?? []) {
    const members = groupMembers(group.pgid);
    if (!members.some((pid) => environValue(pid, 'WPAR_NAME') === group.name)) continue;
    // A sealed WPAR without a cgroup: its sandbox (the outer bwrap's child, PID 1 of the WPAR's PID
    // namespace) runs in a session of its own, so outside the recorded group; its namespace goes with it.
    const sandboxes = members.flatMap((pid) => childrenOf(pid))
      .filter((pid) => environValue(pid, 'WPAR_NAME') === group.name && ownPidNamespace(pid));
    const inside = (): number[] => sandboxes.flatMap((pid) => namespaceMembers(pid));
    killed.push(...new Set([...members, ...inside()]));
    await waitFor(() => {
      try {
        process.kill(-group.pgid, 'SIGKILL');
      } catch (err) {
        if (errorCode(err) !== 'ESRCH') throw systemError(`cannot kill process group ${group.pgid} of WPAR ${group.name}`, err);
      }
      for (const pid of sandboxes) signalProcess(pid, 'SIGKILL');
      return groupMembers(group.pgid).length === 0 && inside().length === 0;
    }, { timeoutMs: 10_000, what: `process group ${group.pgid} of WPAR ${group.name} to die` }).catch((err: unknown) => {
      throw err instanceof WparError ? err : systemError(`WPAR ${group.name}`, err);
    });
  }
  return { killed, cgroupsRemoved };
}
