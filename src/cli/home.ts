/**
 * Where a command finds its daemon (R1): the same rule as `wpard` itself, so every command and the
 * daemon agree on one home per system.
 * @module
 */
import { join, resolve } from 'node:path';

/**
 * The home directory: `--home DIR` (`flagValue`), else `$WPAR_HOME`, else
 * `$XDG_STATE_HOME/corral` (`~/.local/state/corral` when `XDG_STATE_HOME` is unset). Relative paths
 * are made absolute against `cwd`.
 */
export function resolveHome(flagValue?: string, env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): string {
  if (flagValue) return resolve(cwd, flagValue);
  if (env['WPAR_HOME']) return resolve(cwd, env['WPAR_HOME']);
  const state = env['XDG_STATE_HOME'] || join(process.getBuiltinModule('node:os').homedir(), '.local', 'state');
  return resolve(cwd, join(state, 'corral'));
}

/** The control socket of the daemon whose home is `home`: `HOME/run/wpard.sock`. */
export function socketPath(home: string): string {
  return join(home, 'run', 'wpard.sock');
}
