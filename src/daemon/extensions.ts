/**
 * Kernel extensions loaded by `wpard --extension MODULE` (R7). An extension is a module whose default
 * export receives its own owner (`kernel.extension(name)`: the C-shaped services and the idiomatic
 * API). It may return an unload function. One that throws while loading is reported and not loaded;
 * unloading releases its hooks and denials (the owner closes).
 * @module
 */
import { existsSync } from 'node:fs';
import { basename, extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Kernel } from '../api/kernel.ts';
import type { Owner } from '../api/owner.ts';

/** What an extension module's default export is. */
export type ExtensionMain = (owner: Owner, context: ExtensionContext) => void | (() => unknown) | Promise<void | (() => unknown)>;

/** What an extension is told besides its owner. */
export interface ExtensionContext {
  /** The daemon's home directory (an extension may keep files under `HOME/extensions/NAME`). */
  readonly home: string;
  /** Reports a line to the daemon's event log. */
  readonly log: (message: string) => void;
}

/** A loaded extension. */
export interface LoadedExtension {
  readonly name: string;
  readonly module: string;
  readonly owner: Owner;
  readonly unload: (() => unknown) | undefined;
}

/**
 * Loads one extension. The owner's name is the module's `name` export, else its file name. Throws an
 * Error that says which module failed and why; on failure everything it registered is released.
 */
export async function loadExtension(kernel: Kernel, spec: string, context: ExtensionContext): Promise<LoadedExtension> {
  const path = resolve(spec);
  const url = existsSync(path) ? pathToFileURL(path).href : spec;
  let mod: { default?: unknown; name?: unknown };
  try {
    mod = await import(url) as typeof mod;
  } catch (err) {
    throw new Error(`extension ${spec}: cannot load: ${(err as Error).message}`, { cause: err });
  }
  if (typeof mod.default !== 'function') throw new Error(`extension ${spec}: its default export must be a function (owner) => void`);
  const name = typeof mod.name === 'string' && mod.name !== '' ? mod.name : basename(path, extname(path));
  let owner: Owner;
  try {
    owner = kernel.extension(name);
  } catch (err) {
    throw new Error(`extension ${spec}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const unload = await (mod.default as ExtensionMain)(owner, context);
    return { name, module: spec, owner, unload: typeof unload === 'function' ? unload : undefined };
  } catch (err) {
    owner.close();
    throw new Error(`extension ${name} (${spec}) failed while loading: ${(err as Error).message}`, { cause: err });
  }
}

/** Unloads an extension: its unload function, then its owner closes (hooks and denials released). */
export async function unloadExtension(ext: LoadedExtension): Promise<void> {
  try {
    await ext.unload?.();
  } finally {
    ext.owner.close();
  }
}
