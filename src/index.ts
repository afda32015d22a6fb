/**
 * Corral: AIX's WPAR kernel services (`kwpar_reghook`, `kwpar_unreghook`, `kwpar_checkpoint_status`)
 * in TypeScript, with an idiomatic API over the same kernel.
 *
 * ```ts
 * import { createKernel, WPAR_NOTIFY_HOOK } from 'corral';
 * const kernel = createKernel();
 * const ext = kernel.extension('accounting');
 * const hook = { current_hiwater: 0, configp: (flags, cid) => 0 };
 * const key = ext.kwpar_reghook(WPAR_NOTIFY_HOOK, hook);
 * ```
 * @module
 */
export * from './kernel/constants.ts';
export {
  EPERM, ENOENT, EINTR, EIO, EAGAIN, EBUSY, EEXIST, EINVAL, ENOSPC, EMSGSIZE, ETIMEDOUT, ECANCELED,
  WparError, errnoName, errnoNumber, type ErrnoCode,
} from './kernel/errno.ts';
export type { Clock, TimerHandle } from './kernel/clock.ts';
export { systemClock } from './kernel/clock.ts';
export type { Corral, KernelCorral } from './kernel/corral.ts';
export type { KernelEvent, KernelEventType, KernelEventListener, Subscription } from './kernel/events.ts';
export type { Subsystem } from './kernel/subsystem.ts';
export type { CheckpointPhase, Denial, WparState } from './kernel/wpar.ts';
export { CalloutError } from './kernel/lifecycle.ts';
export type { cid_t, regkey_t, wpar_config_func_t, wpar_config_hook_t, KernelServices } from './facade/services.ts';
export { MAX_REASON_LENGTH, MAX_TRY_SECONDS } from './facade/services.ts';
export { createKernel, Kernel, type KernelOptions, type ActivateOptions, type WparStatus } from './api/kernel.ts';
export { Owner, type WparWatcher, type TryOptions } from './api/owner.ts';
export { HookHandle, DenialHandle, CheckpointHandle } from './api/handles.ts';
export { CheckpointDeniedError, describeDenials } from './api/errors.ts';
