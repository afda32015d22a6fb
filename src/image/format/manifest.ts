/**
 * The manifest (what an image holds and the SHA-256 of every part) and the checks that the JSON
 * parts of an image read back are what a writer produced.
 * @module
 */
import { arch, hostname, platform, release } from 'node:os';
import { definitionProblem as definitionRulesProblem } from '../../definition/rules.ts';
import type { WparDefinition } from '../../runtime/definition.ts';
import { FORMAT_NAME, PART_NAMES, type FormatVersion } from './format.ts';
import { damaged } from './errors.ts';

/** The system an image was written on. */
export interface SourceSystem {
  readonly hostname: string;
  /** `process.platform`, e.g. `linux`. */
  readonly platform: string;
  /** `process.arch`, e.g. `x64`. */
  readonly arch: string;
  /** The kernel release (`os.release()`). */
  readonly release: string;
  /** The Node.js version that wrote it. */
  readonly node: string;
}

/** Where a part lies in the image stream and the SHA-256 of exactly those bytes. */
export interface PartDigest {
  /** Byte offset of the part's first header block. */
  readonly offset: number;
  /** Length in bytes: headers, data and padding of all its entries. */
  readonly bytes: number;
  /** Lower-case hex SHA-256 of those bytes. */
  readonly sha256: string;
}

/** The root part's digest and what it holds. */
export interface RootPartDigest extends PartDigest {
  /** Entries including the root directory itself. */
  readonly entries: number;
  readonly files: number;
  readonly directories: number;
  readonly symlinks: number;
  /** Sum of the regular files' sizes. */
  readonly dataBytes: number;
}

/** A delta part's digest and what it holds (version 3): the root counts of its entries, and its removals. */
export interface DeltaPartDigest extends RootPartDigest {
  /** Paths in its list of removed paths. */
  readonly removed: number;
}

/** The manifest of an image (the `manifest.json` entry). */
export interface ImageManifest {
  readonly format: typeof FORMAT_NAME;
  readonly version: FormatVersion;
  /** When the image was written, ISO 8601 UTC. */
  readonly created: string;
  /** The WPAR's name, as in the definition. */
  readonly wpar: string;
  readonly source: SourceSystem;
  /** Names of the agents whose state the image holds, sorted; empty for a program that uses none. */
  readonly agents: readonly string[];
  /** In a cluster: the WPAR's ownership epoch when it was checkpointed (C4, a fencing token); absent elsewhere. */
  readonly epoch?: number;
  readonly parts: {
    readonly format: PartDigest;
    readonly definition: PartDigest;
    readonly agents: PartDigest;
    readonly root: RootPartDigest;
    /**
     * Version 3: the deltas after the root, in stream order (the last one written with the WPAR
     * frozen); none when the root did not change while it was copied. Absent in versions 1 and 2.
     */
    readonly deltas?: readonly DeltaPartDigest[];
  };
  /**
   * Version 2: the writing home's signature over the rest of the manifest (M8); absent in version 1
   * and in images written without a signer. See `docs/image-format.md` §5.
   */
  readonly signature?: ImageSignature;
}

/** Who signed an image, and the signature (Ed25519 over {@link signedBytes}). */
export interface ImageSignature {
  /** `sha256:` + hex of the signer's certificate (DER). */
  readonly fingerprint: string;
  /** The signer's certificate, PEM. */
  readonly certificate: string;
  /** The signature, base64. */
  readonly value: string;
}

/** Signs images as they are written: the home's identity. */
export interface ImageSigner {
  readonly fingerprint: string;
  readonly certificate: string;
  /** The signature of `data`, base64, always of the same length for one signer. */
  sign(data: Uint8Array): string;
}

/**
 * The bytes a signature covers: the manifest without its `signature` field, as compact JSON in the
 * manifest's own key order. The manifest holds the SHA-256 of every part, so this covers every byte
 * before the manifest; the trailer's digest covers the manifest entry itself.
 */
export function signedBytes(manifest: ImageManifest): Buffer {
  const { signature: _omitted, ...rest } = manifest;
  return Buffer.from(JSON.stringify(rest));
}

/** This system, as a manifest records it. */
export function sourceSystem(): SourceSystem {
  return { hostname: hostname(), platform: platform(), arch: arch(), release: release(), node: process.version };
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseJson(bytes: Buffer, label: string, part: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw damaged(label, part, 'not valid JSON (image damaged or tampered)');
  }
  if (!isObject(value)) throw damaged(label, part, 'not a JSON object (image damaged or tampered)');
  return value;
}

const HEX64 = /^[0-9a-f]{64}$/;
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

const ROOT_COUNTS = ['entries', 'files', 'directories', 'symlinks', 'dataBytes'];

function checkDigest(v: unknown, counts: readonly string[]): boolean {
  if (!isObject(v) || !isCount(v.offset) || !isCount(v.bytes) || typeof v.sha256 !== 'string') return false;
  if (!HEX64.test(v.sha256)) return false;
  return counts.every((k) => isCount(v[k]));
}

/** Version 3 has a list of deltas (possibly empty); earlier versions have none. */
function checkDeltas(v: unknown, version: FormatVersion): boolean {
  if (version < 3) return v === undefined;
  return Array.isArray(v) && v.every((d) => checkDigest(d, [...ROOT_COUNTS, 'removed']));
}

/** Parse and check the manifest's bytes (already verified against the trailer). */
export function parseManifest(bytes: Buffer, label: string, version: FormatVersion): ImageManifest {
  const m = parseJson(bytes, label, 'manifest');
  if (m.format !== FORMAT_NAME || m.version !== version) {
    throw damaged(label, 'manifest', `format ${String(m.format)} version ${String(m.version)} is not ${FORMAT_NAME} version ${version}`);
  }
  const sig = m.signature;
  if (sig !== undefined && (version < 2 || !isObject(sig) || !['fingerprint', 'certificate', 'value'].every((k) => typeof sig[k] === 'string'))) {
    throw damaged(label, 'manifest', 'the signature does not follow the manifest schema (image damaged or tampered)');
  }
  const src = m.source;
  const parts = m.parts;
  const ok =
    typeof m.created === 'string' && !Number.isNaN(Date.parse(m.created)) &&
    typeof m.wpar === 'string' &&
    isObject(src) && ['hostname', 'platform', 'arch', 'release', 'node'].every((k) => typeof src[k] === 'string') &&
    Array.isArray(m.agents) && m.agents.every((a) => typeof a === 'string') &&
    (m.epoch === undefined || (Number.isSafeInteger(m.epoch) && (m.epoch as number) >= 1)) &&
    isObject(parts) && PART_NAMES.every((p) => checkDigest(parts[p], p === 'root' ? ROOT_COUNTS : [])) &&
    checkDeltas(parts.deltas, version);
  if (!ok) throw damaged(label, 'manifest', 'does not follow the manifest schema (image damaged or tampered)');
  return m as unknown as ImageManifest;
}

/**
 * Check a definition (from a caller or an image); returns the reason it is invalid, or null. The
 * rules are `src/definition/rules.ts` (those the commands and the daemon use; the CPU limit is not
 * bounded by this system's CPUs, which the daemon checks at restart); an image must also carry every
 * field.
 */
export function definitionProblem(d: unknown): string | null {
  if (!isObject(d)) return 'not an object';
  const missing = ['name', 'argv', 'env', 'hostname', 'checkpointable', 'limits', 'autostart'].find((k) => !(k in d));
  if (missing !== undefined) return `${missing} is missing`;
  return definitionRulesProblem(d) ?? null;
}

/** Parse and check the definition part's bytes. */
export function parseDefinition(bytes: Buffer, label: string): WparDefinition {
  const d = parseJson(bytes, label, 'definition');
  const problem = definitionProblem(d);
  if (problem !== null) throw damaged(label, 'definition', `not a valid WPAR definition: ${problem}`);
  return d as unknown as WparDefinition;
}
