/**
 * The `-R` resource-limit syntax of `mkwpar`: `memory=256M,cpu=50,procs=64`.
 * @module
 */

import { WparError } from '../kernel/errno.ts';
import { formatSize, maxCpuPercent, MIN_MEMORY_BYTES, parseSize, parseWhole } from '../definition/rules.ts';
import type { Limits } from './definition.ts';

/** Options of {@link parseLimits}. */
export interface ParseLimitsOptions {
  /** CPUs of this system; `cpu` may go up to 100 × this. Defaults to `os.availableParallelism()`. */
  readonly cpus?: number;
}

/**
 * Parses a limit list such as `memory=256M,cpu=50,procs=64`; an empty string means no limits.
 * `memory` is bytes with an optional binary unit (K, M, G, T), at least 1M; `cpu` an integer
 * percentage of one CPU from 1 to 100 × CPUs; `procs` a positive integer (the rules of
 * `src/definition/rules.ts`).
 * @throws WparError EINVAL naming the bad item: malformed, unknown key, duplicate key or bad value.
 */
export function parseLimits(spec: string, options: ParseLimitsOptions = {}): Limits {
  // node:os only when needed (it is a command's start-up cost otherwise): lswpar formats limits, never parses them.
  const maxCpu = maxCpuPercent(options.cpus ?? process.getBuiltinModule('node:os').availableParallelism());
  const limits: { memoryBytes?: number; cpuPercent?: number; procs?: number } = {};
  if (spec === '') return limits;
  const seen = new Set<string>();
  for (const item of spec.split(',')) {
    const bad = (why: string): WparError => new WparError('EINVAL', `bad resource limit "${item}": ${why}`);
    const eq = item.indexOf('=');
    if (eq <= 0) throw bad('expected KEY=VALUE with KEY one of memory, cpu, procs');
    const key = item.slice(0, eq);
    const value = item.slice(eq + 1);
    if (seen.has(key)) throw bad(`${key} is given more than once`);
    seen.add(key);
    switch (key) {
      case 'memory': {
        const bytes = parseSize(value);
        if (!(bytes >= MIN_MEMORY_BYTES)) {
          throw bad('memory must be a number of bytes with an optional unit K, M, G or T, at least 1M (e.g. 256M)');
        }
        limits.memoryBytes = bytes;
        break;
      }
      case 'cpu': {
        const n = parseWhole(value);
        if (!(n >= 1 && n <= maxCpu)) throw bad(`cpu must be an integer percentage from 1 to ${maxCpu}`);
        limits.cpuPercent = n;
        break;
      }
      case 'procs': {
        const n = parseWhole(value);
        if (!(n >= 1)) throw bad('procs must be a positive integer');
        limits.procs = n;
        break;
      }
      default:
        throw bad(`unknown limit "${key}" (known: memory, cpu, procs)`);
    }
  }
  return limits;
}

/** Formats limits back into `-R` syntax (`memory=256M,cpu=50,procs=64`); no limits gives `''`. */
export function formatLimits(limits: Limits): string {
  const items: string[] = [];
  if (limits.memoryBytes !== undefined) items.push(`memory=${formatSize(limits.memoryBytes)}`);
  if (limits.cpuPercent !== undefined) items.push(`cpu=${limits.cpuPercent}`);
  if (limits.procs !== undefined) items.push(`procs=${limits.procs}`);
  return items.join(',');
}
