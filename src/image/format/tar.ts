/**
 * The subset of POSIX tar (ustar headers, pax `x` extended headers) that images use: encoding for the
 * writer, strict decoding for the reader. Anything outside the subset is refused, never guessed at.
 * @module
 */
import { isUtf8 } from 'node:buffer';
import { BLOCK, padding } from './format.ts';

/** Entry types an image may contain: regular file, symlink, directory, and the pax header. */
export type TarType = 'file' | 'symlink' | 'dir' | 'pax';

const TYPE_FLAG: Readonly<Record<TarType, number>> = { file: 0x30, symlink: 0x32, dir: 0x35, pax: 0x78 };
const FLAG_TYPE: ReadonlyMap<number, TarType> = new Map(
  Object.entries(TYPE_FLAG).map(([type, flag]) => [flag, type as TarType]),
);
/** Readable names of the type flags a reader refuses, for error messages. */
const REFUSED_FLAGS: ReadonlyMap<number, string> = new Map([
  [0x00, 'an old-style regular file'], [0x31, 'a hard link'], [0x33, 'a character device'],
  [0x34, 'a block device'], [0x36, 'a FIFO'], [0x37, 'a contiguous file'], [0x67, 'a pax global header'],
  [0x4c, 'a GNU long name'], [0x4b, 'a GNU long link'],
]);

/** One entry's metadata as the writer gives it and the reader returns it (after pax is applied). */
export interface TarEntry {
  readonly path: string;
  readonly type: Exclude<TarType, 'pax'>;
  /** Permission bits, 0o7777 at most. */
  readonly mode: number;
  /** Data bytes (0 for directories and symlinks). */
  readonly size: number;
  /** Modification time, whole seconds since the epoch. */
  readonly mtime: number;
  /** The symlink's target; empty for other types. */
  readonly linkpath: string;
  /** Owner and group as the WPAR sees them (S6); 0 when absent (images before ownership was carried). */
  readonly uid?: number;
  readonly gid?: number;
}

/** Largest value of a 7-digit octal field (uid, gid): a larger id is recorded as 0. */
const OCTAL7_MAX = 0o7777777;

/** Largest value of an 11-digit octal field (size, mtime): beyond it a pax record carries the value. */
const OCTAL11_MAX = 0o77777777777;
const MAGIC = Buffer.from('ustar\x0000', 'latin1');

// ---------------------------------------------------------------------------------------------------
// Encoding

/** How an entry's headers will be laid out: computed once, used to size and then write them. */
export interface HeaderPlan {
  /** Total header bytes: 512, or pax header + pax data (padded) + 512. */
  readonly bytes: number;
  readonly pax: Buffer | null;
  readonly name: string;
  readonly prefix: string;
}

function isAscii(s: string): boolean {
  return Buffer.byteLength(s) === s.length;
}

/** Split an ASCII path into ustar's `prefix` (≤155) and `name` (≤100), or null when it cannot be. */
function splitUstar(path: string): { prefix: string; name: string } | null {
  if (path.length <= 100) return { prefix: '', name: path };
  for (let i = Math.min(155, path.length - 2); i > 0; i--) {
    if (path.charCodeAt(i) === 0x2f && path.length - i - 1 <= 100) {
      return { prefix: path.slice(0, i), name: path.slice(i + 1) };
    }
  }
  return null;
}

/** One pax record, `LEN key=value\n`, where LEN counts the whole record including its own digits. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let digits = String(bodyLen).length;
  if (String(bodyLen + digits).length > digits) digits += 1;
  return `${bodyLen + digits}${body}`;
}

/** Plan the headers of `e`: plain ustar when every field fits, else a pax header first. */
export function planHeaders(e: TarEntry): HeaderPlan {
  let records = '';
  const split = isAscii(e.path) ? splitUstar(e.path) : null;
  if (split === null) records += paxRecord('path', e.path);
  if (e.linkpath.length > 100 || !isAscii(e.linkpath)) records += paxRecord('linkpath', e.linkpath);
  if (e.size > OCTAL11_MAX) records += paxRecord('size', String(e.size));
  if (e.mtime < 0 || e.mtime > OCTAL11_MAX) records += paxRecord('mtime', String(e.mtime));
  if (records === '') return { bytes: BLOCK, pax: null, name: split?.name ?? '', prefix: split?.prefix ?? '' };
  const pax = Buffer.from(records);
  return {
    bytes: BLOCK + pax.length + padding(pax.length) + BLOCK,
    pax,
    name: split?.name ?? 'PaxFallback',
    prefix: split?.prefix ?? '',
  };
}

/** Octal digits, zero-padded to `width - 1`, then NUL. Byte stores: much faster than string writes. */
function writeOctal(buf: Buffer, off: number, width: number, value: number): void {
  let v = value;
  for (let i = off + width - 2; i >= off; i--) {
    buf[i] = 0x30 + (v % 8);
    v = Math.floor(v / 8);
  }
  buf[off + width - 1] = 0;
}

/** An ASCII string (the plan guarantees it), truncated to `max` bytes. */
function writeAscii(buf: Buffer, off: number, s: string, max: number): void {
  const n = Math.min(s.length, max);
  for (let i = 0; i < n; i++) buf[off + i] = s.charCodeAt(i);
}

/** Write one 512-byte ustar header at `off` (the block must be zeroed by the caller). */
function writeUstar(
  buf: Buffer, off: number, type: TarType, name: string, prefix: string,
  mode: number, size: number, mtime: number, linkpath: string, uid = 0, gid = 0,
): void {
  writeAscii(buf, off, name, 100);
  writeOctal(buf, off + 100, 8, mode);
  writeOctal(buf, off + 108, 8, uid > OCTAL7_MAX ? 0 : uid);
  writeOctal(buf, off + 116, 8, gid > OCTAL7_MAX ? 0 : gid);
  writeOctal(buf, off + 124, 12, size > OCTAL11_MAX ? 0 : size);
  writeOctal(buf, off + 136, 12, mtime < 0 || mtime > OCTAL11_MAX ? 0 : mtime);
  buf[off + 156] = TYPE_FLAG[type];
  if (linkpath.length <= 100 && isAscii(linkpath)) writeAscii(buf, off + 157, linkpath, 100);
  for (let i = 0; i < MAGIC.length; i++) buf[off + 257 + i] = MAGIC[i]!;
  writeOctal(buf, off + 329, 8, 0); // devmajor
  writeOctal(buf, off + 337, 8, 0); // devminor
  writeAscii(buf, off + 345, prefix, 155);
  let sum = 8 * 0x20; // the checksum field counts as spaces
  for (let i = off, end = off + BLOCK; i < end; i++) if (i < off + 148 || i >= off + 156) sum += buf[i]!;
  writeOctal(buf, off + 148, 7, sum);
  buf[off + 155] = 0x20;
}

/** Write the planned headers of `e` at `off`; the `plan.bytes` bytes there must be zeroed. */
export function writeHeaders(buf: Buffer, off: number, e: TarEntry, plan: HeaderPlan): void {
  if (plan.pax !== null) {
    writeUstar(buf, off, 'pax', 'PaxHeader', '', 0o644, plan.pax.length, Math.max(0, Math.min(e.mtime, OCTAL11_MAX)), '');
    plan.pax.copy(buf, off + BLOCK);
    off += BLOCK + plan.pax.length + padding(plan.pax.length);
  }
  writeUstar(buf, off, e.type, plan.name, plan.prefix, e.mode, e.size, e.mtime, e.linkpath, e.uid, e.gid);
}

/** The headers of `e` as a new buffer. */
export function encodeHeaders(e: TarEntry): Buffer {
  const plan = planHeaders(e);
  const buf = Buffer.alloc(plan.bytes);
  writeHeaders(buf, 0, e, plan);
  return buf;
}

// ---------------------------------------------------------------------------------------------------
// Decoding

/** A decoded header block, before pax records are applied. */
export interface RawHeader {
  readonly type: TarType;
  readonly path: string;
  readonly mode: number;
  readonly size: number;
  readonly mtime: number;
  readonly linkpath: string;
  readonly uid: number;
  readonly gid: number;
}

/** Overrides from a pax extended header. */
export interface PaxFields {
  path?: string;
  linkpath?: string;
  size?: number;
  mtime?: number;
}

/** Whether a block is all zeros (an end-of-archive marker). */
export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** An octal field: digits, then only NULs or spaces. Returns null when malformed. */
function readOctal(block: Buffer, off: number, width: number): number | null {
  let value = 0;
  let i = off;
  const end = off + width;
  for (; i < end; i++) {
    const c = block[i]!;
    if (c < 0x30 || c > 0x37) break;
    value = value * 8 + (c - 0x30);
  }
  if (i === off) return null;
  for (; i < end; i++) if (block[i] !== 0 && block[i] !== 0x20) return null;
  return value;
}

/** A NUL-terminated (or full-width) string field, which must be valid UTF-8. */
function readString(block: Buffer, off: number, width: number): string | null {
  let end = off;
  while (end < off + width && block[end] !== 0) end++;
  const bytes = block.subarray(off, end);
  return isUtf8(bytes) ? bytes.toString('utf8') : null;
}

/** Decode a non-zero header block; returns the reason as a string when it is not a valid header. */
export function decodeHeader(block: Buffer): RawHeader | string {
  const stored = readOctal(block, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  if (stored !== sum) return 'bad tar header checksum';
  if (!block.subarray(257, 265).equals(MAGIC)) return 'not a POSIX ustar header';
  const flag = block[156]!;
  const type = FLAG_TYPE.get(flag);
  if (type === undefined) {
    return `entry is ${REFUSED_FLAGS.get(flag) ?? `of unknown tar type 0x${flag.toString(16)}`}, which images never contain`;
  }
  const name = readString(block, 0, 100);
  const prefix = readString(block, 345, 155);
  const linkpath = readString(block, 157, 100);
  const mode = readOctal(block, 100, 8);
  const size = readOctal(block, 124, 12);
  const mtime = readOctal(block, 136, 12);
  const uid = readOctal(block, 108, 8);
  const gid = readOctal(block, 116, 8);
  if (name === null || prefix === null || linkpath === null) return 'a header name is not valid UTF-8';
  if (mode === null || size === null || mtime === null || uid === null || gid === null) return 'a header number is malformed';
  if (mode > 0o7777) return `mode ${mode.toString(8)} out of range`;
  return { type, path: prefix === '' ? name : `${prefix}/${name}`, mode, size, mtime, linkpath, uid, gid };
}

/** Parse pax records strictly; returns the reason as a string when malformed or unexpected. */
export function decodePax(data: Buffer): PaxFields | string {
  const fields: PaxFields = {};
  const seen = new Set<string>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space < 0 || space - pos > 8) return 'malformed pax record';
    const lenText = data.toString('latin1', pos, space);
    if (!/^[1-9][0-9]*$/.test(lenText)) return 'malformed pax record length';
    const end = pos + Number(lenText);
    if (end > data.length || data[end - 1] !== 0x0a) return 'pax record overruns its header';
    const record = data.subarray(space + 1, end - 1);
    const eq = record.indexOf(0x3d);
    if (eq <= 0 || !isUtf8(record)) return 'malformed pax record';
    const key = record.toString('utf8', 0, eq);
    const value = record.toString('utf8', eq + 1);
    if (seen.has(key)) return `pax key ${key} repeated`;
    seen.add(key);
    if (key === 'path' || key === 'linkpath') {
      if (value.includes('\0')) return `pax ${key} contains NUL`;
      fields[key] = value;
    } else if (key === 'size' || key === 'mtime') {
      const pattern = key === 'size' ? /^[0-9]{1,16}$/ : /^-?[0-9]{1,16}$/;
      if (!pattern.test(value) || !Number.isSafeInteger(Number(value))) return `pax ${key} malformed`;
      fields[key] = Number(value);
    } else {
      return `pax key ${JSON.stringify(key)} is not one images use`;
    }
    pos = end;
  }
  return fields;
}
