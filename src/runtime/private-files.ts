/**
 * Private files and directories: what the daemon keeps in a home (its database, the event log, the
 * console logs, the sockets' directory) is readable by the daemon's user only — mode 0600 for a file,
 * 0700 for a directory — whatever the process's umask and whatever mode the home already had (a
 * definition's `-e SECRET=value` and a WPAR's console output are not for other users). A mode given
 * to `open`/`mkdir` only applies when the call creates the path and the umask can only remove bits,
 * so each helper also sets the mode explicitly, which also repairs what an older version created.
 * @module
 */
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { chmod, mkdir, open, type FileHandle } from 'node:fs/promises';

/** The mode of every file the daemon keeps in a home. */
export const PRIVATE_FILE = 0o600;
/** The mode of every directory the daemon keeps in a home. */
export const PRIVATE_DIR = 0o700;

/** Creates directory `path` (and missing parents, each 0700) if needed and makes it 0700. */
export function privateDirSync(path: string): void {
  mkdirSync(path, { recursive: true, mode: PRIVATE_DIR });
  chmodSync(path, PRIVATE_DIR);
}

/** {@link privateDirSync}, asynchronously. */
export async function privateDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: PRIVATE_DIR });
  await chmod(path, PRIVATE_DIR);
}

/** Creates file `path` if it does not exist (empty) and makes it 0600; never truncates it. */
export function privateFileSync(path: string): void {
  const fd = openSync(path, 'a', PRIVATE_FILE);
  try {
    chmodSync(path, PRIVATE_FILE);
  } finally {
    closeSync(fd);
  }
}

/** Opens `path` for appending (creating it), mode 0600 whatever the umask or its old mode. */
export async function openPrivateAppend(path: string): Promise<FileHandle> {
  const handle = await open(path, 'a', PRIVATE_FILE);
  try {
    await handle.chmod(PRIVATE_FILE);
  } catch (err) {
    await handle.close();
    throw err;
  }
  return handle;
}

/**
 * Gives `path` mode `mode` (default 0600) if it exists: a file or directory an older version or
 * another library created with a wider one.
 */
export function makePrivateIfExists(path: string, mode: number = PRIVATE_FILE): void {
  try {
    chmodSync(path, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
