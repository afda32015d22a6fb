/**
 * The WPAR runtime: running one WPAR's processes with the isolation this machine allows (R2).
 * @module
 */

export { Cgroup, signalProcess, type LimitKey } from './cgroup.ts';
export { planCommand, SEAL_FDS, WPAR_CAPABILITIES, WPAR_INIT, type CommandPlan, type PlanOptions, type SealLayout, type StartMode } from './command.ts';
export {
  closeConsoleFile, ConsoleLog, ConsoleLogKeeper, DEFAULT_LOG_BYTES, DEFAULT_LOG_FILES, followLog, KEEPER_POLL_MS, KEEPER_THROTTLE_MS, openConsoleFile, readLogTail, rotatedPath,
  type ConsoleLogOptions, type FollowOptions, type TailOptions,
} from './console-log.ts';
export { DEFAULT_PATH, wparEnvironment, type WparVariables } from './environment.ts';
export {
  CGROUP_CONTROLLERS, detectIsolation, findTool, isExecutableFile,
  type CgroupController, type CgroupSupport, type DetectIsolationOptions, type Isolation, type SealSupport,
} from './isolation.ts';
export { hostId, ID_RANGE_SLOTS, ID_RANGE_START, idMapLine, idRangeForHome, IDS_PER_HOME, insideId, type IdRange } from './idmap.ts';
export {
  checkNetwork, DEFAULT_BRIDGE, formatNetwork, HOST_NETWORK, ownNetworkNamespace, parseNetwork, type NetworkSpec,
} from '../definition/network.ts';
export { attachBridge, hostInterfaceName, openLowPorts, type NetworkTools } from './network.ts';
export {
  adopt, ADOPTED_POLL_MS, examineRecorded, launch, readStatusExit, shiftOwnership,
  type AdoptOptions, type AdoptRecord, type Examined, type LaunchOptions, type StopOptions, type WparExit, type WparProcess,
} from './launch.ts';
export { killLeftovers, type LeftoverOptions, type LeftoverReport, type RecordedGroup } from './leftovers.ts';
export { formatLimits, parseLimits, type ParseLimitsOptions } from './limits.ts';
