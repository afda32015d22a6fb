/**
 * Failover (C6) and reconciling a returning host's WPARs with etcd.
 *
 * When a host's lease expires (its record under `/corral/hosts/` is deleted; a scan at start, at each
 * re-join and every few seconds catches what a watch missed), each of its WPARs defined with
 * `failover` is taken by one surviving host that holds the newest replica: every such holder tries
 * `Namespace.transfer` — a transaction conditioned on the WPAR's record being unchanged, raising the
 * epoch — and exactly one succeeds; it restarts the WPAR from its copy as a restart (R5: the agents
 * get the image's state, then RESTART_CLEAR), with the new epoch as `WPAR_EPOCH`. The time from the
 * loss being seen to the WPAR running again is the `cluster.failover` event's `ms`.
 *
 * A failover WPAR with no replica is not started anywhere: `lswpar` shows it `B`, `lost with host
 * NAME; no replica`. A host that comes back (its daemon restarted, or its link back) removes its
 * copies of the failover WPARs that etcd says another host owns now, without running them.
 * @module
 */
import { access } from 'node:fs/promises';
import { WparError } from '../kernel/errno.ts';
import type { Journal } from '../daemon/journal.ts';
import type { WparInfo } from '../daemon/protocol.ts';
import type { WparManager } from '../daemon/wpars.ts';
import { imagePath } from '../image/index.ts';
import type { ImageManifest } from '../image/index.ts';
import type { PeerService } from '../peer/service.ts';
import { checkImageSignature, type Signer } from '../peer/signing.ts';
import { imageDir, type ReplicaRecords } from './replicas.ts';
import type { Namespace } from './namespace.ts';
import type { KnownHost, WparRecord } from './records.ts';

/** How often the survivors look again for WPARs of lost hosts (a watch event can be missed). */
const SCAN_MS = 2_000;

/** What failover works with. */
export interface FailoverDeps {
  readonly self: string;
  readonly home: string;
  readonly manager: WparManager;
  readonly namespace: Namespace;
  readonly records: ReplicaRecords;
  readonly journal: Journal;
  /** The names of the live hosts now, from etcd. */
  readonly liveNames: () => Promise<ReadonlySet<string>>;
  /** Whether this host is a member now (not lost itself). */
  readonly member: () => boolean;
  /** A host once seen (its identity signs its images). */
  readonly known: (name: string) => Promise<KnownHost | undefined>;
  /** Whether `host` has WPAR `name` now (asked over the peer endpoint); undefined when it cannot tell. */
  readonly hostHas: (host: string, name: string) => Promise<boolean | undefined>;
  /** Restarts `name` from the image in `dir`, also trusting images signed by `signer` (R5). */
  readonly restart: (name: string, dir: string, signer: KnownHost) => Promise<WparInfo>;
  readonly log: (line: string) => void;
}

/** Whether a WPAR's definition asks for failover (C4's `--failover`). */
export function wantsFailover(definition: { readonly failover?: unknown }): boolean {
  return definition.failover === true;
}

/** The reason a lost failover WPAR shows in `lswpar` (`B`). */
export function lostReason(host: string, replica: boolean): string {
  return replica ? `lost with host ${host}; failing over from its newest replica` : `lost with host ${host}; no replica`;
}

/** This host's part in failover. */
export class Failover {
  readonly #d: FailoverDeps;
  /** When each lost host was seen to go (its lease record deleted). */
  readonly #lostAt = new Map<string, number>();
  /** Lost WPARs already reported without a replica (once per name and epoch). */
  readonly #reported = new Set<string>();
  #scan: Promise<void> | null = null;
  #again = false;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(deps: FailoverDeps) {
    this.#d = deps;
  }

  /** Starts the periodic scan. */
  start(): void {
    this.#timer = setInterval(() => this.scan(), SCAN_MS);
    this.#timer.unref();
    this.scan();
  }

  /** A host's lease record was deleted at `at`: fail over its WPARs now. */
  hostGone(host: string, at: number): void {
    if (host === this.#d.self) return;
    if (!this.#lostAt.has(host)) this.#lostAt.set(host, at);
    this.scan();
  }

  /** A host's record appeared again. */
  hostBack(host: string): void {
    this.#lostAt.delete(host);
  }

  /** Looks for failover WPARs of lost hosts (one scan at a time; a request during one runs another after it). */
  scan(): void {
    if (this.#closed) return;
    if (this.#scan) { this.#again = true; return; }
    this.#scan = this.#scanOnce().catch((err: Error) => {
      this.#d.journal.record({ type: 'cluster.failover.scan-failed', time: Date.now(), host: this.#d.self, reason: err.message.split('\n')[0] });
    }).finally(() => {
      this.#scan = null;
      if (this.#again) { this.#again = false; this.scan(); }
    });
  }

  /** Stops scanning and waits for a scan under way. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#scan;
  }

  async #scanOnce(): Promise<void> {
    const d = this.#d;
    if (!d.member()) return;
    const [records, live] = await Promise.all([d.namespace.all(), d.liveNames()]);
    if (!live.has(d.self)) return; // this host counts as lost itself: nothing is taken
    for (const r of records) {
      if (live.has(r.host) || !wantsFailover(r.definition)) continue;
      try {
        await this.#takeOver(r, live);
      } catch (err) {
        d.journal.record({ type: 'cluster.failover.failed', time: Date.now(), name: r.name, from: r.host, reason: (err as Error).message, code: err instanceof WparError ? err.code : 'EIO' });
        d.log(`cluster: failover of ${r.name} from ${r.host}: ${(err as Error).message}`);
      }
    }
  }

  /** Takes `record` (its host lost) if this host holds its newest replica and wins the transaction. */
  async #takeOver(record: WparRecord, live: ReadonlySet<string>): Promise<void> {
    const d = this.#d;
    const lostAt = this.#lostAt.get(record.host) ?? Date.now();
    const replica = await d.records.get(record.name);
    const holders = (replica?.hosts ?? []).filter((h) => live.has(h));
    if (!replica || holders.length === 0) {
      const key = `${record.name}@${record.epoch}`;
      if (!this.#reported.has(key)) {
        this.#reported.add(key);
        d.journal.record({ type: 'cluster.failover.none', time: Date.now(), name: record.name, from: record.host, epoch: record.epoch, reason: lostReason(record.host, false) });
      }
      return;
    }
    if (!holders.includes(d.self)) return; // another holder takes it
    const dir = imageDir(d.home, record.name, replica.epoch, replica.seq);
    await access(imagePath(dir)).catch((err: Error) => {
      throw new WparError('ENOENT', `${record.name}: the replica ${replica.epoch}-${replica.seq} etcd names is not on this host (${err.message})`);
    });
    if (d.manager.has(record.name)) throw new WparError('EEXIST', `${record.name}: this host has a WPAR of that name already; not taken over`);
    const signer = await d.known(replica.owner);
    if (!signer) throw new WparError('EPERM', `${record.name}: the replica's writer ${replica.owner} is not a known host of the cluster`);
    let handed: WparRecord;
    try {
      handed = await d.namespace.transfer(record, d.self);
    } catch (err) {
      if (err instanceof WparError && err.code === 'EBUSY') return; // another holder won: exactly one restarts it
      throw err;
    }
    d.journal.record({ type: 'cluster.failover.begin', time: Date.now(), name: record.name, from: record.host, epoch: handed.epoch, replica: `${replica.epoch}-${replica.seq}` });
    await d.restart(record.name, dir, signer);
    const recoveredAt = Date.now();
    d.journal.record({
      type: 'cluster.failover', time: recoveredAt, name: record.name, from: record.host, to: d.self, epoch: handed.epoch,
      replica: `${replica.epoch}-${replica.seq}`, checkpointTime: replica.time, lostAt, recoveredAt, ms: recoveredAt - lostAt,
    });
    d.log(`cluster: ${record.name} failed over from ${record.host} (epoch ${handed.epoch}, from its checkpoint of ${new Date(replica.time).toISOString()}) in ${recoveredAt - lostAt} ms`);
  }

  /**
   * Removes this host's copies of failover WPARs whose record names another host (it was lost and
   * they were failed over) or that have no record (removed from the cluster while it was away: a
   * failover WPAR is a cluster WPAR): stopped (if running) and removed, never started — removed
   * only once the owner is seen to have it (else kept, stopped). Resolves the names removed.
   */
  async reconcile(): Promise<string[]> {
    const d = this.#d;
    const removed: string[] = [];
    for (const name of d.manager.names()) {
      const info = d.manager.info(name);
      if (!wantsFailover(info.definition) || info.state === 'M') continue;
      const record = await d.namespace.get(name);
      if (record?.host === d.self) continue;
      // Another owner now, or removed from the cluster while this host was away (rmwpar -F).
      const why = record ? `${record.host} owns it now (epoch ${record.epoch})` : 'it was removed from the cluster';
      if (d.manager.running(name)) await d.manager.stop(name, { force: true, timeoutSec: 0, reason: `stale: ${why}` }).catch(() => {});
      // Removed only once the owner is seen to have it: after a crash mid-drain this may be the only copy.
      if (record && (await d.hostHas(record.host, name)) !== true) {
        d.journal.record({ type: 'cluster.stale.kept', time: Date.now(), name, owner: record.host, epoch: record.epoch, reason: `${record.host} does not show it (yet)` });
        d.log(`cluster: ${name}: ${why}, but it does not show it: this copy is kept, stopped`);
        continue;
      }
      await d.manager.remove(name, { force: true });
      removed.push(name);
      d.journal.record({ type: 'cluster.stale.removed', time: Date.now(), name, owner: record?.host ?? null, epoch: record?.epoch ?? null, wasRunning: info.state !== 'D' && info.state !== 'B' });
      d.log(`cluster: removed the stale copy of ${name}: ${why}`);
    }
    return removed;
  }
}

/**
 * The peer service as a failover restart sees it: it also accepts images signed by `signer`, the
 * lost host that wrote the replica (no longer a live member, so not trusted by the endpoint's rule;
 * its identity is the one it published while it was one, kept under `/corral/known/`).
 */
export function trustingAlso(peer: PeerService, signer: KnownHost): PeerService {
  return {
    ...peer,
    checkSignature: (manifest: ImageManifest, label: string): Signer => {
      if (manifest.signature?.fingerprint !== signer.fingerprint) return peer.checkSignature(manifest, label);
      return checkImageSignature(manifest, peer.identity, { byFingerprint: (fp) => (fp === signer.fingerprint ? { name: signer.name, fingerprint: signer.fingerprint, address: null } : undefined) }, label);
    },
  };
}
