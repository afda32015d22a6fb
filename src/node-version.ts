/**
 * The Node.js version check every installed executable runs first. This module must load and run on
 * any Node that can run ESM (it imports nothing), so that an older Node prints one line instead of a
 * `SyntaxError` about `enableCompileCache` or `ERR_UNKNOWN_BUILTIN_MODULE: node:sqlite`. An entry
 * point imports it statically and everything else dynamically, after the check.
 * @module
 */

/** The oldest Node.js major version Corral runs on (`engines.node` in package.json). */
export const NODE_MAJOR_REQUIRED = 24;

/**
 * The one-line refusal for Node version `version` (e.g. `"20.20.2"`), or `undefined` if it is new
 * enough.
 */
export function nodeVersionProblem(version: string): string | undefined {
  const major = Number(version.split('.')[0]);
  if (Number.isInteger(major) && major >= NODE_MAJOR_REQUIRED) return undefined;
  return `corral needs Node.js ${NODE_MAJOR_REQUIRED} or later; this is ${version}`;
}

/**
 * Exits with status 1 and one line on stderr (`COMMAND: corral needs Node.js 24 or later; this is
 * 20.20.2`) if this Node is too old; otherwise returns.
 */
export function requireSupportedNode(command: string): void {
  const problem = nodeVersionProblem(process.versions.node);
  if (problem === undefined) return;
  process.stderr.write(`${command}: ${problem}\n`);
  process.exit(1);
}
