/**
 * The daemon's cluster service (C1–C3): membership under a lease, the namespace of WPARs in etcd,
 * `GET /v1/hosts`, and the routing of every control request to the host where its WPAR is.
 *
 * Routing happens before a control route runs (the server's `forward` hook): a request about a
 * WPAR another host owns is sent there over the peer endpoint and its answer returned as it came;
 * a request forwarded *to* this host (it carries {@link FORWARDED}) runs here as a local one.
 * @module
 */
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Etcd3 } from 'etcd3';
import { WparError } from '../kernel/errno.ts';
import { checkDefinition, checkName } from '../daemon/definition-check.ts';
import type { Journal } from '../daemon/journal.ts';
import type { CreateRequest, WparInfo } from '../daemon/protocol.ts';
import type { WparManager } from '../daemon/wpars.ts';
import type { PeerService } from '../peer/service.ts';
import { checkSystemName, type Peer } from '../peer/peers.ts';
import { answerCall, callPeer, dispatch, FORWARDED, type Answer, type Call } from './calls.ts';
import { etcdClient, type ClusterOptions } from './etcd.ts';
import { Membership } from './membership.ts';
import { Namespace } from './namespace.ts';
import type { Mover } from '../peer/move.ts';
import { KNOWN, parseKnown, type KnownHost, type ReplicaRecord, type WparRecord } from './records.ts';
import { claimForRestart } from './restart-claim.ts';
import { openStream, serveStream } from './relay.ts';
import type { WparDefinition } from '../runtime/definition.ts';
import { receiveReplica, replicate, ReplicaRecords, type ReplicaImage, type Replicated } from './replicas.ts';
import { Failover, lostReason, trustingAlso, wantsFailover } from './failover.ts';
import { etcdError } from './etcd.ts';

/** What the cluster service works with. */
export interface ClusterDeps {
  /** The daemon's home (replicas are kept in `HOME/checkpoints/`). */
  readonly home: string;
  readonly manager: WparManager;
  readonly peer: PeerService;
  readonly journal: Journal;
  readonly log: (line: string) => void;
}

/** What `wpar drain HOST` did (C7). */
export interface DrainResult {
  readonly host: string;
  readonly state: 'draining';
  readonly moved: readonly { readonly name: string; readonly to: string; readonly epoch: number; readonly downtimeMs: number }[];
  /** Those left where they are, and why (not checkpointable, not active, the move failed). */
  readonly notMoved: readonly { readonly name: string; readonly reason: string }[];
}

/** A WPAR as the cluster lists it: where it is. */
export type ClusterWparInfo = WparInfo & { readonly host: string; readonly epoch?: number };

/** A joined host's cluster service. */
export class ClusterService {
  readonly membership: Membership;
  readonly namespace: Namespace;
  /** The newest replica of each WPAR with scheduled checkpoints (C5). */
  readonly replicas: ReplicaRecords;
  readonly #client: Etcd3;
  readonly #urls: readonly string[];
  readonly #deps: ClusterDeps;
  #app: FastifyInstance | null = null;
  #mover: Mover | null = null;
  #failover: Failover | null = null;

  private constructor(client: Etcd3, membership: Membership, namespace: Namespace, deps: ClusterDeps, urls: readonly string[]) {
    this.#client = client;
    this.#urls = urls;
    this.membership = membership;
    this.namespace = namespace;
    this.replicas = new ReplicaRecords(client, urls);
    this.#deps = deps;
  }

  /**
   * Joins the cluster (C1). Needs the peer endpoint (`--listen`): members reach each other there.
   * EEXIST when a live host has this name; EAGAIN when etcd cannot be reached.
   */
  static async start(options: ClusterOptions, deps: ClusterDeps): Promise<ClusterService> {
    const id = deps.peer.info();
    if (id.listen === null) throw new WparError('EINVAL', '--cluster needs --listen ADDR:PORT: members reach each other on the peer endpoint');
    const client = etcdClient(options);
    try {
      const membership = await Membership.join({
        client, options, journal: deps.journal, log: deps.log,
        self: { name: id.name, address: id.listen, fingerprint: deps.peer.identity.fingerprint },
        load: () => ({ wpars: deps.manager.names().length, active: deps.manager.active().length }),
      });
      const service = new ClusterService(client, membership, new Namespace(client, options.urls), deps, options.urls);
      return service;
    } catch (err) {
      client.close();
      throw err;
    }
  }

  /** This host's name. */
  get name(): string {
    return this.membership.name;
  }

  /** Trust for the peer endpoint: the live member with that fingerprint (C1). */
  byFingerprint(fp: string): Peer | undefined {
    return this.membership.byFingerprint(fp);
  }

  /** The live member of that name, as a peer (moves of a drain go to members). */
  byName(name: string): Peer | undefined {
    return this.membership.byName(name);
  }

  /**
   * Gives the service the daemon's mover (drains move WPARs live, C7), and makes every move of a
   * cluster WPAR hand its ownership over in etcd (C4): only to another `up` member, by transaction
   * just before the commit (the epoch rises, so the arrival starts it with the new `WPAR_EPOCH`),
   * given back by another if the move then rolls back.
   */
  useMover(mover: Mover): void {
    this.#mover = mover;
    mover.useOwnership({
      check: async (name, to) => {
        const record = await this.namespace.get(name);
        if (!record) return; // outside the namespace: it may go to any trusted peer
        if (record.host !== this.name) throw new WparError('EPERM', `${name}: ${this.name} is not its owner in the cluster (${record.host} is, epoch ${record.epoch}); not moved`);
        const target = (await this.membership.live()).find((h) => h.name === to);
        if (!target || target.state !== 'up') {
          throw new WparError('EINVAL', `${name}: ${to} is not ${target ? 'up (it is draining)' : 'a live member of the cluster'}; a cluster WPAR moves only to another up member (wpar hosts); not moved`);
        }
      },
      handOver: async (name, to) => {
        const record = await this.namespace.get(name);
        if (!record) return null;
        const handed = await this.namespace.transfer(record, to);
        return async () => { await this.namespace.transfer(handed, this.name); };
      },
    });
  }

  /** Serves one trusted peer connection: a cluster call, a replica, or else `other` (a move). */
  dispatch(socket: TLSSocket, from: Peer, other: (socket: TLSSocket, from: Peer) => void): void {
    const member = (p: Peer): boolean => this.membership.byFingerprint(p.fingerprint)?.name === p.name;
    dispatch(socket, from, {
      member,
      serve: (call, caller) => {
        if (!this.#app) throw new WparError('EAGAIN', 'this host is still starting');
        return answerCall(this.#app, caller, call);
      },
      replica: (s, f) => void receiveReplica(s, f, {
        home: this.#deps.home, journal: this.#deps.journal, member,
        record: (name) => this.namespace.get(name),
        // Members trust each other's identities (C1): the sending member's, as well as this home's trust.
        checkSignature: (manifest, label) => trustingAlso(this.#deps.peer, { name: f.name, fingerprint: f.fingerprint, address: f.address ?? '' }).checkSignature(manifest, label),
      }),
      stream: (wire, first, caller) => serveStream(wire, first, caller, { member: this.membership.byFingerprint(caller.fingerprint)?.name === caller.name, socketPath: this.#socketPath() }),
      other,
    });
  }

  /**
   * C5: copies a scheduled checkpoint of `image.name` to `count` other up hosts and records it — for
   * a WPAR of the namespace this host owns; one outside it keeps its images here only (undefined).
   */
  async replicate(image: ReplicaImage & { readonly size: number }, count: number): Promise<Replicated | undefined> {
    if (!(await this.namespace.get(image.name))) return undefined;
    return replicate({
      self: this.name, identity: this.#deps.peer.identity, journal: this.#deps.journal,
      live: () => this.membership.live(), record: (n) => this.namespace.get(n), records: this.replicas,
    }, image, count);
  }

  /**
   * The epoch a scheduled checkpoint of `name` is taken at: its epoch in etcd (EPERM if another host
   * owns it: no checkpoint), or 1 for a WPAR outside the namespace.
   */
  async checkpointEpoch(name: string): Promise<number> {
    const r = await this.namespace.get(name);
    if (!r) return 1;
    if (r.host !== this.name) throw new WparError('EPERM', `${name}: ${this.name} is not its owner in the cluster (${r.host} is, epoch ${r.epoch}); not checkpointed`);
    return r.epoch;
  }

  /**
   * C6, once the daemon has recovered its WPARs and before any autostart: first removes this host's
   * stale copies of failover WPARs (it may have been lost and they failed over), then starts
   * failing over the failover WPARs of lost hosts (restarting them with `restart`), and reconciles
   * again at each re-join.
   */
  async startFailover(restart: (name: string, dir: string, signer: KnownHost) => Promise<WparInfo>): Promise<void> {
    const failover = new Failover({
      self: this.name, home: this.#deps.home, manager: this.#deps.manager, namespace: this.namespace, records: this.replicas,
      journal: this.#deps.journal, log: this.#deps.log, restart,
      liveNames: async () => new Set((await this.membership.live()).map((h) => h.name)),
      member: () => !this.membership.lost,
      known: (n) => this.#known(n),
      hostHas: (h, n) => this.#hostHas(h, n),
    });
    this.#failover = failover;
    await this.#reconcile(failover);
    this.membership.listen({
      gone: (host, at) => failover.hostGone(host, at),
      seen: (host) => failover.hostBack(host),
      rejoined: () => { void this.#reconcile(failover).then(() => failover.scan()); },
    });
    failover.start();
  }

  async #reconcile(failover: Failover): Promise<void> {
    try {
      await failover.reconcile();
    } catch (err) {
      this.#deps.log(`cluster: reconciling this host's WPARs with etcd: ${(err as Error).message}`);
    }
  }

  async #hostHas(host: string, name: string): Promise<boolean | undefined> {
    try {
      const a = await this.#call(host, { method: 'GET', path: `/v1/wpars?name=${encodeURIComponent(name)}` });
      return a.status === 200 ? true : a.status === 404 ? false : undefined;
    } catch {
      return undefined;
    }
  }

  async #known(name: string): Promise<KnownHost | undefined> {
    let text: string | null;
    try {
      text = await this.#client.get(KNOWN + name).string();
    } catch (err) {
      throw etcdError(err, `reading the known host ${name}`, this.#urls);
    }
    return text === null ? undefined : parseKnown(KNOWN + name, text) ?? undefined;
  }

  /** Adds `GET /v1/hosts` and keeps the app to run forwarded calls against. */
  routes(app: FastifyInstance): void {
    this.#app = app;
    app.get('/v1/hosts', async () => this.membership.hosts());
    app.post<{ Params: { name: string } }>('/v1/hosts/:name/drain', async (req) => this.#onHost(req, checkSystemName(req.params.name), 'drain'));
    app.post<{ Params: { name: string } }>('/v1/hosts/:name/undrain', async (req) => this.#onHost(req, checkSystemName(req.params.name), 'undrain'));
  }

  /**
   * The server's `forward` hook: an answer for a request this host does not serve itself (the WPAR
   * is elsewhere, or the request is about the whole cluster), or undefined to run it here.
   */
  async forward(req: FastifyRequest): Promise<Answer | undefined> {
    const route = req.routeOptions.url ?? '';
    if (req.headers[FORWARDED] !== undefined) return this.#served(req, route);
    if (route === '/v1/wpars' && req.method === 'GET') {
      const q = (req.query as { name?: string | string[] }).name;
      return json(200, await this.list((q === undefined ? [] : ([] as string[]).concat(q)).map(checkName)));
    }
    if (route === '/v1/wpars' && req.method === 'POST') return this.#create((req.body ?? {}) as CreateRequest & { host?: unknown });
    if (!route.startsWith('/v1/wpars/:name')) return undefined;
    const name = checkName((req.params as { name: string }).name);
    const record = await this.namespace.get(name);
    if (!record) {
      if (this.#deps.manager.has(name)) return undefined; // defined here before this host joined
      throw new WparError('ENOENT', `${name}: no such WPAR in the cluster`);
    }
    if (record.host === this.name) {
      if (req.method !== 'DELETE') return undefined;
      const force = (req.query as { force?: string }).force;
      // A record whose WPAR this host no longer has (a crash mid-drain) can still be removed.
      if (this.#deps.manager.has(name)) await this.#deps.manager.remove(name, { force: force !== undefined && force !== '0' && force !== 'false' });
      await this.namespace.release(name, this.name);
      return { status: 204, contentType: 'text/plain', body: '' };
    }
    if (req.method === 'DELETE' && wantsFailover(record.definition) && !this.membership.byName(record.host)
      && !(await this.membership.live()).some((h) => h.name === record.host)) {
      // C6: a failover WPAR lost with its host (no replica) can be removed from the cluster with -F;
      // its host, back, then removes its copy (reconcile).
      const force = (req.query as { force?: string }).force;
      if (force === undefined || force === '0' || force === 'false') throw new WparError('EAGAIN', `${name}: its host ${record.host} is lost; rmwpar -F removes it from the cluster (its host removes its copy when it comes back)`);
      await this.namespace.release(name, record.host);
      this.#deps.journal.record({ type: 'cluster.lost.removed', time: Date.now(), name, host: record.host, epoch: record.epoch });
      return { status: 204, contentType: 'text/plain', body: '' };
    }
    const follows = /[?&]follow=(?!0|false)/.test(req.url);
    // Streams are relayed (relay.ts): a checkpoint (the image directory is the owner's), a followed log.
    if (route === '/v1/wpars/:name/checkpoint' || (route === '/v1/wpars/:name/logs' && follows)) return this.#relay(record.host, req);
    if (follows) throw new WparError('EINVAL', `${name} is on host ${record.host}: follow it there (only a log is followed across hosts)`);
    const method = req.method as Call['method'];
    const answer = await this.#call(record.host, { method, path: req.url, ...(req.body !== undefined && req.body !== null && { body: req.body }) });
    if (method === 'DELETE' && answer.status === 204) await this.namespace.release(name, record.host);
    return answer;
  }

  /**
   * The epoch a start of `name` here runs with (`WPAR_EPOCH`, C4), read from etcd at that moment:
   * undefined for a WPAR outside the namespace; EPERM if etcd names another owner (nothing starts).
   */
  async epochOf(name: string): Promise<number | undefined> {
    const r = await this.namespace.get(name);
    if (!r) return undefined;
    if (r.host !== this.name) throw new WparError('EPERM', `${name}: ${this.name} is not its owner in the cluster (${r.host} is, epoch ${r.epoch}); not started`);
    return r.epoch;
  }

  /**
   * `restartwpar` here (C3): the name claimed for this host first ({@link claimForRestart}); a
   * draining host places nothing new (C7), so there it is refused (EBUSY), as `mkwpar --host`.
   */
  async claimHere(definition: WparDefinition, imageEpoch: number | undefined): Promise<() => Promise<void>> {
    if (this.membership.state === 'draining') throw new WparError('EBUSY', `${definition.name}: host ${this.name} is draining: nothing new is placed there; not restarted`);
    return claimForRestart(this.namespace, this.name, definition, imageEpoch);
  }

  /** `wpar drain HOST` / `wpar undrain HOST`: done by that host itself (forwarded there if need be). */
  async #onHost(req: FastifyRequest, host: string, what: 'drain' | 'undrain'): Promise<unknown> {
    if (host !== this.name) {
      if (req.headers[FORWARDED] !== undefined) throw new WparError('EINVAL', `${what} ${host} was sent to ${this.name}`);
      const a = await this.#call(host, { method: 'POST', path: `/v1/hosts/${host}/${what}` });
      if (a.status >= 300) {
        const e = (a.body as { error?: { code?: string; message?: string } }).error;
        throw new WparError((e?.code ?? 'EIO') as WparError['code'], e?.message ?? `host ${host} answered ${a.status}`);
      }
      return a.body;
    }
    if (what === 'undrain') {
      await this.membership.setState('up');
      return { host, state: 'up' };
    }
    return this.#drain();
  }

  /**
   * C7: nothing new is placed here from now on; each active checkpointable WPAR this host owns is
   * handed to the least-loaded other `up` host — ownership first, by transaction (its epoch rises,
   * so the arrival starts it with the new `WPAR_EPOCH`), then the live move; if the move fails the
   * ownership comes back (the epoch rises again) and the WPAR runs on here. The rest are listed.
   */
  async #drain(): Promise<DrainResult> {
    const { manager } = this.#deps;
    await this.membership.setState('draining');
    const moved: DrainResult['moved'][number][] = [];
    const notMoved: DrainResult['notMoved'][number][] = [];
    for (const r of (await this.namespace.all()).filter((x) => x.host === this.name)) {
      const info = manager.has(r.name) ? manager.info(r.name) : null;
      const why = !info ? 'not defined on this host' : !info.checkpointable ? 'not checkpointable' : info.state !== 'A' ? `not active (state ${info.state}): a live move needs it running` : !this.#mover ? 'moves are not available' : null;
      if (why !== null) { notMoved.push({ name: r.name, reason: why }); continue; }
      try {
        const others = (await this.membership.live()).filter((h) => h.state === 'up' && h.name !== this.name).map((h) => h.name);
        const to = await this.#place(others);
        moved.push(await this.#moveTo(r, to));
      } catch (err) {
        notMoved.push({ name: r.name, reason: (err as Error).message });
      }
    }
    this.#deps.journal.record({ type: 'cluster.drained', time: Date.now(), host: this.name, moved: moved.map((m) => m.name), notMoved: notMoved.map((m) => m.name) });
    return { host: this.name, state: 'draining', moved, notMoved };
  }

  /** A live move; the mover hands the ownership over (see {@link useMover}). */
  async #moveTo(record: WparRecord, to: string): Promise<DrainResult['moved'][number]> {
    const result = await this.#mover!.moveOut(record.name, { peer: to });
    const now = await this.namespace.get(record.name);
    return { name: record.name, to, epoch: now?.epoch ?? record.epoch + 1, downtimeMs: result.downtimeMs };
  }

  /**
   * A request forwarded here runs here — but one that changes a WPAR only while etcd, read just
   * now, names this host as its owner (C4: a host acts only with the current epoch). EPERM
   * otherwise, and nothing is done.
   */
  async #served(req: FastifyRequest, route: string): Promise<undefined> {
    if (req.method === 'GET') return undefined;
    let name: string;
    if (route === '/v1/wpars' && req.method === 'POST') name = checkDefinition(((req.body ?? {}) as CreateRequest).definition).name;
    else if (route.startsWith('/v1/wpars/:name')) name = checkName((req.params as { name: string }).name);
    else return undefined;
    const record = await this.namespace.get(name);
    if (!record) {
      if (route === '/v1/wpars') throw new WparError('EPERM', `${name}: not defined in the cluster; not created`);
      return undefined; // defined here before this host joined
    }
    if (record.host !== this.name) throw new WparError('EPERM', `${name}: ${this.name} is not its owner in the cluster (${record.host} is, epoch ${record.epoch}); not done`);
    return undefined;
  }

  /** `lswpar` across the cluster: every host's WPARs, each with its `host`; unknown names → ENOENT. */
  async list(names: readonly string[] = []): Promise<ClusterWparInfo[]> {
    // The namespace and every other live member's list at once: one round trip, not two.
    const [records, replicas, answers] = await Promise.all([
      this.namespace.all(),
      this.replicas.all().catch(() => new Map<string, ReplicaRecord>()),
      Promise.all(this.membership.otherNames().map(async (host): Promise<[string, Answer | Error]> => {
        try {
          return [host, await this.#call(host, { method: 'GET', path: '/v1/wpars' })];
        } catch (err) {
          return [host, err as Error];
        }
      })),
    ]);
    const owners = new Map(records.map((r) => [r.name, r.host]));
    const epochs = new Map(records.map((r) => [r.name, r.epoch]));
    const now = Date.now();
    const withEpoch = (w: WparInfo, host: string): ClusterWparInfo => {
      const owned = owners.get(w.name) === host;
      const epoch = owned ? epochs.get(w.name) : undefined;
      const rep = owned ? replicas.get(w.name) : undefined;
      return {
        ...w, host, ...(epoch !== undefined && { epoch }),
        ...(rep && { checkpoint: { epoch: rep.epoch, seq: rep.seq, time: rep.time, ageSec: Math.max(0, Math.round((now - rep.time) / 1000)), size: rep.size, hosts: rep.hosts } }),
      };
    };
    const all: ClusterWparInfo[] = this.#deps.manager.list().map((w) => withEpoch(w, this.name));
    const answered = new Set<string>();
    for (const [host, a] of answers) {
      if (a instanceof Error || a.status !== 200 || !Array.isArray(a.body)) continue;
      answered.add(host);
      // Its cluster WPARs, and those it has outside the namespace (defined before it joined, wparexec's).
      for (const w of a.body as WparInfo[]) if (owners.get(w.name) === host || !owners.has(w.name)) all.push(withEpoch(w, host));
    }
    // C6: a failover WPAR whose host is lost is listed B with the reason (until another host has it).
    const live = new Set([this.name, ...this.membership.otherNames()]);
    const listed = new Set(all.map((w) => w.name));
    for (const r of records) {
      if (live.has(r.host) || !wantsFailover(r.definition) || listed.has(r.name)) continue;
      all.push(lostInfo(r, replicas.has(r.name) && replicas.get(r.name)!.hosts.length > 0, now));
    }
    for (const host of new Set(records.map((r) => r.host))) {
      if (host === this.name || answered.has(host)) continue;
      const a = answers.find(([h]) => h === host)?.[1];
      const reason = a === undefined ? 'not a live member' : a instanceof Error ? a.message : `answered ${a.status}`;
      this.#deps.journal.record({ type: 'cluster.list.unreachable', time: Date.now(), host, reason });
    }
    all.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    if (names.length === 0) return all;
    return names.map((n) => {
      const w = all.find((x) => x.name === n);
      if (w) return w;
      const owner = owners.get(n);
      throw new WparError(owner ? 'EAGAIN' : 'ENOENT', owner ? `${n}: its host ${owner} does not answer` : `${n}: no such WPAR in the cluster`);
    });
  }

  /** Leaves the cluster (the host record goes at once) and closes the etcd client. */
  async close(): Promise<void> {
    await this.#failover?.close();
    await this.membership.close();
    this.#client.close();
  }

  /**
   * `mkwpar` in a cluster (C3): the name is claimed in etcd first (one transaction: of two
   * concurrent claims exactly one wins), then the WPAR is created on its host; if that fails, the
   * claim is released. The host is `--host`, or else the least-loaded `up` host.
   */
  async #create(body: CreateRequest & { host?: unknown }): Promise<Answer | undefined> {
    const definition = checkDefinition(body.definition);
    if (body.transient === true) {
      // wparexec: a transient WPAR stays on this host and out of the namespace, but not under a taken name.
      if (await this.namespace.get(definition.name)) throw new WparError('EEXIST', `${definition.name}: the name is taken in the cluster`);
      return undefined;
    }
    const live = await this.membership.live();
    let host: string;
    if (body.host !== undefined) {
      host = checkSystemName(body.host);
      const h = live.find((x) => x.name === host);
      if (!h) throw new WparError('ENOENT', `host ${host} is not a live member of the cluster`);
      if (h.state !== 'up') throw new WparError('EBUSY', `host ${host} is ${h.state}: nothing new is placed there`);
    } else {
      host = await this.#place(live.filter((h) => h.state === 'up').map((h) => h.name));
    }
    const claimed = await this.namespace.claim(definition, host);
    if (host === this.name) {
      const { manager } = this.#deps;
      try {
        await manager.create(definition, false);
      } catch (err) {
        await this.namespace.release(definition.name, host).catch(() => {});
        throw err;
      }
      // A WPAR that fails to start stays defined (state B, with the reason), as on one system.
      if (body.start) await manager.start(definition.name);
      return json(201, { ...manager.info(definition.name), host, epoch: claimed.epoch });
    }
    let answer: Answer;
    try {
      answer = await this.#call(host, { method: 'POST', path: '/v1/wpars', body: { definition, ...(body.start === true && { start: true }) } });
    } catch (err) {
      await this.namespace.release(definition.name, host).catch(() => {});
      throw err;
    }
    if (answer.status !== 201) {
      await this.namespace.release(definition.name, host).catch(() => {});
      return answer;
    }
    return json(201, { ...(answer.body as WparInfo), host, epoch: claimed.epoch });
  }

  /** The least-loaded of `up` hosts: the fewest WPARs defined there, then the name. */
  async #place(up: readonly string[]): Promise<string> {
    if (up.length === 0) throw new WparError('EAGAIN', 'no host of the cluster is up to place it on');
    const count = new Map(up.map((h) => [h, 0]));
    for (const r of await this.namespace.all()) if (count.has(r.host)) count.set(r.host, count.get(r.host)! + 1);
    return [...count.entries()].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))[0]![0];
  }

  /** A request whose answer is a stream, relayed from `host` as it comes (relay.ts). */
  async #relay(host: string, req: FastifyRequest): Promise<Answer> {
    const peer = this.membership.byName(host) ?? await this.membership.peer(host);
    const accept = req.headers.accept;
    return openStream(this.#deps.peer.identity, peer, {
      method: req.method === 'POST' ? 'POST' : 'GET', path: req.url,
      ...(accept !== undefined && { accept }), ...(req.body !== undefined && req.body !== null && { body: req.body }),
    });
  }

  /** The control socket this host's own relayed requests go to, once it serves. */
  #socketPath(): string | null {
    const a = this.#app?.server.address();
    return typeof a === 'string' ? a : null;
  }

  async #call(host: string, call: Call): Promise<Answer> {
    const peer = this.membership.byName(host) ?? await this.membership.peer(host);
    return callPeer(this.#deps.peer.identity, peer, call);
  }
}

/** `lswpar`'s line for a failover WPAR lost with its host: `B`, with the reason (C6). */
function lostInfo(r: WparRecord, replica: boolean, now: number): ClusterWparInfo {
  return {
    name: r.name, state: 'B', cid: null, phase: null, checkpointable: r.definition.checkpointable, denials: [], autostart: r.definition.autostart,
    definition: r.definition, root: '', isolation: null, isolationMissing: [], unenforcedLimits: [], pid: null, startedAt: null,
    lastExit: { code: null, signal: null, at: now, reason: lostReason(r.host, replica) }, transient: false, host: r.host, epoch: r.epoch,
  };
}

function json(status: number, body: unknown): Answer {
  return { status, contentType: 'application/json; charset=utf-8', body };
}
