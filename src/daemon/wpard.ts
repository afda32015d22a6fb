#!/usr/bin/env node
/**
 * `wpard`: the daemon's executable. Only the Node version check is imported statically (on an older
 * Node it prints one line instead of `ERR_UNKNOWN_BUILTIN_MODULE: node:sqlite`); the daemon itself is
 * in `wpard-main.ts`.
 * @module
 */
import { requireSupportedNode } from '../node-version.ts';

requireSupportedNode('wpard');
await import('./wpard-main.ts');
