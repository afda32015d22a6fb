/**
 * `restartwpar` on a cluster member (C3: names are unique across the cluster): the WPAR restarted
 * from an image is created on the host that runs the command (the image directory is that host's),
 * so its name is claimed in etcd for that host — one create-if-absent transaction, as `mkwpar` —
 * before the restore creates anything, and given back if the restore then fails.
 * @module
 */
import type { WparDefinition } from '../runtime/definition.ts';
import type { Namespace } from './namespace.ts';

/**
 * The first epoch of a WPAR restarted from an image: one more than the epoch the image recorded
 * (the processes of the restarted copy must never run with a fencing token that an earlier run
 * already had), or 1 for an image without one (taken outside a cluster).
 */
export function restartEpoch(imageEpoch: number | undefined): number {
  return imageEpoch === undefined ? 1 : imageEpoch + 1;
}

/**
 * Claims `definition.name` for `host` (EEXIST naming the owner if the cluster has the name; nothing
 * is changed then) and resolves what releases the claim again (only while it still names `host`).
 */
export async function claimForRestart(namespace: Namespace, host: string, definition: WparDefinition, imageEpoch: number | undefined): Promise<() => Promise<void>> {
  await namespace.claim(definition, host, restartEpoch(imageEpoch));
  return () => namespace.release(definition.name, host);
}
