/**
 * What a running WPAR uses now, read from its cgroup: memory, CPU time and processes (W2, W4).
 *
 * The cgroup is found through `/proc/PID/cgroup` of the WPAR's main process, so this module does not
 * repeat the runtime's rule for cgroup paths. cgroup v2 gives all three from the WPAR's directory;
 * on v1 the runtime uses no `cpuacct` hierarchy, so CPU is the user+system time of the processes in
 * the cgroup now (exited processes' time is not counted there).
 * @module
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CgroupController, CgroupSupport } from '../runtime/isolation.ts';

/** One WPAR's use now; a field is null where the machine does not say. */
export interface Usage {
  /** Bytes of memory charged to the cgroup (page cache included, as the limit counts it). */
  readonly memoryBytes: number | null;
  /** CPU time used, in seconds. */
  readonly cpuSeconds: number | null;
  /** Processes in the cgroup. */
  readonly procs: number | null;
}

const NONE: Usage = { memoryBytes: null, cpuSeconds: null, procs: null };
/** USER_HZ, the unit of `/proc/PID/stat` times, on every Linux architecture Node runs on. */
const TICKS = 100;

/** The use now of the WPAR whose main process is `pid`, or all nulls if it is not in a cgroup. */
export function readUsage(support: CgroupSupport | null, pid: number | null): Usage {
  if (support === null || pid === null) return NONE;
  const paths = cgroupPaths(pid);
  if (paths === null) return NONE;
  const dir = (c: CgroupController): string | null => {
    const mount = support.mounts[c];
    const rel = support.version === 2 ? paths.get('') : paths.get(c);
    return mount !== undefined && rel !== undefined ? join(mount, rel) : null;
  };
  const v2 = support.version === 2;
  const mem = dir('memory');
  const pids = dir('pids');
  const memoryBytes = mem ? readNumber(join(mem, v2 ? 'memory.current' : 'memory.usage_in_bytes')) : null;
  const procs = pids ? readNumber(join(pids, 'pids.current')) : null;
  let cpuSeconds: number | null = null;
  const cpu = dir('cpu');
  if (v2 && cpu) {
    const m = /^usage_usec (\d+)$/m.exec(readText(join(cpu, 'cpu.stat')) ?? '');
    cpuSeconds = m ? Number(m[1]) / 1e6 : null;
  } else {
    const any = mem ?? pids ?? cpu;
    if (any) cpuSeconds = processTime(readText(join(any, 'cgroup.procs')));
  }
  return { memoryBytes, cpuSeconds, procs };
}

/** Controller (`''` for v2's unified line) → cgroup path, from `/proc/PID/cgroup`; null if gone. */
function cgroupPaths(pid: number): Map<string, string> | null {
  const text = readText(`/proc/${pid}/cgroup`);
  if (text === null) return null;
  const paths = new Map<string, string>();
  for (const line of text.split('\n')) {
    const a = line.indexOf(':');
    const b = line.indexOf(':', a + 1);
    if (a < 0 || b < 0) continue;
    // `ID:CONTROLLERS:PATH` (the path may itself hold colons); v2's line has no controllers.
    const path = line.slice(b + 1);
    for (const c of line.slice(a + 1, b).split(',')) paths.set(c, path);
  }
  return paths;
}

/** utime + stime of the listed processes, in seconds. */
function processTime(procs: string | null): number | null {
  if (procs === null) return null;
  let total = 0;
  for (const pid of procs.split('\n')) {
    if (!pid) continue;
    const stat = readText(`/proc/${pid}/stat`);
    if (stat === null) continue;
    // Fields after the command (which may hold spaces and parentheses): state is field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    total += (Number(fields[11]) + Number(fields[12])) / TICKS;
  }
  return total;
}

function readNumber(path: string): number | null {
  const text = readText(path);
  if (text === null) return null;
  const n = Number(text.trim());
  return Number.isFinite(n) ? n : null;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}
