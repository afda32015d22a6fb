#!/usr/bin/env node
/**
 * `wpard`: the daemon's executable. Only the Node version check is imported statically (on an older
 * Node it prints one line instead of `ERR_UNKNOWN_BUILTIN_MODULE: node:sqlite`); the daemon itself is
 * loaded after it.
 * @module
 */
import { requireSupportedNode } from '../node-version.ts';

requireSupportedNode('wpard');
const { parseWpardArgs } = await import('./wpard-main.ts');
const { runDaemon } = await import('./run.ts');
await runDaemon(parseWpardArgs(process.argv.slice(2)));
