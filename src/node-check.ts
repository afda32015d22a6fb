/**
 * Imported first, for its effect, by every executable: on a Node.js older than Corral needs it
 * prints one line (`lswpar: corral needs Node.js 24 or later; this is 20.20.2`) and exits 1. The
 * build keeps it (and {@link requireSupportedNode}'s module) out of the executables' single-file
 * bundles, so it is evaluated before any of the rest of them, and it uses nothing a Node of the
 * last ten years lacks.
 * @module
 */
import { requireSupportedNode } from './node-version.ts';

requireSupportedNode((process.argv[1] ?? 'corral').split('/').pop()!.replace(/\.js$/, ''));
