/**
 * The environment of a WPAR's processes (R2): a small process-safe base, the definition's variables,
 * then the `WPAR_*` variables, which the definition cannot override.
 * @module
 */

import { WparError } from '../kernel/errno.ts';
import type { WparDefinition } from './definition.ts';

/** The runtime facts a WPAR's processes are told about in `WPAR_*` variables. */
export interface WparVariables {
  /** `WPAR_CID`: the WPAR's cid in the kernel. */
  readonly cid: number;
  /** `WPAR_ROOT`: the WPAR's root directory (absolute). */
  readonly root: string;
  /** `WPAR_AGENT`: the agent endpoint (a Unix socket path). */
  readonly agent: string;
  /** `WPAR_EPOCH`: in a cluster, the WPAR's ownership epoch (C4, docs/cluster.md); absent elsewhere. */
  readonly epoch?: number;
}

/** PATH when the daemon has none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// Only what a program needs to behave normally; the daemon's own variables (its home, credentials,
// NODE_OPTIONS...) must not leak into WPARs.
const INHERITED = ['LANG', 'LC_ALL', 'TZ'] as const;

/**
 * The environment for `definition`'s processes: PATH (the daemon's, else {@link DEFAULT_PATH}),
 * HOME (the WPAR's root), LANG, LC_ALL and TZ when the daemon has them, the definition's variables,
 * and `WPAR_NAME`, `WPAR_CID`, `WPAR_ROOT`, `WPAR_AGENT` (and `WPAR_EPOCH` in a cluster).
 * @throws WparError EINVAL for a variable name that is empty or holds `=` or NUL, or a value with NUL.
 */
export function wparEnvironment(definition: WparDefinition, vars: WparVariables, daemonEnv: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = { PATH: daemonEnv['PATH'] || DEFAULT_PATH, HOME: vars.root };
  for (const key of INHERITED) {
    const value = daemonEnv[key];
    if (value !== undefined) env[key] = value;
  }
  for (const [key, value] of Object.entries(definition.env)) {
    if (key === '' || key.includes('=') || key.includes('\0') || value.includes('\0')) {
      throw new WparError('EINVAL', `bad environment variable ${JSON.stringify(key)} for WPAR ${definition.name}: names must be non-empty without "=" or NUL, values without NUL`);
    }
    env[key] = value;
  }
  env['WPAR_NAME'] = definition.name;
  env['WPAR_CID'] = String(vars.cid);
  env['WPAR_ROOT'] = vars.root;
  env['WPAR_AGENT'] = vars.agent;
  if (vars.epoch !== undefined) env['WPAR_EPOCH'] = String(vars.epoch);
  return env;
}
