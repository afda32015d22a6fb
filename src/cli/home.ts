/**
 * Where a command finds its daemon (R1): the same rule as `wpard` itself (`src/definition/home.ts`),
 * so every command and the daemon agree on one home per system.
 * @module
 */
export { resolveHome, socketPath } from '../definition/home.ts';
