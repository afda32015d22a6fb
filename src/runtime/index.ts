/**
 * The WPAR runtime: running one WPAR's processes with the isolation this machine allows (R2).
 * @module
 */

export { Cgroup, signalProcess, type LimitKey } from './cgroup.ts';
export { planCommand, WPAR_INIT, type CommandPlan, type PlanOptions } from './command.ts';
export {
  ConsoleLog, DEFAULT_LOG_BYTES, DEFAULT_LOG_FILES, followLog, readLogTail, rotatedPath,
  type ConsoleLogOptions, type FollowOptions, type TailOptions,
} from './console-log.ts';
export { DEFAULT_PATH, wparEnvironment, type WparVariables } from './environment.ts';
export {
  CGROUP_CONTROLLERS, detectIsolation, findTool, isExecutableFile, UNSHARE_FLAGS,
  type CgroupController, type CgroupSupport, type DetectIsolationOptions, type Isolation, type NamespaceSupport,
} from './isolation.ts';
export { launch, type LaunchOptions, type StopOptions, type WparExit, type WparProcess } from './launch.ts';
export { killLeftovers, type LeftoverOptions, type LeftoverReport, type RecordedGroup } from './leftovers.ts';
export { formatLimits, parseLimits, type ParseLimitsOptions } from './limits.ts';
