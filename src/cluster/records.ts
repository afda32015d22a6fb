/**
 * What Corral keeps in etcd (docs/cluster.md §2) and how every record read back is checked before
 * use: etcd is the root of trust, but a record is still parsed field by field, and one that does not
 * pass is ignored, never half used.
 *
 * | key | value | lease |
 * |---|---|---|
 * | `/corral/hosts/NAME` | {@link HostRecord} | the host's lease: gone when the host is |
 * | `/corral/known/NAME` | {@link KnownHost} | none: remembers a host once seen, so a lost one is listed `lost` |
 * | `/corral/wpars/NAME` | {@link WparRecord} | none |
 * | `/corral/replicas/NAME` | {@link ReplicaRecord} | none: the newest complete replica outlives its writer |
 * @module
 */
import { checkDefinition, checkName as checkDefinitionName } from '../daemon/definition-check.ts';
import { parseFingerprint, type Fingerprint } from '../peer/fingerprint.ts';
import { checkSystemName, parseAddress } from '../peer/peers.ts';
import type { WparDefinition } from '../runtime/definition.ts';

/** The prefix of every key. */
export const PREFIX = '/corral/';
/** Live hosts, under their leases. */
export const HOSTS = `${PREFIX}hosts/`;
/** Every host ever seen (no lease). */
export const KNOWN = `${PREFIX}known/`;
/** WPAR definitions and owners. */
export const WPARS = `${PREFIX}wpars/`;

/** The newest complete replica of each WPAR with scheduled checkpoints (C5). */
export const REPLICAS = `${PREFIX}replicas/`;

/** A live host, as it publishes itself under its lease. */
export interface HostRecord {
  readonly name: string;
  /** `ADDR:PORT` of its peer endpoint. */
  readonly address: string;
  /** Its identity; members trust the fingerprints live members publish (C1). */
  readonly fingerprint: Fingerprint;
  /** `up`, or `draining` (nothing new is placed there). */
  readonly state: 'up' | 'draining';
  /** Its load when it last renewed: WPARs defined there and WPARs running there. */
  readonly load: { readonly wpars: number; readonly active: number };
  /** The lease TTL it renews, in seconds. */
  readonly ttl: number;
  /** When it joined (ms since the epoch). */
  readonly since: number;
  /** What it has to run WPARs on (C1); absent in records of hosts from before it was published. */
  readonly capacity?: HostCapacity;
}

/** A host's capacity (C1): its CPUs (`os.availableParallelism()`) and memory (`os.totalmem()`). */
export interface HostCapacity {
  readonly cpus: number;
  readonly memoryBytes: number;
}

/** A host once seen. */
export interface KnownHost {
  readonly name: string;
  readonly address: string;
  readonly fingerprint: Fingerprint;
}

/** One WPAR of the cluster's namespace. */
export interface WparRecord {
  readonly name: string;
  /** The host it is defined on (its owner). */
  readonly host: string;
  readonly definition: WparDefinition;
  /** When it was defined (ms since the epoch). */
  readonly created: number;
  /** The ownership epoch (C4): 1 when defined, raised by every change of owner; `WPAR_EPOCH`. */
  readonly epoch: number;
}

function object(text: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const count = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : null);

/** Parses a host record stored under `key`; null if it is not one (or not that key's). */
export function parseHost(key: string, text: string): HostRecord | null {
  const o = object(text);
  if (!o || key !== HOSTS + String(o.name)) return null;
  try {
    const load = (typeof o.load === 'object' && o.load !== null ? o.load : {}) as Record<string, unknown>;
    const wpars = count(load.wpars);
    const active = count(load.active);
    const ttl = count(o.ttl);
    const since = count(o.since);
    if ((o.state !== 'up' && o.state !== 'draining') || wpars === null || active === null || ttl === null || since === null) return null;
    const capacity = o.capacity === undefined ? undefined : parseCapacity(o.capacity);
    if (capacity === null) return null;
    return {
      name: checkSystemName(o.name), address: parseAddress(o.address).text, fingerprint: parseFingerprint(o.fingerprint),
      state: o.state, load: { wpars, active }, ttl, since, ...(capacity && { capacity }),
    };
  } catch {
    return null;
  }
}

/** A capacity field: both counts whole and positive; null if it is not one. */
function parseCapacity(v: unknown): HostCapacity | null {
  if (typeof v !== 'object' || v === null) return null;
  const c = v as Record<string, unknown>;
  const cpus = count(c.cpus);
  const memoryBytes = count(c.memoryBytes);
  return cpus === null || memoryBytes === null || cpus === 0 || memoryBytes === 0 ? null : { cpus, memoryBytes };
}

/** Parses a known-host record; null if it is not one. */
export function parseKnown(key: string, text: string): KnownHost | null {
  const o = object(text);
  if (!o || key !== KNOWN + String(o.name)) return null;
  try {
    return { name: checkSystemName(o.name), address: parseAddress(o.address).text, fingerprint: parseFingerprint(o.fingerprint) };
  } catch {
    return null;
  }
}

/** Parses a WPAR record; null if it is not one. */
export function parseWpar(key: string, text: string): WparRecord | null {
  const o = object(text);
  if (!o || key !== WPARS + String(o.name)) return null;
  try {
    const definition = checkDefinition(o.definition);
    const created = count(o.created);
    const epoch = count(o.epoch);
    if (definition.name !== o.name || created === null || epoch === null || epoch < 1) return null;
    return { name: definition.name, host: checkSystemName(o.host), definition, created, epoch };
  } catch {
    return null;
  }
}

/**
 * The newest complete replica of a WPAR (C5): written by its owner, in a transaction conditioned on
 * its WPAR record being unchanged, only after every host in `hosts` acknowledged the image.
 */
export interface ReplicaRecord {
  readonly name: string;
  /** The ownership epoch the image was taken under. */
  readonly epoch: number;
  /** The owner's sequence number of the image within its epoch. */
  readonly seq: number;
  /** When the checkpoint completed (ms since the epoch). */
  readonly time: number;
  /** The image's size in bytes. */
  readonly size: number;
  /** The host that wrote (and signed) it. */
  readonly owner: string;
  /** The other hosts holding a verified copy, as `HOME/checkpoints/NAME/EPOCH-SEQ/`. */
  readonly hosts: readonly string[];
}

/** Parses a replica record; null if it is not one. */
export function parseReplica(key: string, text: string): ReplicaRecord | null {
  const o = object(text);
  if (!o || key !== REPLICAS + String(o.name) || !Array.isArray(o.hosts)) return null;
  try {
    const epoch = count(o.epoch);
    const seq = count(o.seq);
    const time = count(o.time);
    const size = count(o.size);
    if (typeof o.name !== 'string' || epoch === null || epoch < 1 || seq === null || time === null || size === null) return null;
    checkDefinitionName(o.name);
    return { name: o.name, epoch, seq, time, size, owner: checkSystemName(o.owner), hosts: o.hosts.map((h) => checkSystemName(h)) };
  } catch {
    return null;
  }
}
