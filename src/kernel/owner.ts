/**
 * What the kernel knows of an owner: its name and whether it is closed. A module of its own so the
 * hook registry, the kernel state and the owner rules (`owners.ts`) all depend on it and on nothing
 * of each other's.
 * @module
 */

/** An owner on whose behalf calls are made: the kernel itself, an extension, an agent. */
export interface OwnerState {
  readonly name: string;
  closed: boolean;
}
