/**
 * Help-text pieces every command shares.
 * @module
 */

/** The `--home` line of every usage text. */
export const HOME_HELP = `  --home Directory
                  The daemon's home (else $WPAR_HOME, else $XDG_STATE_HOME/corral, by default
                  ~/.local/state/corral).
`;
