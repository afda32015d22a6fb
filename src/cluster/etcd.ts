/**
 * The connection to etcd: `wpard --cluster URL[,URL...] [--etcd-ca F [--etcd-cert F --etcd-key F]]
 * [--lease-ttl SEC]` checked into {@link ClusterOptions}, the `etcd3` client made from them, and
 * etcd's errors turned into one-line errors with an errno.
 * @module
 */
import { readFileSync } from 'node:fs';
import { Etcd3, GRPCDeadlineExceededError, GRPCUnavailableError, type IOptions } from 'etcd3';
import { WparError } from '../kernel/errno.ts';

/** The lease TTL when `--lease-ttl` is not given (C1). */
export const DEFAULT_LEASE_TTL = 10;
/** How long one etcd call may take before it fails (a stuck member must not stall a command). */
export const CALL_MS = 3000;

/** How to reach the cluster's etcd. */
export interface ClusterOptions {
  /** Client URLs of etcd members (`http://` or, with TLS, `https://`). */
  readonly urls: readonly string[];
  /** Seconds of the host's lease (C1): a host that has not renewed for that long is lost. */
  readonly leaseTtl: number;
  /**
   * Milliseconds without an acknowledged renewal after which this host kills its `--failover` WPARs
   * (C4), less than the TTL; absent: {@link parseFenceAfter}'s default.
   */
  readonly fenceAfterMs?: number;
  /** TLS to etcd: the CA that signed the members' certificates, PEM. */
  readonly ca?: Buffer;
  /** TLS client certificate and key, PEM (both or neither). */
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

/** The flags as `wpard` received them. */
export interface ClusterFlags {
  readonly cluster: string;
  readonly leaseTtl?: string;
  readonly fenceAfter?: string;
  readonly etcdCa?: string;
  readonly etcdCert?: string;
  readonly etcdKey?: string;
}

function readPem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new WparError(e.code === 'ENOENT' ? 'ENOENT' : e.code === 'EACCES' ? 'EACCES' : 'EIO', `${flag} ${path}: cannot read it: ${e.message}`, { cause: err });
  }
}

/** Checks `wpard`'s cluster flags (EINVAL naming the flag; ENOENT/EACCES for an unreadable file). */
export function parseClusterFlags(flags: ClusterFlags): ClusterOptions {
  const urls = flags.cluster.split(',').map((u) => u.trim());
  for (const u of urls) {
    let url: URL | null = null;
    try { url = new URL(u); } catch { /* below */ }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.port === '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.username !== '') {
      throw new WparError('EINVAL', `--cluster: bad etcd client URL ${JSON.stringify(u)}: expected http://ADDR:PORT or https://ADDR:PORT, comma-separated`);
    }
  }
  const ttlText = flags.leaseTtl ?? String(DEFAULT_LEASE_TTL);
  const leaseTtl = /^\d{1,4}$/.test(ttlText) ? Number(ttlText) : NaN;
  if (!(leaseTtl >= 2 && leaseTtl <= 3600)) throw new WparError('EINVAL', `--lease-ttl: bad value ${JSON.stringify(ttlText)}: whole seconds from 2 to 3600`);
  const fenceAfterMs = parseFenceAfter(flags.fenceAfter, leaseTtl);
  if ((flags.etcdCert === undefined) !== (flags.etcdKey === undefined)) throw new WparError('EINVAL', '--etcd-cert and --etcd-key go together');
  if (flags.etcdCert !== undefined && flags.etcdCa === undefined) throw new WparError('EINVAL', '--etcd-cert needs --etcd-ca (the CA of the etcd members)');
  const tls = flags.etcdCa !== undefined;
  const mixed = urls.find((u) => u.startsWith('https:') !== tls);
  if (mixed) throw new WparError('EINVAL', `--cluster ${mixed}: ${tls ? 'with --etcd-ca the URLs are https://' : 'an https:// URL needs --etcd-ca'}`);
  return {
    urls, leaseTtl, fenceAfterMs,
    ...(flags.etcdCa !== undefined && { ca: readPem(flags.etcdCa, '--etcd-ca') }),
    ...(flags.etcdCert !== undefined && { cert: readPem(flags.etcdCert, '--etcd-cert') }),
    ...(flags.etcdKey !== undefined && { key: readPem(flags.etcdKey, '--etcd-key') }),
  };
}

/**
 * `--fence-after SEC` (seconds, up to 3 decimals) in milliseconds: default half the lease TTL; it must
 * be more than 0 and less than the TTL, so that a host kills its failover WPARs before etcd can
 * expire its lease (docs/cluster.md, "Fencing"). EINVAL naming the flag otherwise.
 */
export function parseFenceAfter(text: string | undefined, leaseTtl: number): number {
  if (text === undefined) return leaseTtl * 500;
  const ms = /^\d{1,4}(\.\d{1,3})?$/.test(text) ? Math.round(Number(text) * 1000) : NaN;
  if (!(ms > 0 && ms < leaseTtl * 1000)) {
    throw new WparError('EINVAL', `--fence-after: bad value ${JSON.stringify(text)}: seconds more than 0 and less than the lease TTL (${leaseTtl} s)`);
  }
  return ms;
}

/** Makes the etcd client (nothing is sent until the first call). Every unary call is bounded. */
export function etcdClient(options: ClusterOptions): Etcd3 {
  const config: IOptions = {
    hosts: [...options.urls],
    dialTimeout: CALL_MS,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + CALL_MS }),
    ...(options.ca && {
      credentials: { rootCertificate: options.ca, ...(options.key && { privateKey: options.key }), ...(options.cert && { certChain: options.cert }) },
    }),
  };
  return new Etcd3(config);
}

/** An etcd failure as a one-line error: EAGAIN when etcd cannot be reached (try again), else EIO. */
export function etcdError(err: unknown, what: string, urls: readonly string[]): WparError {
  if (err instanceof WparError) return err;
  const e = err as Error;
  const unreachable = e instanceof GRPCUnavailableError || e instanceof GRPCDeadlineExceededError || /UNAVAILABLE|DEADLINE|circuit|ECONNREFUSED/i.test(e.message ?? '');
  const first = (e.message ?? String(err)).split('\n')[0];
  return new WparError(unreachable ? 'EAGAIN' : 'EIO', `${what}: ${unreachable ? `the cluster's etcd (${urls.join(',')}) cannot be reached` : 'etcd refused it'}: ${first}`, { cause: err });
}
