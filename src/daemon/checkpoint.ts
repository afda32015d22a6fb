/**
 * Checkpoint (R4) and restart (R5): the kernel's TRY, CLEAR and RESTART_CLEAR driven by a real
 * checkpoint system and a real restart system.
 * @module
 */
import { lstat, rm, rmdir, stat } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import type { Kernel } from '../api/kernel.ts';
import type { CheckpointHandle } from '../api/handles.ts';
import { CheckpointDeniedError, describeDenials } from '../api/errors.ts';
import { WparError } from '../kernel/errno.ts';
import { imagePath, readImage, restoreImage, writeImage, type ImageProgress } from '../image/index.ts';
import { checkDefinition, checkName } from './definition-check.ts';
import type { HomeLayout } from './home.ts';
import type { Journal } from './journal.ts';
import type { CheckpointRequest, CheckpointResult, RestartRequest, WparInfo } from './protocol.ts';
import type { WparManager } from './wpars.ts';
import type { PeerService } from '../peer/service.ts';
import { environValue } from '../runtime/proc.ts';
import type { WparDefinition } from '../runtime/definition.ts';

/** Default willing-to-wait seconds for TRY (`chkptwpar -w`). */
export const DEFAULT_WAIT_SECONDS = 30;

/** What checkpoint and restart need. */
export interface CheckpointDeps {
  readonly kernel: Kernel;
  readonly manager: WparManager;
  readonly layout: HomeLayout;
  readonly journal: Journal;
  /** Signs images and checks their signers (M8). */
  readonly peer: PeerService;
  /**
   * In a cluster (C3): claims the name of a WPAR about to be restarted here, with the epoch the image
   * recorded (if any); EEXIST if the cluster has it. Resolves what gives the claim back.
   */
  readonly claim?: (definition: WparDefinition, imageEpoch: number | undefined) => Promise<() => Promise<void>>;
}

/** Options of one checkpoint beyond the request. */
export interface CheckpointRun {
  /** Progress of the image being written (for a progress bar). */
  readonly onProgress?: (p: ImageProgress) => void;
  /** Aborted when the client goes away: the checkpoint is abandoned, the WPAR left running. */
  readonly signal?: AbortSignal;
}

/**
 * C4: the ownership epoch the WPAR's processes run with (`WPAR_EPOCH` of its main process: the same
 * for a run this daemon started and one it adopted), for the image to record; none outside a cluster.
 */
function epochOf(pid: number | null): { epoch?: number } {
  const text = pid === null ? undefined : environValue(pid, 'WPAR_EPOCH');
  return text !== undefined && /^[1-9]\d{0,15}$/.test(text) ? { epoch: Number(text) } : {};
}

/**
 * `chkptwpar`: TRY (waiting up to `waitSec` for denials), agents save, processes freeze, the image is
 * written atomically, CLEAR, then thaw (or stop with `kill`). A failure after TRY still clears and
 * thaws and leaves the WPAR running; nothing that `restartwpar` accepts is left behind.
 */
export async function checkpoint(deps: CheckpointDeps, name: string, request: CheckpointRequest, run: CheckpointRun = {}): Promise<CheckpointResult> {
  const { kernel, manager } = deps;
  checkName(name);
  const dir = request.dir;
  if (typeof dir !== 'string' || !isAbsolute(dir)) throw new WparError('EINVAL', `${name}: the image directory must be an absolute path`);
  const waitSec = request.waitSec ?? DEFAULT_WAIT_SECONDS;
  if (!Number.isInteger(waitSec) || waitSec < 0 || waitSec > 2147483) throw new WparError('EINVAL', `${name}: -w must be whole seconds from 0 to 2147483`);
  const t0 = performance.now();
  // An image already in DIR is replaced only when asked (-F): a mistyped directory must not lose one.
  if (request.force !== true && await exists(imagePath(dir))) {
    throw new WparError('EEXIST', `${name}: ${dir} already holds an image; use -F to replace it`);
  }

  // R4.1: refuse what is not checkpointable or not active, with the reason.
  const access = manager.beginCheckpoint(name);
  let ticket: CheckpointHandle;
  try {
    // R4.2: TRY. ETIMEDOUT lists every outstanding denial; the WPAR keeps running untouched.
    ticket = await kernel.services.tryCheckpoint(access.cid, { timeoutMs: waitSec * 1000, ...(run.signal && { signal: run.signal }) });
  } catch (err) {
    access.release();
    if (err instanceof CheckpointDeniedError) {
      throw new WparError('ETIMEDOUT', `${name}: not checkpointed after ${waitSec} s (ETIMEDOUT): ${describeDenials(err.denials)}`, { cause: err });
    }
    throw prefixed(name, err);
  }
  event(deps, 'checkpoint.begin', name, { dir });
  let frozenAt = 0;
  let frozenMs = 0;
  let bytes: number;
  let agentNames: string[];
  let completed = false;
  try {
    // R4.3: agents save first (they run), then every process freezes.
    const states = access.agents ? await access.agents.save() : {};
    agentNames = Object.keys(states);
    await access.freeze();
    frozenAt = performance.now();
    // R4.4: the image, atomically (temporary name, fsync, rename).
    await writeImage(dir, {
      definition: access.definition, root: access.root, agents: new Map(Object.entries(states)), ids: deps.manager.ids, signer: deps.peer.signer,
      ...epochOf(manager.info(name).pid),
    }, { ...(run.onProgress && { onProgress: run.onProgress }), ...(run.signal && { signal: run.signal }) });
    bytes = (await stat(imagePath(dir))).size;
    completed = true;
  } catch (err) {
    event(deps, 'checkpoint.failed', name, { dir, reason: (err as Error).message, code: errnoOf(err) });
    throw prefixed(name, err, 'checkpoint failed');
  } finally {
    // R4.5 / R4.6: CLEAR, whatever happened after TRY; then thaw — except after a successful
    // checkpoint with -k, where the processes are killed still frozen: run on, they would move
    // away from the image (a counter would count past its saved state).
    ticket.clear();
    const killFrozen = completed && request.kill === true;
    if (!killFrozen) await access.thaw().catch((err: Error) => event(deps, 'checkpoint.thaw-failed', name, { reason: err.message }));
    if (frozenAt) frozenMs = performance.now() - frozenAt;
    access.release();
    if (!killFrozen) await access.agents?.saved({ completed });
  }
  const killed = request.kill === true;
  if (killed) await manager.stop(name, { force: true, reason: 'stopped after checkpoint (chkptwpar -k)' });
  const totalMs = performance.now() - t0;
  event(deps, 'checkpoint.done', name, { dir, bytes, frozenMs, totalMs, agents: agentNames, killed });
  return { name, dir, bytes, frozenMs, totalMs, agents: agentNames, killed };
}

/**
 * `restartwpar`: the whole image is verified before anything is created; the name (or `newName`)
 * must be free; the root is restored, the WPAR activated with `restart: true`, agents handed their
 * state, and RESTART_CLEAR once every agent has restored. On failure the half-made WPAR is removed
 * and the image is left as it was.
 */
export async function restart(deps: CheckpointDeps, request: RestartRequest): Promise<WparInfo> {
  const { kernel, manager, layout } = deps;
  const dir = request.dir;
  if (typeof dir !== 'string' || !isAbsolute(dir)) throw new WparError('EINVAL', 'the image directory must be an absolute path');
  const expected = checkName(request.name);
  const target = request.newName === undefined ? expected : checkName(request.newName);

  // R5.1: verify everything first (format, every SHA-256, the trailer); nothing is created yet.
  const image = await readImage(dir);
  if (image.definition.name !== expected) {
    throw new WparError('EINVAL', `${expected}: the image in ${dir} holds WPAR "${image.definition.name}", not "${expected}"`);
  }
  // M8: only an image this home or a trusted peer signed; --insecure accepts any, with an event.
  let signer: string;
  try {
    const s = deps.peer.checkSignature(image.manifest, dir);
    signer = s.kind === 'self' ? 'self' : `peer ${s.name}`;
  } catch (err) {
    if (request.insecure !== true) throw prefixed(target, err, 'refused');
    signer = 'none';
    event(deps, 'restart.insecure', target, { dir, reason: (err as Error).message });
  }
  // R5.2: the name must be free on this system — and is held from here on, before anything touches
  // the disk, so that a concurrent restart or mkwpar of the same name gets EEXIST instead of racing.
  const definition = checkDefinition({ ...image.definition, name: target });
  const release = manager.reserve(target);
  // Only what this request made is ever removed: the WPAR's directory if it did not exist, the root
  // restored into it (from a private staging directory, renamed into place once verified).
  const wparDirExisted = await exists(layout.wparDir(target));
  let restored = false;
  let created = false;
  let unclaim: (() => Promise<void>) | undefined;
  try {
    // C3: in a cluster the name is claimed for this host before anything is made (taken: EEXIST).
    unclaim = await deps.claim?.(definition, image.manifest.epoch);
    // R5.3: root restored (verified again while it streams), definition stored, activation as a restart.
    await restoreImage(dir, layout.root(target), { ids: deps.manager.ids });
    restored = true;
    await manager.create(definition, false, { reserved: true });
    created = true;
    release();
    const states = Object.fromEntries(image.agents);
    await manager.start(target, { restart: true, agentStates: states });
    await manager.restored(target);
    const cid = manager.info(target).cid;
    if (cid === null) throw new WparError('ENOENT', `${target}: ended before its agents restored`);
    kernel.services.restartClear(cid);
    event(deps, 'restart.done', target, { dir, from: image.definition.name, agents: Object.keys(states), signer });
    return manager.info(target);
  } catch (err) {
    // R5.4: remove the half-made WPAR (ours only); the image is only ever read.
    if (created) await manager.remove(target, { force: true }).catch(() => {});
    else {
      if (restored) await rm(layout.root(target), { recursive: true, force: true });
      if (!wparDirExisted) await rmdir(layout.wparDir(target)).catch(() => {});
    }
    await unclaim?.().catch((e: Error) => event(deps, 'restart.unclaim-failed', target, { reason: e.message }));
    event(deps, 'restart.failed', target, { dir, reason: (err as Error).message, code: errnoOf(err) });
    throw prefixed(target, err, 'restart failed');
  } finally {
    release();
  }
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false);
}

/** The error with the WPAR's name (and the step) in front, keeping its errno. */
function prefixed(name: string, err: unknown, what?: string): unknown {
  if (!(err instanceof Error)) return err;
  const message = err.message.startsWith(`${name}:`) ? err.message : `${name}: ${what ? `${what}: ` : ''}${err.message}`;
  return err instanceof WparError ? new WparError(err.code, message, { cause: err }) : new Error(message, { cause: err });
}

/** The errno name of an error (for metrics by errno), `EIO` when it has none. */
function errnoOf(err: unknown): string {
  return err instanceof WparError ? err.code : 'EIO';
}

function event(deps: CheckpointDeps, type: string, name: string, fields: Record<string, unknown>): void {
  deps.journal.record({ type, time: Date.now(), name, ...fields });
}
