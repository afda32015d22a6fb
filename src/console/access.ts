/**
 * Access to the console (W1): the home's console token, the session cookie a browser gets for it,
 * and the `Origin` check on every request that changes anything.
 *
 * The cookie's value is an HMAC of the token, so it survives a daemon restart and dies with the
 * token (delete `HOME/console.token` to log every browser out). Its name carries the port: cookies
 * are not separated by port, and two daemons on one host must not overwrite each other's session.
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, openSync, readFileSync, statSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { WparError } from '../kernel/errno.ts';

/** The token file's name inside a home. */
export const TOKEN_FILE = 'console.token';
const TOKEN = /^[A-Za-z0-9_-]{43,}$/;

/**
 * The home's console token: read from `HOME/console.token`, or made (32 random bytes, base64url)
 * and written there with mode 0600 at the first start. A token file others can read is made 0600.
 */
export function consoleToken(home: string, log: (line: string) => void = () => {}): string {
  const path = join(home, TOKEN_FILE);
  try {
    const fd = openSync(path, 'wx', 0o600);
    const token = randomBytes(32).toString('base64url');
    try { writeSync(fd, token + '\n'); } finally { closeSync(fd); }
    return token;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new WparError('EPERM', `cannot create ${path}: ${(err as Error).message}`, { cause: err });
  }
  const mode = statSync(path).mode & 0o777;
  if (mode !== 0o600) {
    chmodSync(path, 0o600);
    log(`${path} was mode ${mode.toString(8).padStart(4, '0')}; made it 0600`);
  }
  const token = readFileSync(path, 'utf8').trim();
  if (!TOKEN.test(token)) throw new WparError('EINVAL', `${path}: not a console token (43 or more base64url characters); remove it to get a new one`);
  return token;
}

/** Checks requests against one token. */
export class Access {
  /** The session cookie's name (`corral_console_PORT`). */
  readonly cookieName: string;
  readonly #token: Buffer;
  readonly #session: Buffer;

  constructor(token: string, port: number) {
    this.cookieName = `corral_console_${port}`;
    this.#token = Buffer.from(token);
    this.#session = Buffer.from(createHmac('sha256', token).update('corral console session v1').digest('base64url'));
  }

  /** Whether `candidate` is the token (constant time). */
  isToken(candidate: unknown): boolean {
    return typeof candidate === 'string' && same(Buffer.from(candidate), this.#token);
  }

  /** The `Set-Cookie` value that logs a browser in: HttpOnly, SameSite=Strict, the whole site. */
  sessionCookie(): string {
    return `${this.cookieName}=${this.#session.toString()}; HttpOnly; SameSite=Strict; Path=/`;
  }

  /**
   * How a request is authenticated: `bearer` (an `Authorization: Bearer TOKEN` header), `cookie`
   * (the session cookie), or `null` (neither: answer 401 and show nothing).
   */
  authenticate(headers: { authorization?: string | undefined; cookie?: string | undefined }): 'bearer' | 'cookie' | null {
    const auth = headers.authorization;
    if (auth !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      return m && this.isToken(m[1]) ? 'bearer' : null;
    }
    const value = cookieValue(headers.cookie, this.cookieName);
    return value !== undefined && same(Buffer.from(value), this.#session) ? 'cookie' : null;
  }
}

/**
 * Why a request that changes something may not act, or `null` when it may. A browser always sends
 * `Origin` on a POST: it must be this console's own origin (`http://HOST` as the browser addressed
 * it), and `Sec-Fetch-Site`, where sent, must say same-origin. A client without `Origin` (curl,
 * Prometheus) may act only with the Bearer token, which no other site's page can attach.
 */
export function refuseChange(how: 'bearer' | 'cookie', headers: { origin?: string | undefined; host?: string | undefined; 'sec-fetch-site'?: string | string[] | undefined }): string | null {
  const origin = headers.origin;
  const site = headers['sec-fetch-site'];
  if (origin === undefined) return how === 'bearer' && site === undefined ? null : 'a change needs this console\'s Origin header';
  if (headers.host === undefined || origin !== `http://${headers.host}`) return `a change from origin ${origin} is not allowed: only this console's own page may act`;
  if (site !== undefined && site !== 'same-origin') return `a change from a ${String(site)} page is not allowed`;
  return null;
}

function same(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The value of cookie `name` in a `Cookie` header (RFC 6265 syntax: `a=1; b=2`). */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
