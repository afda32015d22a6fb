/**
 * The console's view of a cluster (W2: "in a cluster, the host of each, and the hosts"): the other
 * hosts' WPARs and the hosts themselves. This host's WPARs come live from its own journal; the
 * others' have no event stream here, so while a page is open they are read every few seconds
 * through the daemon's own control API (`GET /v1/wpars`, which asks every member, and
 * `GET /v1/hosts`) and sent to the pages only when something changed.
 * @module
 */
import type { FastifyInstance } from 'fastify';
import type { WparInfo } from '../daemon/protocol.ts';

/** One host as `wpar hosts --json` shows it. */
export interface HostRow {
  readonly name: string;
  readonly address: string;
  readonly state: string;
  readonly wpars: number;
  readonly ttl: number;
}

/** What a page is told of the cluster. */
export interface ClusterSnapshot {
  /** This host's name: rows with another `host` are served by that host. */
  readonly host: string;
  /** Every known host (`up`, `draining` or `lost`). */
  readonly hosts: readonly HostRow[];
  /** The other hosts' WPARs (`usage` unknown here: null). */
  readonly remote: readonly (WparInfo & { readonly host: string; readonly usage: null })[];
  /** Why the last read failed (etcd or a host unreachable), or null. */
  readonly problem: string | null;
}

/** Reads the cluster every `everyMs` while {@link active} says a page is open, and reports changes. */
export class ClusterView {
  readonly #control: FastifyInstance;
  readonly #self: string;
  readonly #changed: (snapshot: ClusterSnapshot) => void;
  readonly #active: () => boolean;
  readonly #timer: NodeJS.Timeout;
  #snapshot: ClusterSnapshot;
  #key = '';
  #reading = false;

  constructor(options: {
    control: FastifyInstance; host: string; everyMs: number;
    active: () => boolean; changed: (snapshot: ClusterSnapshot) => void;
  }) {
    this.#control = options.control;
    this.#self = options.host;
    this.#changed = options.changed;
    this.#active = options.active;
    this.#snapshot = { host: this.#self, hosts: [], remote: [], problem: null };
    this.#timer = setInterval(() => { if (this.#active()) void this.refresh(); }, options.everyMs);
    this.#timer.unref();
  }

  /** The last snapshot read (a new page gets it at once, and a fresh read is started). */
  get snapshot(): ClusterSnapshot { return this.#snapshot; }

  /** Reads the hosts and the cluster's WPARs now; tells {@link changed} if anything differs. */
  async refresh(): Promise<void> {
    if (this.#reading) return;
    this.#reading = true;
    try {
      const [hosts, wpars] = await Promise.all([
        this.#control.inject({ method: 'GET', url: '/v1/hosts' }),
        this.#control.inject({ method: 'GET', url: '/v1/wpars' }),
      ]);
      const problem = [hosts, wpars].map((r) => (r.statusCode === 200 ? null : errorText(r.body))).find((p) => p !== null) ?? null;
      const next: ClusterSnapshot = {
        host: this.#self,
        hosts: hosts.statusCode === 200 ? (JSON.parse(hosts.body) as HostRow[]) : this.#snapshot.hosts,
        remote: wpars.statusCode === 200
          ? (JSON.parse(wpars.body) as (WparInfo & { host?: string })[])
            .filter((w): w is WparInfo & { host: string } => typeof w.host === 'string' && w.host !== this.#self)
            .map((w) => ({ ...w, usage: null }))
          : this.#snapshot.remote,
        problem,
      };
      const key = JSON.stringify(next);
      this.#snapshot = next;
      if (key !== this.#key) {
        this.#key = key;
        this.#changed(next);
      }
    } catch {
      // The daemon is closing: nothing to report.
    } finally {
      this.#reading = false;
    }
  }

  /** Stops reading. */
  close(): void {
    clearInterval(this.#timer);
  }
}

function errorText(body: string): string {
  try {
    const e = (JSON.parse(body) as { error?: { message?: string; code?: string } }).error;
    return e?.message ? `${e.message}${e.code ? ` (${e.code})` : ''}` : body.slice(0, 200);
  } catch {
    return body.slice(0, 200);
  }
}
