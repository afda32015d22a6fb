/**
 * The one rule for where a system lives (R1): the home every command and the daemon resolve the same
 * way — `--home DIR`, else `$WPAR_HOME`, else `$XDG_STATE_HOME/corral` (`~/.local/state/corral`) —
 * and where its control socket is inside it. The commands (`src/cli/home.ts`) and the daemon's
 * layout (`src/daemon/home.ts`) both take them from here.
 * @module
 */
import { join, resolve } from 'node:path';

/** The directory of a home's sockets (mode 0700). */
export const RUN_DIR = 'run';
/** The control socket's name inside {@link RUN_DIR}. */
export const SOCKET_NAME = 'wpard.sock';

/**
 * The home directory: `--home DIR` (`flagValue`), else `$WPAR_HOME`, else
 * `$XDG_STATE_HOME/corral` (`~/.local/state/corral` when `XDG_STATE_HOME` is unset). Relative paths
 * are made absolute against `cwd`.
 */
export function resolveHome(flagValue?: string, env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): string {
  if (flagValue) return resolve(cwd, flagValue);
  if (env['WPAR_HOME']) return resolve(cwd, env['WPAR_HOME']);
  // node:os only here (a command's start-up cost otherwise), and only without --home or WPAR_HOME.
  const state = env['XDG_STATE_HOME'] || join(process.getBuiltinModule('node:os').homedir(), '.local', 'state');
  return resolve(cwd, join(state, 'corral'));
}

/** The control socket of the daemon whose home is `home`: `HOME/run/wpard.sock`. */
export function socketPath(home: string): string {
  return join(home, RUN_DIR, SOCKET_NAME);
}
