/**
 * Validating a definition that arrives over the control API or in an image to restart: the daemon
 * trusts no client, so every field is checked before anything is stored or created. The rules are
 * `src/definition/rules.ts` (the same the commands, the runtime and the image reader use); this
 * module only supplies this system's CPU count.
 * @module
 */
import { availableParallelism } from 'node:os';
import { checkDefinition as check } from '../definition/rules.ts';
import type { WparDefinition } from '../runtime/definition.ts';

export { checkName } from '../definition/rules.ts';

/** A validated, normalised copy of `value` for this system; throws EINVAL naming the first bad field. */
export function checkDefinition(value: unknown): WparDefinition {
  return check(value, { cpus: availableParallelism() });
}
