/**
 * Live moves between hosts (M3, M4, M7; the protocol and its state machines are in
 * docs/mobility.md): `movewpar` on the departure, the peer endpoint's handler on the arrival.
 *
 * Departure: CONNECTED → PRECOPY (rounds while the WPAR runs) → TRY → FROZEN (agents saved, last
 * delta) → READY (the arrival verified everything) → COMMITTING (recorded on disk, `commit` sent)
 * → HANDED_OVER (`active` received: the frozen processes are killed, the WPAR removed) → DONE.
 * Every failure before COMMITTING thaws the WPAR with the same processes (CLEAR issued). After it,
 * an explicit `failed` from the arrival thaws too; silence (a crash, a cut link) cannot be told
 * apart from a WPAR now running on the arrival, so the WPAR is stopped here and kept, with why.
 *
 * Arrival: HELLO (name reserved, definition checked) → RECEIVING (rounds into private staging)
 * → VERIFIED (`ready`) → ACTIVATING (on `commit` only: root renamed into place, restart:true,
 * agents restored, RESTART_CLEAR) → ACTIVE (`active` sent). A failure or a closed connection
 * before `commit` removes the staging; after it, the WPAR made is removed and `failed` sent.
 * Staging left by a crash is removed when the daemon starts.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants as fsConstants, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { deserialize, serialize } from 'node:v8';
import type { FastifyInstance } from 'fastify';
import type { Kernel } from '../api/kernel.ts';
import type { CheckpointHandle } from '../api/handles.ts';
import { CheckpointDeniedError, describeDenials } from '../api/errors.ts';
import { WparError } from '../kernel/errno.ts';
import type { WparDefinition } from '../runtime/definition.ts';
import { isolationShortfalls, type Isolation } from '../runtime/isolation.ts';
import { checkDefinition, checkName } from '../daemon/definition-check.ts';
import type { HomeLayout } from '../daemon/home.ts';
import type { Journal } from '../daemon/journal.ts';
import type { CheckpointAccess, WparManager } from '../daemon/wpars.ts';
import type { Peer } from './peers.ts';
import type { PeerService } from './service.ts';
import { listingDigest, TreeReceiver, TreeSender, type RoundStats } from './tree.ts';
import { anotherRound } from '../image/write/precopy.ts';
import { Wire, type Message } from './wire.ts';

/** The peer protocol's version (`hello.protocol`). */
export const PROTOCOL_VERSION = 2;
/** Default willing-to-wait seconds for TRY (`movewpar -w`). */
export const DEFAULT_MOVE_WAIT_SECONDS = 30;
/**
 * How long either side waits for the other's next frame (or may go without traffic) in the normal
 * course of a move; `CORRAL_PEER_IDLE_MS` overrides it (tests of cut links use a short one).
 */
const IDLE_MS = Number(process.env.CORRAL_PEER_IDLE_MS) > 0 ? Number(process.env.CORRAL_PEER_IDLE_MS) : 15_000;
/** How long the departure waits for the arrival to start the WPAR and restore its agents. */
const ACTIVATE_MS = 4 * IDLE_MS;

/** `POST /v1/wpars/:name/move`. */
export interface MoveRequest {
  /** The peer's name (`wpar peer ls`). */
  readonly peer: string;
  /** Willing-to-wait seconds for TRY (`-w`, default 30). */
  readonly waitSec?: number;
  /**
   * M6 `--force`: what the arrival finds would make it fail (a missing command, weaker isolation
   * than the limits need) is accepted and reported (`MoveResult.warnings`) instead of refused.
   */
  readonly force?: boolean;
}

/** What a move did (`movewpar --json`, M3.7). */
export interface MoveResult {
  /** With `--force`: what the arrival accepted that it would otherwise have refused (M6). */
  readonly warnings?: readonly string[];
  readonly name: string;
  readonly from: string;
  readonly to: string;
  readonly rounds: readonly RoundStats[];
  readonly bytes: number;
  /** From the freeze to the arrival having verified every byte (ready to activate). */
  readonly frozenMs: number;
  /** From the freeze on the departure to the program running on the arrival. */
  readonly downtimeMs: number;
  readonly totalMs: number;
}

/** Progress of a move, for a bar. */
export interface MoveProgress {
  readonly step: 'precopy' | 'frozen' | 'activating';
  readonly round: number;
  readonly bytes: number;
}

/** What moves need from the daemon. */
export interface MoveDeps {
  readonly kernel: Kernel;
  readonly manager: WparManager;
  readonly layout: HomeLayout;
  readonly journal: Journal;
  readonly peer: PeerService;
  /** This system's isolation (M6: the arrival checks a definition against it). */
  readonly isolation: Isolation;
}

/**
 * Where a WPAR's ownership is recorded outside this home — a cluster's etcd (C4) — and how a move
 * hands it over. A move asks {@link check} before anything changes, and {@link handOver} while the
 * WPAR is frozen, just before the commit, so the arrival's start reads itself as the owner; when
 * the move then rolls back, the function it returned gives the ownership back.
 */
export interface Ownership {
  /** Throws (EPERM, EINVAL…) if `name` may not move to `to`; resolves for a WPAR it does not manage. */
  check(name: string, to: string): Promise<void>;
  /** Records `to` as the owner of `name`; resolves to what gives it back, or null if it does not manage `name`. */
  handOver(name: string, to: string): Promise<(() => Promise<void>) | null>;
}

/** A departure's durable record of a move in flight (`HOME/moves/NAME.json`). */
interface MoveRecord {
  readonly id: string;
  readonly name: string;
  readonly peer: string;
  /** `committing`: `commit` was sent; `done`: the arrival reported the WPAR active. */
  readonly state: 'committing' | 'done';
}

/** The departure and arrival sides of moves for one daemon. */
export class Mover {
  readonly #deps: MoveDeps;
  #ownership: Ownership | null = null;

  constructor(deps: MoveDeps) {
    this.#deps = deps;
  }

  get #movesDir(): string { return movesDir(this.#deps.layout.home); }

  /** Makes every move hand the WPAR's ownership over through `ownership` (a cluster's, C4). */
  useOwnership(ownership: Ownership): void {
    this.#ownership = ownership;
  }

  /**
   * Names of the WPARs this home was moving away when its daemon stopped (a move record exists): the
   * next daemon must not adopt their processes — the arrival may run them — and {@link recover}
   * then says what became of each.
   */
  static inFlight(home: string): Set<string> {
    const names = new Set<string>();
    let files: string[] = [];
    try { files = readdirSync(movesDir(home)); } catch { /* none */ }
    for (const file of files) {
      try {
        const rec = JSON.parse(readFileSync(join(movesDir(home), file), 'utf8')) as MoveRecord;
        if (typeof rec.name === 'string') names.add(rec.name);
      } catch { /* a torn record: recover() removes it */ }
    }
    return names;
  }
  get #incomingDir(): string { return join(this.#deps.layout.home, 'incoming'); }

  #event(type: string, name: string, fields: Record<string, unknown>): void {
    this.#deps.journal.record({ type, time: Date.now(), name, ...fields });
  }

  /**
   * At daemon start, before auto-start: a half-received WPAR is removed; a WPAR whose move was
   * committed is never run here again — removed if the arrival confirmed, else kept stopped with
   * the reason. Returns the names auto-start must skip.
   */
  recover(): Set<string> {
    const skip = new Set<string>();
    rmSync(this.#incomingDir, { recursive: true, force: true });
    let names: string[] = [];
    try { names = readdirSync(this.#movesDir); } catch { /* none */ }
    for (const file of names) {
      const path = join(this.#movesDir, file);
      let rec: MoveRecord;
      try {
        rec = JSON.parse(readFileSync(path, 'utf8')) as MoveRecord;
      } catch {
        rmSync(path, { force: true });
        continue;
      }
      const { manager } = this.#deps;
      if (!manager.has(rec.name)) { rmSync(path, { force: true }); continue; }
      skip.add(rec.name);
      if (rec.state === 'done') {
        // The arrival runs it: finish the departure's side.
        manager.remove(rec.name, { force: true }).then(
          () => { rmSync(path, { force: true }); this.#event('move.done', rec.name, { to: rec.peer, move: rec.id, recovered: true }); },
          (err: Error) => this.#event('move.failed', rec.name, { to: rec.peer, move: rec.id, step: 'recover', reason: err.message }),
        );
      } else {
        const reason = `was being handed over to ${rec.peer} when the daemon stopped: it may run there now; check ${rec.peer} (lswpar) before starting it here`;
        manager.markLost(rec.name, reason);
        rmSync(path, { force: true });
        this.#event('move.failed', rec.name, { to: rec.peer, move: rec.id, step: 'commit', reason });
      }
    }
    return skip;
  }

  #record(rec: MoveRecord | null, name: string): void {
    mkdirSync(this.#movesDir, { recursive: true, mode: 0o700 });
    const path = join(this.#movesDir, `${name}.json`);
    if (rec === null) { rmSync(path, { force: true }); return; }
    const tmp = `${path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try { writeSync(fd, JSON.stringify(rec)); fsyncSync(fd); } finally { closeSync(fd); }
    renameSync(tmp, path);
    const dir = openSync(this.#movesDir, 'r');
    try { fsyncSync(dir); } finally { closeSync(dir); }
  }

  // Departure ---------------------------------------------------------------------------------

  /** `movewpar`: moves the active WPAR `name` to the trusted peer `request.peer`. */
  async moveOut(name: string, request: MoveRequest, run: { onProgress?: (p: MoveProgress) => void; signal?: AbortSignal } = {}): Promise<MoveResult> {
    const { kernel, manager, peer: service } = this.#deps;
    checkName(name);
    const t0 = performance.now();
    const id = randomBytes(8).toString('hex');
    const from = service.identity.name;
    const force = request.force === true;
    const waitSec = request.waitSec ?? DEFAULT_MOVE_WAIT_SECONDS;
    let peer: Peer;
    let access: CheckpointAccess;
    try {
      if (!Number.isInteger(waitSec) || waitSec < 0 || waitSec > 2147483) throw new WparError('EINVAL', `${name}: -w must be whole seconds from 0 to 2147483`);
      if (request.force !== undefined && typeof request.force !== 'boolean') throw new WparError('EINVAL', `${name}: force must be true or false`);
      if (typeof request.peer !== 'string') throw new WparError('EINVAL', `${name}: no peer named`);
      const found = service.peerNamed(request.peer);
      if (!found) throw new WparError('ENOENT', `${name}: no trusted peer named ${JSON.stringify(request.peer)} (wpar peer ls)`);
      if (found.address === null) throw new WparError('EINVAL', `${name}: peer ${found.name} has no address (wpar peer add ${found.name} FINGERPRINT ADDR:PORT)`);
      await this.#ownership?.check(name, found.name);
      peer = found;
      // M3.1: refused before anything changes: not checkpointable, not active, busy.
      access = manager.beginCheckpoint(name, { movingTo: peer.name });
    } catch (err) {
      // M7: a refusal before anything changed is a move that failed too (step "check").
      this.#event('move.failed', name, { to: typeof request.peer === 'string' ? request.peer : null, move: id, step: 'check', reason: (err as Error).message });
      throw err;
    }
    let warnings: string[] = [];
    let wire: Wire | null = null;
    let ticket: CheckpointHandle | null = null;
    let step = 'connect';
    let committed = false;
    let arrivalFailed = false;
    let agentsSaved = false;
    let frozenAt = 0;
    const rounds: RoundStats[] = [];
    let frozenMs = 0;
    let giveBack: (() => Promise<void>) | null = null;
    /** M3.5: the arrival runs it — only now do the frozen processes go, then the definition and root. */
    const handOver = async (): Promise<MoveResult> => {
      const downtimeMs = performance.now() - frozenAt;
      this.#record({ id, name, peer: peer.name, state: 'done' }, name);
      step = 'hand-over';
      ticket?.clear();
      await access.stop(`moved to ${peer.name}`);
      await manager.remove(name, { force: true });
      this.#record(null, name);
      const bytes = rounds.reduce((sum, x) => sum + x.bytes, 0);
      const result: MoveResult = {
        name, from, to: peer.name, rounds: rounds.map((r) => ({ files: r.files, bytes: r.bytes, ms: Math.round(r.ms) })),
        bytes, frozenMs: Math.round(frozenMs), downtimeMs: Math.round(downtimeMs), totalMs: Math.round(performance.now() - t0),
        ...(warnings.length > 0 && { warnings }),
      };
      this.#event('move.done', name, { to: peer.name, move: id, rounds: rounds.length, bytes, frozenMs: result.frozenMs, downtimeMs: result.downtimeMs, totalMs: result.totalMs });
      return result;
    };
    try {
      const socket = await service.connect(peer);
      wire = new Wire(socket, `peer ${peer.name}`, IDLE_MS);
      step = 'hello';
      await wire.send({ type: 'hello', protocol: PROTOCOL_VERSION, move: id, from, name, definition: access.definition, force });
      const welcome = await wire.message('welcome');
      if (welcome.protocol !== PROTOCOL_VERSION) throw new WparError('EPROTO', `peer ${peer.name} speaks protocol ${String(welcome.protocol)}, not ${PROTOCOL_VERSION}`);
      warnings = Array.isArray(welcome.warnings) ? welcome.warnings.filter((w): w is string => typeof w === 'string').slice(0, 20).map((w) => w.slice(0, 500)) : [];
      this.#event('move.begin', name, { to: peer.name, move: id });

      // M3.2: pre-copy while it runs.
      step = 'precopy';
      const sender = new TreeSender(access.root, manager.ids);
      for (let n = 1; ; n++) {
        const r = await sender.round(wire, n, false, run.signal);
        await wire.message('round-ok');
        rounds.push(r);
        this.#event('move.round', name, { to: peer.name, move: id, round: n, files: r.files, bytes: r.bytes, ms: Math.round(r.ms) });
        run.onProgress?.({ step: 'precopy', round: n, bytes: rounds.reduce((s, x) => s + x.bytes, 0) });
        if (!anotherRound(n, r.bytes)) break;
      }

      // M3.3: TRY, waiting up to -w for denials; the arrival is told how long to wait.
      step = 'try';
      await wire.send({ type: 'waiting', seconds: waitSec });
      await wire.flush();
      wire.idleMs = waitSec * 1000 + IDLE_MS;
      try {
        ticket = await kernel.services.tryCheckpoint(access.cid, { timeoutMs: waitSec * 1000, ...(run.signal && { signal: run.signal }) });
      } catch (err) {
        if (err instanceof CheckpointDeniedError) {
          throw new WparError('ETIMEDOUT', `${name}: not moved after ${waitSec} s (ETIMEDOUT): ${describeDenials(err.denials)}`, { cause: err });
        }
        throw err;
      }

      wire.idleMs = IDLE_MS;
      // M3.4: agents save, freeze, the last delta, the definition and the states.
      step = 'freeze';
      agentsSaved = true;
      const states = access.agents ? await access.agents.save() : {};
      await access.freeze();
      frozenAt = performance.now();
      this.#event('move.frozen', name, { to: peer.name, move: id });
      run.onProgress?.({ step: 'frozen', round: rounds.length + 1, bytes: rounds.reduce((s, x) => s + x.bytes, 0) });
      step = 'last delta';
      const last = await sender.round(wire, rounds.length + 1, true);
      rounds.push(last);
      const listing = listingDigest(sender.listing());
      await wire.send({
        type: 'final', definition: access.definition, agents: serialize(new Map(Object.entries(states))).toString('base64'), listing,
      });
      await wire.message('round-ok');
      step = 'verify';
      await wire.message('ready');
      frozenMs = performance.now() - frozenAt;

      // Commit: from here, silence from the arrival may mean the WPAR runs there.
      if (run.signal?.aborted) throw new WparError('EINTR', 'movewpar was interrupted');
      step = 'ownership';
      giveBack = (await this.#ownership?.handOver(name, peer.name)) ?? null;
      step = 'commit';
      this.#record({ id, name, peer: peer.name, state: 'committing' }, name);
      await wire.send({ type: 'commit' });
      committed = true;
      run.onProgress?.({ step: 'activating', round: rounds.length, bytes: rounds.reduce((s, x) => s + x.bytes, 0) });
      wire.idleMs = ACTIVATE_MS;
      const answer = await wire.message();
      if (answer.type === 'failed') {
        // The arrival could not start it and removed what it made: the WPAR may run on here.
        arrivalFailed = true;
        throw new WparError('ECANCELED', `peer ${peer.name}: ${typeof answer.message === 'string' ? answer.message : 'activation failed'}`);
      }
      if (answer.type !== 'active') throw new WparError('EPROTO', `peer ${peer.name}: expected active, got ${answer.type}`);
      const result = await handOver();
      await wire.send({ type: 'done' }).catch(() => {});
      wire.end();
      return result;
    } catch (err) {
      const reason = (err as Error).message;
      if (committed && !arrivalFailed) {
        // Silence after the commit: ask the arrival (a new connection) what became of the move.
        wire?.destroy();
        this.#event('move.asking', name, { to: peer.name, move: id, reason });
        const outcome = await this.#askOutcome(peer, id, name);
        this.#event('move.asked', name, { to: peer.name, move: id, outcome });
        if (outcome === 'active') return handOver();
        if (outcome === 'aborted' || outcome === 'unknown') committed = false; // nothing there: roll back
      }
      if (committed && !arrivalFailed) {
        // Cannot tell whether the arrival runs it: never two copies — stop it here, keep it, say why.
        const why = `move to ${peer.name} uncertain after the hand-over began (${reason}); it may run on ${peer.name}: check there before starting it here`;
        ticket?.clear();
        await access.stop(why).catch(() => {});
        manager.markLost(name, why);
        this.#record(null, name);
        wire?.destroy();
        this.#event('move.failed', name, { to: peer.name, move: id, step, reason: why });
        throw new WparError(err instanceof WparError ? err.code : 'EIO', `${name}: ${why}`, { cause: err });
      }
      // M4: before the commit (or the arrival said it failed), the WPAR runs on here as before.
      if (wire) {
        const w = wire;
        await w.send({ type: 'abort', reason }).catch(() => {});
        w.end();
        setTimeout(() => w.destroy(), 1000).unref();
      }
      this.#record(null, name);
      if (giveBack) {
        await giveBack().catch((e: Error) => this.#event('move.ownership-not-returned', name, { to: peer.name, move: id, reason: e.message }));
      }
      ticket?.clear();
      await access.thaw().catch((e: Error) => this.#event('move.thaw-failed', name, { reason: e.message }));
      access.release();
      if (agentsSaved) await access.agents?.saved({ completed: false });
      this.#event('move.failed', name, { to: peer.name, move: id, step, reason });
      if (err instanceof WparError) {
        const message = reason.startsWith(`${name}:`) ? reason : `${name}: not moved to ${peer.name} (${step}): ${reason}`;
        throw new WparError(err.code, message, { cause: err });
      }
      throw new WparError('EIO', `${name}: not moved to ${peer.name} (${step}): ${reason}`, { cause: err });
    }
  }

  /**
   * After silence following the commit: asks the arrival, on new connections for up to twice the
   * idle bound, what became of move `id`: `active` (it runs there), `aborted` (it made nothing or
   * removed it), `unknown` (no record and no WPAR of that name: nothing there), `exists` (no record
   * but a WPAR of that name: cannot tell), or `unreachable`.
   */
  async #askOutcome(peer: Peer, id: string, name: string): Promise<string> {
    const deadline = Date.now() + 2 * IDLE_MS;
    while (Date.now() < deadline) {
      try {
        const socket = await this.#deps.peer.connect(peer, Math.min(2000, Math.max(500, deadline - Date.now())));
        const wire = new Wire(socket, `peer ${peer.name}`, IDLE_MS);
        try {
          await wire.send({ type: 'status', protocol: PROTOCOL_VERSION, move: id, name });
          const answer = await wire.message('status');
          const state = typeof answer.state === 'string' ? answer.state : 'exists';
          if (state !== 'activating') return state;
        } finally {
          wire.destroy();
        }
      } catch {
        // unreachable for now: try again until the deadline
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    return 'unreachable';
  }

  // Arrival -----------------------------------------------------------------------------------

  /** What became of recent incoming moves, by id (answers `status` questions; the last 100). */
  readonly #outcomes = new Map<string, 'activating' | 'active' | 'aborted'>();

  #outcome(id: string, state: 'activating' | 'active' | 'aborted'): void {
    this.#outcomes.delete(id);
    this.#outcomes.set(id, state);
    if (this.#outcomes.size > 100) this.#outcomes.delete(this.#outcomes.keys().next().value!);
  }

  /** Serves one trusted peer connection: an incoming move. Never throws. */
  accept(socket: TLSSocket, peer: Peer): void {
    this.#moveIn(socket, peer).catch(() => {});
  }

  async #moveIn(socket: TLSSocket, peer: Peer): Promise<void> {
    const { kernel, manager, layout } = this.#deps;
    const wire = new Wire(socket, `peer ${peer.name}`, IDLE_MS);
    let release: (() => void) | null = null;
    let staging: string | null = null;
    let name = '?';
    let id = '?';
    let step = 'hello';
    let created = false;
    try {
      const first = await wire.message();
      if (first.type === 'status') {
        // A departure that lost the connection after its commit asks what became of the move.
        const asked = typeof first.move === 'string' ? first.move : '';
        const known = this.#outcomes.get(asked);
        const state = known ?? (typeof first.name === 'string' && manager.has(first.name) ? 'exists' : 'unknown');
        // A fence: a move not yet committed here can never be afterwards (its commit, should it
        // still arrive on the old connection, is refused), so the departure may roll back.
        if (known === undefined && asked !== '') this.#outcome(asked, 'aborted');
        await wire.send({ type: 'status', state });
        wire.end();
        return;
      }
      if (first.type !== 'hello') throw new WparError('EPROTO', `expected hello, got ${first.type}`);
      const hello = first;
      if (hello.protocol !== PROTOCOL_VERSION) throw new WparError('EPROTO', `protocol ${String(hello.protocol)} is not supported (this system speaks ${PROTOCOL_VERSION})`);
      id = typeof hello.move === 'string' && /^[0-9a-f]{16}$/.test(hello.move) ? hello.move : (() => { throw new WparError('EPROTO', 'bad move id'); })();
      name = checkName(hello.name);
      const definition = checkDefinition(hello.definition);
      if (definition.name !== name) throw new WparError('EPROTO', `the definition names ${definition.name}, not ${name}`);
      // M3.1 / M6: refused before the departure freezes anything.
      release = manager.reserve(name);
      const forced = hello.force === true;
      const accepted = compatible(definition, this.#deps.isolation, forced);
      if (accepted.length > 0) this.#event('move.forced', name, { from: peer.name, move: id, accepted });
      staging = join(this.#incomingDir, id);
      const receiver = new TreeReceiver(join(staging, 'root'), join(staging, 'tmp'), manager.ids);
      await mkdir(this.#incomingDir, { recursive: true, mode: 0o700 });
      await receiver.init();
      await wire.send({ type: 'welcome', protocol: PROTOCOL_VERSION, ...(accepted.length > 0 && { warnings: accepted }) });
      this.#event('move.begin', name, { from: peer.name, move: id });

      step = 'receive';
      let final: Message | null = null;
      for (let n = 1; final === null; n++) {
        const m = await wire.message();
        if (m.type === 'abort') throw new WparError('ECANCELED', `the departure abandoned the move: ${String(m.reason)}`);
        if (m.type === 'waiting') {
          // TRY on the departure: wait as long as it may, then the round of the last delta.
          wire.idleMs = (Number(m.seconds) || 0) * 1000 + IDLE_MS;
          n--;
          continue;
        }
        if (m.type !== 'round' || m.n !== n) throw new WparError('EPROTO', `expected round ${n}, got ${m.type}`);
        wire.idleMs = IDLE_MS;
        const r = await receiver.round(wire, n);
        this.#event('move.round', name, { from: peer.name, move: id, round: n, files: r.files, bytes: r.bytes });
        if (m.final === true) {
          final = await wire.message('final');
          this.#event('move.frozen', name, { from: peer.name, move: id });
        }
        await wire.send({ type: 'round-ok', n });
      }

      // M3.4: every byte verified (each file's SHA-256 as it arrived; now the whole listing).
      step = 'verify';
      const got = listingDigest(receiver.listing());
      const want = final.listing as { entries?: unknown; sha256?: unknown } | undefined;
      if (!want || want.entries !== got.entries || want.sha256 !== got.sha256) {
        throw new WparError('EPROTO', `the root received does not match the departure's listing (${got.entries} entries, ${got.sha256})`);
      }
      const lastDefinition = checkDefinition(final.definition);
      if (lastDefinition.name !== name) throw new WparError('EPROTO', 'the final definition names another WPAR');
      compatible(lastDefinition, this.#deps.isolation, forced);
      const states = agentStates(final.agents);
      await receiver.finish();
      await wire.send({ type: 'ready' });

      step = 'commit';
      const commit = await wire.message();
      if (commit.type === 'abort') throw new WparError('ECANCELED', `the departure abandoned the move: ${String(commit.reason)}`);
      if (commit.type !== 'commit') throw new WparError('EPROTO', `expected commit, got ${commit.type}`);

      // Activation: the root into place, the definition, restart:true, agents, RESTART_CLEAR.
      if (this.#outcomes.get(id) === 'aborted') throw new WparError('ECANCELED', 'the departure asked about this move after losing it; the commit comes too late');
      step = 'activate';
      this.#outcome(id, 'activating');
      // The definition first (with an empty root), then the verified root renamed over it: a crash
      // in between leaves a visible, removable WPAR, never an orphan root.
      await manager.create(lastDefinition, false, { reserved: true });
      created = true;
      await rename(join(staging, 'root'), layout.root(name));
      release();
      release = null;
      await manager.start(name, { restart: true, agentStates: states });
      await manager.restored(name);
      const info = manager.info(name);
      if (info.cid === null) throw new WparError('ENOENT', `${name}: ended before its agents restored`);
      kernel.services.restartClear(info.cid);
      await rm(staging, { recursive: true, force: true });
      staging = null;
      // The WPAR is this side's from here: the departure committed and never runs it again, so a
      // departure that is gone by now (its daemon killed, the link cut) changes nothing here.
      step = 'done';
      this.#outcome(id, 'active');
      await wire.send({ type: 'active', cid: info.cid, pid: info.pid }).catch(() => {});
      // The departure's `done` is a courtesy: once `active` is sent, this side has the WPAR.
      await wire.message('done').catch(() => undefined);
      wire.end();
      this.#event('move.done', name, { from: peer.name, move: id });
    } catch (err) {
      const reason = (err as Error).message;
      if (step === 'done') { this.#event('move.done', name, { from: peer.name, move: id }); return; }
      if (created) await manager.remove(name, { force: true }).catch(() => {});
      if (id !== '?') this.#outcome(id, 'aborted');
      if (staging !== null) await rm(staging, { recursive: true, force: true }).catch(() => {});
      release?.();
      const code = err instanceof WparError ? err.code : 'EIO';
      await wire.send({ type: step === 'activate' ? 'failed' : 'error', code, message: `${name}: ${reason}` }).catch(() => {});
      wire.end();
      setTimeout(() => wire.destroy(), 1000).unref();
      this.#event('move.failed', name, { from: peer.name, move: id, step, reason });
    }
  }

  // Control API ---------------------------------------------------------------------------------

  /** Adds `POST /v1/wpars/:name/move` (JSON, or an x-ndjson stream of progress then the result). */
  routes(app: FastifyInstance): void {
    app.post<{ Params: { name: string }; Body: MoveRequest }>('/v1/wpars/:name/move', async (req, reply) => {
      const name = checkName(req.params.name);
      const body = req.body ?? ({} as MoveRequest);
      const gone = new AbortController();
      reply.raw.on('close', () => { if (!reply.raw.writableFinished) gone.abort(new WparError('EINTR', `${name}: move abandoned: the client went away`)); });
      if (!(req.headers.accept ?? '').includes('application/x-ndjson')) return this.moveOut(name, body, { signal: gone.signal });
      const stream = new Readable({ read() {} });
      const line = (o: unknown): string => JSON.stringify(o) + '\n';
      this.moveOut(name, body, { signal: gone.signal, onProgress: (p) => stream.push(line({ type: 'progress', time: Date.now(), ...p })) }).then(
        (result) => { stream.push(line({ type: 'result', time: Date.now(), result })); stream.push(null); },
        (err: Error) => {
          stream.push(line({ type: 'error', time: Date.now(), error: { code: err instanceof WparError ? err.code : 'EIO', message: err.message } }));
          stream.push(null);
        },
      );
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' });
      reply.raw.flushHeaders();
      stream.pipe(reply.raw);
      return reply;
    });
  }
}

/**
 * M6: what would make the arrival fail, found before the departure freezes: the command not found
 * here, or isolation weaker than the definition's limits and network need. Refused (the first
 * problem's errno, every problem named) unless `force`, which returns them to be reported.
 */
function compatible(definition: WparDefinition, isolation: Isolation, force: boolean): string[] {
  const problems: { code: 'ENOENT' | 'EINVAL'; why: string }[] = [];
  const cmd = definition.argv[0]!;
  const found = (path: string): boolean => {
    try { accessSync(path, fsConstants.X_OK); return statSync(path).isFile(); } catch { return false; }
  };
  if (cmd.includes('/')) {
    if (cmd.startsWith('/') && !found(cmd)) problems.push({ code: 'ENOENT', why: `the command ${cmd} is not found on this system` });
  } else {
    const dirs = (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter).filter((d) => d !== '');
    if (!dirs.some((d) => found(join(d, cmd)))) problems.push({ code: 'ENOENT', why: `the command ${cmd} is not found on this system (PATH ${dirs.join(':')})` });
  }
  for (const why of isolationShortfalls(isolation, definition)) problems.push({ code: 'EINVAL', why });
  if (problems.length === 0 || force) return problems.map((p) => p.why);
  throw new WparError(problems[0]!.code, `${problems.map((p) => p.why).join('; ')} (movewpar --force accepts this)`);
}

function agentStates(b64: unknown): Record<string, unknown> {
  if (typeof b64 !== 'string' || b64.length > 350 << 20) throw new WparError('EPROTO', 'bad agent states');
  let value: unknown;
  try {
    value = deserialize(Buffer.from(b64, 'base64'));
  } catch (err) {
    throw new WparError('EPROTO', `agent states cannot be read: ${(err as Error).message}`);
  }
  if (!(value instanceof Map) || ![...value.keys()].every((k) => typeof k === 'string')) throw new WparError('EPROTO', 'agent states are not a Map of name to state');
  return Object.fromEntries(value as Map<string, unknown>);
}

/** Where a home keeps its records of moves away in flight. */
function movesDir(home: string): string {
  return join(home, 'moves');
}
