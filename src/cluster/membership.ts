/**
 * A host's membership of the cluster (C1, C2): its record under a lease, renewed by Corral's own
 * keep-alive loop, and the directory of live members that the peer endpoint trusts.
 *
 * Lease loss is decided here, not by the client library: `etcd3` reports a lost lease only when a
 * keep-alive finally fails or etcd answers that the lease is gone, which can be long after etcd
 * expired it. So the host keeps its own deadline: the lease counts as expired once `ttl` seconds
 * (less a small margin) have passed since the *sending* of the last keep-alive that etcd
 * acknowledged — never later than etcd's own expiry, which is measured from when etcd received it.
 * A failed keep-alive is tried again at once (another etcd member may answer), each attempt bounded
 * by what is left before the deadline. Past it the host says so (`cluster.lease.lost`) and re-joins
 * with a new lease as soon as etcd answers.
 * @module
 */
import { availableParallelism, totalmem } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { EtcdLeaseInvalidError, type Etcd3, type Lease, type Watcher } from 'etcd3';
import { WparError } from '../kernel/errno.ts';
import type { Journal } from '../daemon/journal.ts';
import type { Fingerprint } from '../peer/fingerprint.ts';
import type { Peer } from '../peer/peers.ts';
import { CALL_MS, etcdError, type ClusterOptions } from './etcd.ts';
import { HOSTS, KNOWN, parseHost, parseKnown, parseWpar, WPARS, type HostCapacity, type HostRecord } from './records.ts';

/** The most one keep-alive attempt may take (then the next is tried, possibly on another etcd member). */
const ATTEMPT_MS = 1000;
/** The pause between two attempts at a renewal. */
const RETRY_MS = 100;

/** One line of `wpar hosts --json` (C2). */
export interface HostInfo {
  readonly name: string;
  readonly address: string;
  readonly state: 'up' | 'draining' | 'lost';
  /** WPARs defined on it. */
  readonly wpars: number;
  /** Seconds left on its lease (0 when lost). */
  readonly ttl: number;
  readonly fingerprint: string;
  /** Its CPUs and memory (C1), while it is live and published them. */
  readonly capacity?: HostCapacity;
}

/** This host's capacity, as it publishes it (C1). */
export function hostCapacity(): HostCapacity {
  return { cpus: availableParallelism(), memoryBytes: totalmem() };
}

/** What a host publishes about itself. */
export interface Self {
  readonly name: string;
  readonly address: string;
  readonly fingerprint: Fingerprint;
}

/** Options of {@link Membership.join}. */
export interface MembershipOptions {
  readonly client: Etcd3;
  readonly options: ClusterOptions;
  readonly self: Self;
  readonly journal: Journal;
  /** The host's load now (published with each renewal when it changed). */
  readonly load: () => { wpars: number; active: number };
  readonly log: (line: string) => void;
}

/** What a host hears about the membership (failover, C6). */
export interface MembershipListener {
  /** A host's lease record was deleted (its lease expired, or it left) at `at`. */
  readonly gone?: (name: string, at: number) => void;
  /** A host's lease record was written (it joined, re-joined or changed state). */
  readonly seen?: (name: string) => void;
  /** This host re-joined after counting itself lost. */
  readonly rejoined?: () => void;
}

/** A joined host. */
export class Membership {
  readonly #o: MembershipOptions;
  readonly #ttlMs: number;
  /** The lease counts as lost this much before `sent + TTL`, so that no attempt in flight overlaps etcd's expiry. */
  readonly #marginMs: number;
  #lease: Lease;
  #record: HostRecord;
  /** When the last acknowledged keep-alive (or the grant) was sent. */
  #renewedSent: number;
  #lost = false;
  #closed = false;
  #timer: NodeJS.Timeout | null = null;
  #watcher: Watcher | null = null;
  /** Live members by fingerprint (the peer endpoint's second source of trust). */
  #live = new Map<string, HostRecord>();
  /** When a miss last made the directory reload. */
  #lookedAgain = 0;
  readonly #listeners: MembershipListener[] = [];
  /** Told the send time of each keep-alive etcd acknowledged, and of each new lease (fencing, C4). */
  onRenewed: ((sentWallMs: number) => void) | null = null;

  private constructor(o: MembershipOptions, lease: Lease, record: HostRecord, sent: number) {
    this.#o = o;
    this.#ttlMs = o.options.leaseTtl * 1000;
    this.#marginMs = Math.min(500, this.#ttlMs / 10);
    this.#lease = lease;
    this.#record = record;
    this.#renewedSent = sent;
  }

  /**
   * Joins: grants a lease and publishes the host record under it in one transaction that succeeds
   * only if no live host has the name — or if the live record is this same identity's (a restart
   * within the old lease's TTL). Otherwise EEXIST, naming the live holder.
   */
  static async join(o: MembershipOptions): Promise<Membership> {
    const sent = Date.now();
    const { lease, record } = await register(o, sent);
    const m = new Membership(o, lease, record, sent);
    // The watch starts right after the revision the directory was read at: no join is missed between.
    await m.#watch(await m.#refresh());
    m.#schedule();
    o.journal.record({ type: 'cluster.joined', time: Date.now(), host: o.self.name, urls: o.options.urls.join(','), ttl: o.options.leaseTtl });
    return m;
  }

  /** This host's name. */
  get name(): string {
    return this.#o.self.name;
  }

  /** Tells `listener` of hosts going and coming, and of this host's re-joins. */
  listen(listener: MembershipListener): void {
    this.#listeners.push(listener);
  }

  #tell(f: (l: MembershipListener) => void): void {
    for (const l of this.#listeners) {
      try { f(l); } catch (err) { this.#o.log(`cluster: a membership listener failed: ${(err as Error).message}`); }
    }
  }

  /** When the last keep-alive that etcd acknowledged (or the grant of the lease) was sent (ms since the epoch). */
  get renewedSent(): number {
    return this.#renewedSent;
  }

  /** Whether this host believes its lease expired (and has not re-joined yet). */
  get lost(): boolean {
    return this.#lost;
  }

  /** The live member with that fingerprint, as a peer (its name and endpoint), or undefined. */
  byFingerprint(fp: string): Peer | undefined {
    const r = this.#live.get(fp);
    // A host that joined a moment ago may call before the watch told us: look again (the caller retries).
    if (!r && !this.#closed && Date.now() - this.#lookedAgain > 200) {
      this.#lookedAgain = Date.now();
      this.#refresh().catch(() => {});
    }
    return r && r.name !== this.name ? { name: r.name, fingerprint: r.fingerprint, address: r.address } : undefined;
  }

  /** The live member of that name (not this host), as a peer, or undefined. */
  byName(name: string): Peer | undefined {
    if (name === this.name) return undefined;
    for (const r of this.#live.values()) if (r.name === name) return { name: r.name, fingerprint: r.fingerprint, address: r.address };
    return undefined;
  }

  /** The names of the other live members, as the directory knows them. */
  otherNames(): string[] {
    return [...this.#live.values()].map((r) => r.name).filter((n) => n !== this.name);
  }

  /** This host's state as it publishes it. */
  get state(): 'up' | 'draining' {
    return this.#record.state;
  }

  /** Publishes `up` or `draining` (C7) under the lease. */
  async setState(state: 'up' | 'draining'): Promise<void> {
    const record = { ...this.#record, state };
    try {
      await this.#o.client.put(HOSTS + this.name).value(JSON.stringify(record)).lease(await this.#lease.grant()).exec();
    } catch (err) {
      throw etcdError(err, `${this.name}: publishing its state ${state}`, this.#o.options.urls);
    }
    this.#record = record;
    this.#o.journal.record({ type: state === 'draining' ? 'cluster.draining' : 'cluster.undrained', time: Date.now(), host: this.name });
  }

  /** The live host records now, from etcd. */
  async live(): Promise<HostRecord[]> {
    const { client, options } = this.#o;
    let kvs: Record<string, string>;
    try {
      kvs = await client.getAll().prefix(HOSTS).strings();
    } catch (err) {
      throw etcdError(err, 'listing the cluster\'s hosts', options.urls);
    }
    return Object.entries(kvs).map(([k, v]) => parseHost(k, v)).filter((r): r is HostRecord => r !== null);
  }

  /** The live host of that name as a peer to connect to (ENOENT when it is not up). */
  async peer(name: string): Promise<Peer> {
    const r = (await this.live()).find((h) => h.name === name);
    if (!r) throw new WparError('EAGAIN', `host ${name} is not a live member of the cluster now (lost: its lease expired)`);
    return { name: r.name, fingerprint: r.fingerprint, address: r.address };
  }

  /** `wpar hosts`: every host ever seen, live or lost, with its WPAR count and remaining TTL. */
  async hosts(): Promise<HostInfo[]> {
    const { client, options } = this.#o;
    let known: Record<string, string>;
    let wpars: Record<string, string>;
    const live = await this.live();
    try {
      [known, wpars] = await Promise.all([client.getAll().prefix(KNOWN).strings(), client.getAll().prefix(WPARS).strings()]);
    } catch (err) {
      throw etcdError(err, 'listing the cluster\'s hosts', options.urls);
    }
    const counts = new Map<string, number>();
    for (const [k, v] of Object.entries(wpars)) {
      const w = parseWpar(k, v);
      if (w) counts.set(w.host, (counts.get(w.host) ?? 0) + 1);
    }
    const ttls = new Map<string, number>();
    await Promise.all(live.map(async (h) => {
      try {
        const kv = await client.get(HOSTS + h.name).exec();
        const id = kv.kvs[0]?.lease;
        if (id === undefined || id === '0') return;
        const t = await client.leaseClient.leaseTimeToLive({ ID: id });
        ttls.set(h.name, Math.max(0, Number(t.TTL)));
      } catch { /* a lease that expired between the two reads: 0 */ }
    }));
    const rows = new Map<string, HostInfo>();
    for (const [k, v] of Object.entries(known)) {
      const h = parseKnown(k, v);
      if (h) rows.set(h.name, { name: h.name, address: h.address, state: 'lost', wpars: counts.get(h.name) ?? 0, ttl: 0, fingerprint: h.fingerprint });
    }
    for (const h of live) {
      rows.set(h.name, {
        name: h.name, address: h.address, state: h.state, wpars: counts.get(h.name) ?? 0, ttl: ttls.get(h.name) ?? 0, fingerprint: h.fingerprint,
        ...(h.capacity && { capacity: h.capacity }),
      });
    }
    return [...rows.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Leaves: revokes the lease (the record goes at once) and stops renewing. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    // Bounded: with etcd unreachable, the daemon's stop must not wait for it (the lease then expires by itself).
    await Promise.race([
      Promise.allSettled([this.#watcher?.cancel(), this.#lease.revoke({ deadline: Date.now() + CALL_MS })]),
      delay(CALL_MS + 500),
    ]);
    this.#o.journal.record({ type: 'cluster.left', time: Date.now(), host: this.name });
  }

  // The keep-alive loop ------------------------------------------------------------------------

  #schedule(): void {
    if (this.#closed) return;
    // Three renewals per TTL: one lost keep-alive never costs the lease.
    this.#timer = setTimeout(() => { void this.#tick(); }, Math.max(200, Math.floor(this.#ttlMs / 3)));
  }

  async #tick(): Promise<void> {
    try {
      if (this.#lost) await this.#rejoin(Date.now());
      else await this.#renewInTime();
      await this.#refresh();
    } catch (err) {
      this.#o.journal.record({ type: 'cluster.renew.failed', time: Date.now(), host: this.name, reason: (err as Error).message.split('\n')[0] });
    } finally {
      this.#schedule();
    }
  }

  /**
   * Renews the lease, trying again at once (every {@link RETRY_MS}) while the deadline allows: a
   * keep-alive that went to an etcd member that just died fails, and the next goes to another.
   * Each attempt is bounded so that none outlives the deadline; past it, the lease counts as lost.
   */
  async #renewInTime(): Promise<void> {
    for (let attempt = 0; !this.#closed; attempt++) {
      const sent = Date.now();
      const left = this.#renewedSent + this.#ttlMs - this.#marginMs - sent;
      if (left <= 0) { this.#markLost(sent); return; }
      try {
        await this.#renew(sent, Math.min(ATTEMPT_MS, left));
        return;
      } catch (err) {
        if (err instanceof EtcdLeaseInvalidError) { this.#markLost(Date.now()); return; }
        if (attempt === 0) this.#o.journal.record({ type: 'cluster.renew.failed', time: Date.now(), host: this.name, reason: (err as Error).message.split('\n')[0] });
        await delay(RETRY_MS);
      }
    }
  }

  async #renew(sent: number, budgetMs: number): Promise<void> {
    const res = await this.#lease.keepaliveOnce({ deadline: sent + budgetMs });
    if (Number(res.TTL) <= 0) { this.#markLost(Date.now()); return; }
    this.#renewedSent = sent;
    this.onRenewed?.(sent);
    const load = this.#o.load();
    if (load.wpars !== this.#record.load.wpars || load.active !== this.#record.load.active) {
      const record = { ...this.#record, load };
      await this.#o.client.put(HOSTS + this.name).value(JSON.stringify(record)).lease(await this.#lease.grant()).exec();
      this.#record = record;
    }
  }

  #markLost(now: number): void {
    if (this.#lost) return;
    this.#lost = true;
    this.#o.journal.record({ type: 'cluster.lease.lost', time: now, host: this.name, renewedAgoMs: now - this.#renewedSent });
    this.#o.log(`cluster: no lease renewal for ${Math.round((now - this.#renewedSent) / 1000)} s: this host counts as lost until it re-joins`);
  }

  async #rejoin(sent: number): Promise<void> {
    this.#lease.release();
    const { lease, record } = await register(this.#o, sent, this.#record.state);
    this.#lease = lease;
    this.#record = record;
    this.#renewedSent = sent;
    this.#lost = false;
    this.onRenewed?.(sent);
    this.#o.journal.record({ type: 'cluster.rejoined', time: Date.now(), host: this.name });
    this.#o.log('cluster: re-joined with a new lease');
    this.#tell((l) => l.rejoined?.());
  }

  /** Reloads the directory of live members (the watch keeps it current in between); resolves the revision read. */
  async #refresh(): Promise<string> {
    const res = await this.#o.client.getAll().prefix(HOSTS).exec();
    const live = new Map<string, HostRecord>();
    for (const kv of res.kvs) {
      const r = parseHost(kv.key.toString(), kv.value.toString());
      if (r) live.set(r.fingerprint, r);
    }
    this.#live = live;
    return res.header.revision;
  }

  async #watch(revision: string): Promise<void> {
    const w = await this.#o.client.watch().prefix(HOSTS).startRevision(String(BigInt(revision) + 1n)).create();
    w.on('put', (kv) => {
      const r = parseHost(kv.key.toString(), kv.value.toString());
      if (r) {
        for (const [fp, old] of this.#live) if (old.name === r.name) this.#live.delete(fp);
        this.#live.set(r.fingerprint, r);
        this.#tell((l) => l.seen?.(r.name));
      }
    });
    w.on('delete', (kv) => {
      const name = kv.key.toString().slice(HOSTS.length);
      for (const [fp, old] of this.#live) if (old.name === name) this.#live.delete(fp);
      const at = Date.now();
      this.#tell((l) => l.gone?.(name, at));
    });
    w.on('error', () => { /* the watcher reconnects; #refresh corrects the directory each tick */ });
    this.#watcher = w;
  }
}

/** Grants a lease and publishes the host record under it (see {@link Membership.join}). */
async function register(o: MembershipOptions, now: number, state: 'up' | 'draining' = 'up'): Promise<{ lease: Lease; record: HostRecord }> {
  const { client, options, self } = o;
  const key = HOSTS + self.name;
  const lease = client.lease(options.leaseTtl, { autoKeepAlive: false });
  lease.on('lost', () => { /* decided by our own deadline, see the module comment */ });
  try {
    const id = await lease.grant();
    const record: HostRecord = { ...self, state, load: o.load(), ttl: options.leaseTtl, since: now, capacity: hostCapacity() };
    const value = JSON.stringify(record);
    const known = JSON.stringify({ name: self.name, address: self.address, fingerprint: self.fingerprint });
    const first = await client.if(key, 'Create', '==', 0)
      .then(client.put(key).value(value).lease(id), client.put(KNOWN + self.name).value(known))
      .else(client.get(key))
      .commit();
    if (first.succeeded) return { lease, record };
    const held = first.responses[0]?.response_range?.kvs[0];
    const holder = held ? parseHost(key, held.value.toString()) : null;
    if (!held || !holder || holder.fingerprint !== self.fingerprint) {
      throw new WparError('EEXIST', `host name ${self.name} is taken by a live member of the cluster${holder ? ` (${holder.address}, ${holder.fingerprint})` : ''}: choose another --name, or wait for its lease to expire`);
    }
    // Our own record from before a restart: take it over, unless it changed meanwhile.
    const again = await client.if(key, 'Mod', '==', held.mod_revision)
      .then(client.put(key).value(value).lease(id), client.put(KNOWN + self.name).value(known))
      .commit();
    if (!again.succeeded) throw new WparError('EEXIST', `host name ${self.name} changed hands while joining; try again`);
    return { lease, record };
  } catch (err) {
    lease.release();
    await lease.revoke({ deadline: Date.now() + CALL_MS }).catch(() => {});
    throw etcdError(err, `cannot join the cluster as ${self.name}`, options.urls);
  }
}
