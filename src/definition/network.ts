/**
 * A WPAR's network definition (S5, `mkwpar -N`): the host's (the default), none (its own network
 * namespace with loopback only), or an address on a host bridge that the daemon sets up (AIX's
 * `mkwpar -N address=`). This module is the one source of the rule for a network definition (parsed
 * from `-N`, checked when a definition arrives from the store, the control API or an image). It does
 * no I/O, so the commands that only parse or show a network load nothing more; the wiring is in
 * `src/runtime/network.ts`.
 * @module
 */

import { WparError } from '../kernel/errno.ts';

/** A WPAR's network definition; a definition without one uses the host's network. */
export type NetworkSpec =
  | { readonly mode: 'host' }
  | { readonly mode: 'none' }
  | {
    readonly mode: 'bridge';
    /** Its IPv4 address, dotted quad. */
    readonly address: string;
    /** The prefix length of its subnet (8..30). */
    readonly prefix: number;
    /** The default gateway, which is also the host bridge's address in the subnet. */
    readonly gateway: string;
    /** The host bridge it is attached to. */
    readonly bridge: string;
  };

/** The bridge `-N address=...` attaches to unless `bridge=` says otherwise. */
export const DEFAULT_BRIDGE = 'corral0';
/** The host network, as a definition without `network` has it. */
export const HOST_NETWORK: NetworkSpec = { mode: 'host' };

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/**
 * Parses a `-N` value: `none`, `host`, or `address=A.B.C.D/LEN[,gateway=G][,bridge=NAME]`. The
 * gateway defaults to the first address of the subnet.
 * @throws WparError EINVAL naming what is wrong.
 */
export function parseNetwork(text: string): NetworkSpec {
  const value = text.trim();
  if (value === 'none' || value === 'host') return { mode: value };
  const fields = new Map<string, string>();
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    if (eq < 0 || !['address', 'gateway', 'bridge'].includes(key)) {
      throw bad(text, `unknown part ${JSON.stringify(part)}; expected none, host or address=A.B.C.D/LEN[,gateway=G][,bridge=NAME]`);
    }
    if (fields.has(key)) throw bad(text, `${key} given twice`);
    fields.set(key, part.slice(eq + 1));
  }
  const address = fields.get('address');
  if (address === undefined) throw bad(text, 'address=A.B.C.D/LEN is required');
  const slash = address.indexOf('/');
  if (slash < 0) throw bad(text, `address ${JSON.stringify(address)} needs a prefix length, e.g. 10.80.0.2/24`);
  const prefix = Number(address.slice(slash + 1));
  const ip = address.slice(0, slash);
  const gateway = fields.get('gateway') ?? fromInt(((toInt(ip, text) & mask(checkPrefix(prefix, text))) >>> 0) + 1);
  return checkNetwork({ mode: 'bridge', address: ip, prefix, gateway, bridge: fields.get('bridge') ?? DEFAULT_BRIDGE });
}

/**
 * Checks a network definition from anywhere (the store, the control API, an image) and returns it as
 * plain data; `undefined` is the host network.
 * @throws WparError EINVAL naming what is wrong.
 */
export function checkNetwork(value: unknown): NetworkSpec {
  if (value === undefined || value === null) return HOST_NETWORK;
  if (typeof value !== 'object') throw bad(String(value), 'must be an object');
  const v = value as Record<string, unknown>;
  if (v['mode'] === 'host' || v['mode'] === 'none') return { mode: v['mode'] };
  if (v['mode'] !== 'bridge') throw bad(JSON.stringify(value), 'mode must be host, none or bridge');
  const { address, prefix, gateway, bridge } = v;
  const shown = `address=${String(address)}/${String(prefix)}`;
  if (typeof address !== 'string' || typeof gateway !== 'string' || typeof bridge !== 'string' || typeof prefix !== 'number') {
    throw bad(shown, 'address, gateway and bridge must be strings and prefix a number');
  }
  checkPrefix(prefix, shown);
  const a = toInt(address, shown);
  const g = toInt(gateway, shown);
  const m = mask(prefix);
  const network = (a & m) >>> 0;
  const broadcast = (network | ~m) >>> 0;
  if (a === network || a === broadcast) throw bad(shown, `${address} is the subnet's ${a === network ? 'network' : 'broadcast'} address`);
  if (((g & m) >>> 0) !== network) throw bad(shown, `gateway ${gateway} is not in ${fromInt(network)}/${prefix}`);
  if (g === a) throw bad(shown, `gateway ${gateway} is the WPAR's own address`);
  if (g === network || g === broadcast) throw bad(shown, `gateway ${gateway} is the subnet's network or broadcast address`);
  if (!IFNAME.test(bridge)) throw bad(shown, `bridge ${JSON.stringify(bridge)}: 1 to 15 of A-Z a-z 0-9 _ . -`);
  return { mode: 'bridge', address, prefix, gateway, bridge };
}

/** How `lswpar -L` shows a network: `host`, `none`, or `10.80.0.2/24 via 10.80.0.1 on corral0`. */
export function formatNetwork(spec: NetworkSpec | undefined): string {
  const n = spec ?? HOST_NETWORK;
  if (n.mode !== 'bridge') return n.mode;
  return `${n.address}/${n.prefix} via ${n.gateway} on ${n.bridge}`;
}

/** Whether a WPAR with this network gets a network namespace of its own. */
export function ownNetworkNamespace(spec: NetworkSpec | undefined): boolean {
  return spec !== undefined && spec.mode !== 'host';
}

function bad(text: string, why: string): WparError {
  return new WparError('EINVAL', `bad network ${JSON.stringify(text)}: ${why}`);
}

function checkPrefix(prefix: number, text: string): number {
  if (!Number.isInteger(prefix) || prefix < 8 || prefix > 30) throw bad(text, 'the prefix length must be a whole number from 8 to 30');
  return prefix;
}

function mask(prefix: number): number {
  return (0xffffffff << (32 - prefix)) >>> 0;
}

function toInt(address: string, text: string): number {
  const parts = address.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255)) {
    throw bad(text, `${JSON.stringify(address)} is not an IPv4 address`);
  }
  return parts.reduce((n, p) => ((n << 8) | Number(p)) >>> 0, 0);
}

function fromInt(n: number): string {
  return [24, 16, 8, 0].map((shift) => (n >>> shift) & 255).join('.');
}
