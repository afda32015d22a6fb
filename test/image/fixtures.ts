/**
 * Shared helpers for the image tests: temporary directories, a sample definition, tree snapshots,
 * and a builder for hand-made images whose digests are all correct (so that a hostile image is
 * refused for what it contains, not for a checksum).
 * @module
 */
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serialize } from 'node:v8';
import type { WparDefinition } from '../../src/runtime/definition.ts';
import { BLOCK, ENTRY, formatEntryBytes, padding } from '../../src/image/format/format.ts';
import { sourceSystem, type ImageManifest } from '../../src/image/format/manifest.ts';
import { encodeHeaders, type TarEntry } from '../../src/image/format/tar.ts';
import { trailerData, trailerHeader } from '../../src/image/format/trailer.ts';

/** A fresh temporary directory, removed by the returned disposer. */
export function tempDir(prefix = 'corral-image-test-'): { path: string; [Symbol.dispose](): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }) };
}

/** A valid definition. */
export function definition(name = 'web'): WparDefinition {
  return {
    name,
    argv: ['node', 'server.js', '--port', '8080'],
    env: { NODE_ENV: 'production', GREETING: 'grüße' },
    hostname: 'web.example',
    checkpointable: true,
    limits: { memoryBytes: 256 << 20, cpuPercent: 50 },
    autostart: false,
  };
}

/** One line per entry of a tree: path, type, mode, mtime (s), and content digest or link target. */
export function snapshot(root: string): string[] {
  const out: string[] = [];
  const visit = (rel: string) => {
    const abs = rel === '' ? root : join(root, rel);
    const st = lstatSync(abs);
    const mtime = Math.floor(st.mtimeMs / 1000);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) {
      out.push(`${rel} link ${readlinkSync(abs)} ${mtime}`);
    } else if (st.isDirectory()) {
      out.push(`${rel}/ dir ${mode} ${mtime}`);
      for (const name of readdirSync(abs).sort()) visit(rel === '' ? name : `${rel}/${name}`);
    } else {
      const digest = createHash('sha256').update(readFileSync(abs)).digest('hex').slice(0, 16);
      out.push(`${rel} file ${mode} ${mtime} ${st.size} ${digest}`);
    }
  };
  visit('');
  return out;
}

/** One entry of a hand-made image's root part. */
export interface CraftEntry {
  readonly path: string;
  readonly type: TarEntry['type'];
  readonly data?: Buffer;
  readonly linkpath?: string;
  readonly mode?: number;
  /** Overwrite the ustar type flag (e.g. `'3'` for a character device), fixing the checksum. */
  readonly rawType?: string;
  /** Extra pax records (`key=value` pairs) to put before the entry. */
  readonly pax?: Readonly<Record<string, string>>;
}

/** A pax extended header block (and its padded records) carrying `records`. */
function paxHeader(records: Readonly<Record<string, string>>): Buffer {
  const body = Object.entries(records).map(([k, v]) => {
    const rest = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(rest) + 1;
    while (String(len).length + Buffer.byteLength(rest) !== len) len++;
    return `${len}${rest}`;
  }).join('');
  const data = Buffer.from(body);
  const header = retype(encodeHeaders({ path: 'PaxHeader', type: 'file', mode: 0o644, size: data.length, mtime: 0, linkpath: '' }), 'x');
  return Buffer.concat([header, data, Buffer.alloc(padding(data.length))]);
}

/** Set a header block's type flag and recompute its checksum. */
function retype(headers: Buffer, flag: string): Buffer {
  const block = headers.subarray(headers.length - BLOCK);
  block[156] = flag.charCodeAt(0);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block) sum += b;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return headers;
}

function entryBytes(e: TarEntry, data: Buffer, rawType?: string): Buffer {
  const headers = rawType === undefined ? encodeHeaders(e) : retype(encodeHeaders(e), rawType);
  return Buffer.concat([headers, data, Buffer.alloc(padding(data.length))]);
}

/**
 * A complete version-2 image (bytes) whose root part is exactly `root`, with correct digests,
 * counts, manifest and trailer: what a careful attacker would produce. (The root part's rules are
 * the same in version 3; {@link craftImageV3} makes one with deltas.)
 */
export function craftImage(
  root: readonly CraftEntry[], def: WparDefinition = definition(), format: Buffer = formatEntryBytes(2),
): Buffer {
  const mtime = 1_700_000_000;
  const small = (path: string, data: Buffer) =>
    entryBytes({ path, type: 'file', mode: 0o644, size: data.length, mtime, linkpath: '' }, data);
  const parts = {
    format: small(ENTRY.format, format),
    definition: small(ENTRY.definition, Buffer.from(JSON.stringify(def))),
    agents: small(ENTRY.agents, serialize(new Map())),
    root: Buffer.concat(root.map((e) => {
      const data = e.data ?? Buffer.alloc(0);
      const pax = e.pax === undefined ? Buffer.alloc(0) : paxHeader(e.pax);
      return Buffer.concat([pax, entryBytes({
        path: e.path, type: e.type, mode: e.mode ?? (e.type === 'file' ? 0o644 : 0o755),
        size: data.length, mtime, linkpath: e.linkpath ?? '',
      }, data, e.rawType)]);
    })),
  };
  const counts = { entries: root.length, files: 0, directories: 0, symlinks: 0, dataBytes: 0 };
  for (const e of root) {
    if (e.type === 'file') counts.files++;
    else if (e.type === 'dir') counts.directories++;
    else counts.symlinks++;
    counts.dataBytes += e.data?.length ?? 0;
  }
  let offset = 0;
  const digest = (b: Buffer) => {
    const d = { offset, bytes: b.length, sha256: createHash('sha256').update(b).digest('hex') };
    offset += b.length;
    return d;
  };
  // The manifest's version follows the format entry's (a crafted version-1 image is a version-1 one).
  const version = (JSON.parse(format.toString('utf8')) as { version?: unknown }).version;
  const manifest: ImageManifest = {
    format: 'corral-image',
    version: version === 1 ? 1 : 2,
    created: new Date(mtime * 1000).toISOString(),
    wpar: def.name,
    source: sourceSystem(),
    agents: [],
    parts: {
      format: digest(parts.format),
      definition: digest(parts.definition),
      agents: digest(parts.agents),
      root: { ...digest(parts.root), ...counts },
    },
  };
  const manifestEntry = small(ENTRY.manifest, Buffer.from(JSON.stringify(manifest)));
  return Buffer.concat([
    parts.format, parts.definition, parts.agents, parts.root, manifestEntry,
    trailerHeader(), trailerData(createHash('sha256').update(manifestEntry).digest('hex')), Buffer.alloc(2 * BLOCK),
  ]);
}

/** The chunks of `bytes` as an async stream, cut at the given sizes in turn (to test chunk boundaries). */
export async function* chunked(bytes: Buffer, sizes: readonly number[] = [bytes.length]): AsyncGenerator<Buffer> {
  let pos = 0;
  for (let i = 0; pos < bytes.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]!);
    yield bytes.subarray(pos, pos + n);
    pos += n;
  }
}

/** Collect an async stream of chunks into one buffer. */
export async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const all: Buffer[] = [];
  for await (const c of chunks) all.push(Buffer.from(c));
  return Buffer.concat(all);
}
