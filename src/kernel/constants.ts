/**
 * The names of AIX's `<sys/wparid.h>` with this project's values (AIX does not publish them).
 * See `docs/kernel.md` §Names and values.
 * @module
 */

/** `kwpar_reghook` hook type: `hookp` is a {@link wpar_config_hook_t}. */
export const WPAR_NOTIFY_HOOK = 1;

/** Callout flag: the WPAR is being activated (called before any subsystem starts). */
export const WPARSTART = 0x1;
/** Callout flag: the WPAR has been deactivated (called after every subsystem stopped). */
export const WPARSTOP = 0x2;

/** `kwpar_checkpoint_status` command: deny a checkpoint; `varp` is a reason of 1–1024 characters. */
export const WPAR_CHECKPOINT_DENY = 1;
/** `kwpar_checkpoint_status` command: withdraw this owner's oldest denial. */
export const WPAR_CHECKPOINT_ALLOW = 2;
/** `kwpar_checkpoint_status` command: start a checkpoint, waiting up to `varp` seconds for denials to clear. */
export const WPAR_CHECKPOINT_TRY = 3;
/** `kwpar_checkpoint_status` command: the checkpoint started by a successful TRY is complete. */
export const WPAR_CHECKPOINT_CLEAR = 4;
/** `kwpar_checkpoint_status` command: the restart of a re-created WPAR is complete. */
export const WPAR_RESTART_CLEAR = 5;

/** What `kwpar_reghook` returns on failure. */
export const BADREGKEY = -1;

/** Highest valid cid (and upper bound of every integer argument that names a WPAR). */
export const CID_MAX = 2 ** 31 - 1;
