/**
 * `corral/agent`: lets a program running inside a WPAR take part in checkpoints (R6). It can deny
 * them during critical sections, save its state before one, and get that state back on the arrival
 * system of a restart. Outside a WPAR every call succeeds and does nothing, so one program runs anywhere.
 *
 * ```ts
 * import { agent } from 'corral/agent';
 *
 * let count = 0;
 * await agent.register({
 *   name: 'counter',
 *   beforeCheckpoint: () => ({ count }),
 *   afterRestore: (state) => { count = state.count; },
 * });
 * {
 *   using _ = await agent.deny('writing batch 12'); // EBUSY while a checkpoint is in progress
 *   // ... change files and `count` together ...
 * }
 * ```
 *
 * The wire protocol (JSON lines over the Unix socket `$WPAR_AGENT`) is documented in
 * `docs/agent-protocol.md`, so programs in other languages can take part too.
 * @module
 */
import { createAgent, type Agent } from './client.ts';

export {
  Agent, AgentDenial, AgentRegistration, createAgent, PendingDenial,
  type AgentOptions, type CheckpointInfo, type Participant,
} from './client.ts';
export { AGENT_PROTOCOL, type StateEnvelope } from './protocol.ts';
export { WparError, type ErrnoCode } from '../kernel/errno.ts';

/**
 * This program's agent, talking to `$WPAR_AGENT` (read once, when this module loads). Inert when
 * the variable is unset or empty: `agent.inWpar === false`.
 */
export const agent: Agent = createAgent();
