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
import { imagePath, restoreImage, writeImage, type ImageProgress, type PrecopyStats } from '../image/index.ts';
import { checkDefinition, checkName } from './definition-check.ts';
import type { HomeLayout } from './home.ts';
import type { Journal } from './journal.ts';
import type { CheckpointRequest, CheckpointResult, RestartRequest, WparInfo } from './protocol.ts';
import { clearPendingKill, recordPendingKill } from './pending-kill.ts';
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
  /** TRY's wait in milliseconds, instead of the request's whole seconds (scheduled checkpoints wait less than one). */
  readonly waitMs?: number;
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
 * `chkptwpar`: TRY (waiting up to `waitSec` for denials); the root copied while the WPAR runs (M5:
 * pre-copy rounds); agents save, processes freeze; the last delta (what changed since the last
 * round) and the image sealed atomically; CLEAR, then thaw (or stop with `kill`). A failure after
 * TRY still clears and thaws and leaves the WPAR running; nothing that `restartwpar` accepts is left
 * behind. The result and the `checkpoint.done` event report the frozen time (`frozenMs`).
 */
export async function checkpoint(deps: CheckpointDeps, name: string, request: CheckpointRequest, run: CheckpointRun = {}): Promise<CheckpointResult> {
  const { kernel, manager } = deps;
  checkName(name);
  const dir = request.dir;
  if (typeof dir !== 'string' || !isAbsolute(dir)) throw new WparError('EINVAL', `${name}: the image directory must be an absolute path`);
  const waitSec = request.waitSec ?? DEFAULT_WAIT_SECONDS;
  if (!Number.isInteger(waitSec) || waitSec < 0 || waitSec > 2147483) throw new WparError('EINVAL', `${name}: -w must be whole seconds from 0 to 2147483`);
  const t0 = performance.now();
  // R4.1: refuse what is not checkpointable or not active, with the reason (first: the WPAR's own
  // reason comes before anything about the directory).
  const access = manager.beginCheckpoint(name);
  // An image already in DIR is replaced only when asked (-F): a mistyped directory must not lose one.
  if (request.force !== true && await exists(imagePath(dir)).catch(() => false)) {
    access.release();
    throw new WparError('EEXIST', `${name}: ${dir} already holds an image; use -F to replace it`);
  }
  let ticket: CheckpointHandle;
  try {
    // R4.2: TRY. ETIMEDOUT lists every outstanding denial; the WPAR keeps running untouched.
    ticket = await kernel.services.tryCheckpoint(access.cid, { timeoutMs: run.waitMs ?? waitSec * 1000, ...(run.signal && { signal: run.signal }) });
  } catch (err) {
    access.release();
    if (err instanceof CheckpointDeniedError) {
      const waited = run.waitMs === undefined ? `${waitSec} s` : `${run.waitMs} ms`;
      throw new WparError('ETIMEDOUT', `${name}: not checkpointed after ${waited} (ETIMEDOUT): ${describeDenials(err.denials)}`, { cause: err });
    }
    throw prefixed(name, err);
  }
  event(deps, 'checkpoint.begin', name, { dir });
  let frozenAt = 0;
  let frozenMs = 0;
  let bytes: number;
  let agentNames: string[] = [];
  let agentsSaved = false;
  let rounds: PrecopyStats['rounds'] = [];
  let completed = false;
  try {
    // M5: the writer copies the root while the WPAR runs, then calls this for the freeze.
    // R4.3: agents save first (they run), then every process freezes; the last delta follows.
    const freeze = async (): Promise<Map<string, unknown>> => {
      agentsSaved = access.agents !== null;
      const states = access.agents ? await access.agents.save() : {};
      agentNames = Object.keys(states);
      await access.freeze();
      frozenAt = performance.now();
      return new Map(Object.entries(states));
    };
    // R4.4: the image, atomically (temporary name, fsync, rename).
    await writeImage(dir, {
      definition: access.definition, root: access.root, agents: freeze, ids: deps.manager.ids, signer: deps.peer.signer,
      ...epochOf(manager.info(name).pid),
    }, {
      onRounds: (stats) => { rounds = stats.rounds; },
      ...(run.onProgress && { onProgress: run.onProgress }), ...(run.signal && { signal: run.signal }),
    });
    bytes = (await stat(imagePath(dir))).size;
    // With -k, from here the frozen processes must never run again, even if this daemon dies now.
    if (request.kill === true) recordPendingKill(deps.layout, name, dir);
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
    if (!killFrozen) access.release();
    if (!killFrozen && agentsSaved) await access.agents?.saved({ completed });
  }
  const killed = request.kill === true;
  if (killed) {
    await access.stop('stopped after checkpoint (chkptwpar -k)');
    clearPendingKill(deps.layout, name);
  }
  const totalMs = performance.now() - t0;
  // Rounds: the root copied while running, the deltas while running, and the last one, frozen.
  const roundsOut = rounds.map((r) => ({ entries: r.entries, removed: r.removed, bytes: r.bytes, ms: Math.round(r.ms) }));
  event(deps, 'checkpoint.done', name, { dir, bytes, frozenMs, totalMs, agents: agentNames, killed, rounds: roundsOut });
  return { name, dir, bytes, frozenMs, totalMs, agents: agentNames, killed, rounds: roundsOut };
}

/**
 * `restartwpar`: the name (or `newName`) must be free; the whole image is verified before anything
 * is created (in the same pass that extracts it into a hidden staging directory); the root is put in place, the WPAR activated with `restart: true`, agents handed their
 * state, and RESTART_CLEAR once every agent has restored. On failure the half-made WPAR is removed
 * and the image is left as it was.
 */
export async function restart(deps: CheckpointDeps, request: RestartRequest): Promise<WparInfo> {
  const { kernel, manager, layout } = deps;
  const dir = request.dir;
  if (typeof dir !== 'string' || !isAbsolute(dir)) throw new WparError('EINVAL', 'the image directory must be an absolute path');
  const expected = checkName(request.name);
  const target = request.newName === undefined ? expected : checkName(request.newName);

  // R5.2: the name must be free on this system — and is held from here on, before anything touches
  // the disk, so that a concurrent restart or mkwpar of the same name gets EEXIST instead of racing.
  const release = manager.reserve(target);
  // Only what this request made is ever removed: the WPAR's directory if it did not exist, the root
  // restored into it (from a private staging directory, renamed into place once verified).
  const wparDirExisted = await exists(layout.wparDir(target));
  let restored = false;
  let created = false;
  let signer = 'none';
  let definition!: ReturnType<typeof checkDefinition>;
  let unclaim: (() => Promise<void>) | undefined;
  let accepted = false;
  try {
    // R5.1 and R5.3 in one pass: the image is verified (format, every SHA-256, the trailer) while its
    // root is extracted into a hidden staging directory; only once all of it has verified, and it
    // holds the WPAR asked for, signed by this home or a trusted peer (M8), is the root put in place.
    const image = await restoreImage(dir, layout.root(target), {
      ids: deps.manager.ids,
      accept: async (data) => {
        if (data.definition.name !== expected) {
          throw new WparError('EINVAL', `${expected}: the image in ${dir} holds WPAR "${data.definition.name}", not "${expected}"`);
        }
        // M8: only an image this home or a trusted peer signed; --insecure accepts any, with an event.
        try {
          const s = deps.peer.checkSignature(data.manifest, dir);
          signer = s.kind === 'self' ? 'self' : `peer ${s.name}`;
        } catch (err) {
          if (request.insecure !== true) throw prefixed(target, err, 'refused');
          event(deps, 'restart.insecure', target, { dir, reason: (err as Error).message });
        }
        definition = checkDefinition({ ...data.definition, name: target });
        // C3: in a cluster the name is claimed for this host before the root is put in place (taken: EEXIST).
        unclaim = await deps.claim?.(definition, data.manifest.epoch);
        accepted = true;
      },
    });
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
    // A refused image (damaged, another WPAR's, not signed by whom it must be, its name taken in the
    // cluster) is reported as the reader or the check said it; what failed after it was accepted is a failed restart.
    if (!accepted) throw err;
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
