/**
 * `wpard --http ADDR:PORT`: the console's listening address (W1). Kept apart from the server so the
 * daemon parses its flags without loading the console.
 * @module
 */
import { isIP } from 'node:net';
import { WparError } from '../kernel/errno.ts';

/** Where the console listens. */
export interface HttpAddress {
  /** An IP address or a host name; `127.0.0.1` when only `:PORT` was given. */
  readonly host: string;
  /** 0 asks the system for a free port (the address printed at start says which). */
  readonly port: number;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Parses `ADDR:PORT`, `:PORT` or `[IPV6]:PORT`; throws EINVAL saying what is wrong. */
export function parseHttpAddress(spec: string): HttpAddress {
  const bad = (why: string): WparError => new WparError('EINVAL', `--http ${JSON.stringify(spec)}: ${why}; expected ADDR:PORT or :PORT`);
  const colon = spec.lastIndexOf(':');
  if (colon < 0) throw bad('no port');
  let host = spec.slice(0, colon);
  const portText = spec.slice(colon + 1);
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw bad(`port ${JSON.stringify(portText)} is not a number from 0 to 65535`);
  if (host.startsWith('[') && host.endsWith(']')) {
    host = host.slice(1, -1);
    if (isIP(host) !== 6) throw bad(`${host} is not an IPv6 address`);
  } else if (host === '') {
    host = '127.0.0.1';
  } else if (isIP(host) === 0 && !HOSTNAME.test(host)) {
    throw bad(`${JSON.stringify(host)} is neither an IP address nor a host name`);
  } else if (isIP(host) === 6) {
    throw bad('an IPv6 address goes in brackets, e.g. [::1]:8080');
  }
  return { host, port: Number(portText) };
}

/** Whether `host` only reaches this machine. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
