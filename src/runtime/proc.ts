/**
 * Reading `/proc` (Linux): which processes belong to a process group or a PID namespace, who is whose
 * child, and what is in a process's environment. Zombies are left out: they run nothing and go away
 * when reaped.
 * @module
 */

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** What `/proc/PID/stat` says about one process. */
export interface ProcStat {
  /** Its pid. */
  readonly pid: number;
  /** One-letter state (`R`, `S`, `D`, `T`, `Z`...). */
  readonly state: string;
  /** Its parent's pid. */
  readonly ppid: number;
  /** Its process group. */
  readonly pgid: number;
  /** When it started: clock ticks since boot (field 22); with the pid, it names one process for good. */
  readonly startTime: number;
}

/** The stat of one process, or `null` if it is gone. */
export function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")".
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const [state = '?', ppid = '0', pgid = '0'] = fields;
  // Field 22 of the whole line; fields here start at field 3 (state).
  return { pid, state, ppid: Number(ppid), pgid: Number(pgid), startTime: Number(fields[19] ?? 0) };
}

/** Every live (non-zombie) process on the system. */
export function allProcesses(): ProcStat[] {
  const found: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat && stat.state !== 'Z') found.push(stat);
  }
  return found;
}

/** The live processes of process group `pgid`. */
export function groupMembers(pgid: number): number[] {
  return allProcesses().filter((p) => p.pgid === pgid).map((p) => p.pid);
}

/** The live children of `pid` (of its main thread, which is the only one that forks here). */
export function childrenOf(pid: number): number[] {
  try {
    // Cheap where the kernel has CONFIG_PROC_CHILDREN; otherwise scan every process.
    const listed = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
    return listed.filter(isLive);
  } catch {
    return allProcesses().filter((p) => p.ppid === pid).map((p) => p.pid);
  }
}

/** Whether `pid` exists and is not a zombie. */
export function isLive(pid: number): boolean {
  const stat = readStat(pid);
  return stat !== null && stat.state !== 'Z';
}

/** The live processes in the PID namespace whose init (PID 1 there) is host pid `initPid`, init included. */
export function namespaceMembers(initPid: number): number[] {
  const ns = pidNamespace(initPid);
  if (ns === null) return [];
  return allProcesses().filter((p) => pidNamespace(p.pid) === ns).map((p) => p.pid);
}

/** Whether `pid` is in a PID namespace other than this process's (the init of a WPAR's, say). */
export function ownPidNamespace(pid: number): boolean {
  const ns = pidNamespace(pid);
  return ns !== null && ns !== pidNamespace(process.pid);
}

function pidNamespace(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return null;
  }
}

/** The value of `key` in the environment `pid` was started with, or `undefined` (also when unreadable). */
export function environValue(pid: number, key: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/environ`, 'utf8');
  } catch {
    return undefined;
  }
  const prefix = `${key}=`;
  return text.split('\0').find((entry) => entry.startsWith(prefix))?.slice(prefix.length);
}
