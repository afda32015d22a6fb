/**
 * The trusted peers of a home (M2), in the table `peers` of the home's database (`HOME/corral.db`,
 * through its own connection: the daemon's store keeps the WPARs' tables).
 * @module
 */
import { DatabaseSync } from 'node:sqlite';
import { WparError } from '../kernel/errno.ts';
import { WPAR_NAME_PATTERN } from '../runtime/definition.ts';
import { parseFingerprint, type Fingerprint } from './fingerprint.ts';

/** One trusted peer. */
export interface Peer {
  /** Its system name (as its `wpar identity` prints it). */
  readonly name: string;
  readonly fingerprint: Fingerprint;
  /** `ADDR:PORT` of its peer endpoint, or null (trusted for images only). */
  readonly address: string | null;
}

/** Checks a system name against the kernel's name rule. */
export function checkSystemName(name: unknown): string {
  if (typeof name !== 'string' || !WPAR_NAME_PATTERN.test(name)) {
    throw new WparError('EINVAL', `bad system name ${JSON.stringify(String(name))}: 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit`);
  }
  return name;
}

/** `ADDR:PORT` split and checked (an IPv6 address in brackets: `[::1]:7000`). */
export function parseAddress(text: unknown): { host: string; port: number; text: string } {
  const s = typeof text === 'string' ? text : '';
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) throw new WparError('EINVAL', `bad address ${JSON.stringify(String(text))}: expected ADDR:PORT, e.g. 10.0.0.2:7070`);
  return { host: m[1] ?? m[2]!, port, text: s };
}

/** The peers table. Synchronous: each call is one short statement. */
export class PeerStore {
  readonly #db: DatabaseSync;

  constructor(databasePath: string) {
    this.#db = new DatabaseSync(databasePath, { timeout: 5000 });
    this.#db.exec(`CREATE TABLE IF NOT EXISTS peers (
      name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL UNIQUE, address TEXT) STRICT`);
  }

  /** Every peer, by name. */
  list(): Peer[] {
    return (this.#db.prepare('SELECT name, fingerprint, address FROM peers ORDER BY name').all() as unknown as Peer[])
      .map((r) => ({ name: r.name, fingerprint: r.fingerprint, address: r.address ?? null }));
  }

  /** The peer of that name, or undefined. */
  get(name: string): Peer | undefined {
    return this.list().find((p) => p.name === name);
  }

  /** The peer with that fingerprint, or undefined. */
  byFingerprint(fp: string): Peer | undefined {
    return this.list().find((p) => p.fingerprint === fp);
  }

  /** `wpar peer add`: EEXIST if the name or the fingerprint is already trusted. */
  add(input: { name: unknown; fingerprint: unknown; address?: unknown }): Peer {
    const name = checkSystemName(input.name);
    const fingerprint = parseFingerprint(input.fingerprint);
    const address = input.address === undefined || input.address === null ? null : parseAddress(input.address).text;
    const clash = this.list().find((p) => p.name === name || p.fingerprint === fingerprint);
    if (clash) {
      const what = clash.name === name ? `a peer named ${name} is already trusted` : `fingerprint ${fingerprint} is already trusted as ${clash.name}`;
      throw new WparError('EEXIST', `${what}; remove it first (wpar peer rm ${clash.name})`);
    }
    this.#db.prepare('INSERT INTO peers (name, fingerprint, address) VALUES (?, ?, ?)').run(name, fingerprint, address);
    return { name, fingerprint, address };
  }

  /** `wpar peer rm`: ENOENT if unknown. */
  remove(name: string): void {
    const r = this.#db.prepare('DELETE FROM peers WHERE name = ?').run(checkSystemName(name));
    if (r.changes !== 1) throw new WparError('ENOENT', `${name}: no such peer`);
  }

  /** Closes the connection. */
  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}
