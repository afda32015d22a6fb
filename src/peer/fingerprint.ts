/**
 * Certificate fingerprints: how a Corral system names another's identity (M1, M2). A fingerprint is
 * `sha256:` and the 64 lower-case hex digits of the SHA-256 of the certificate's DER bytes — the
 * same digest `openssl x509 -fingerprint -sha256` prints (with colons and in upper case there).
 * @module
 */
import { createHash } from 'node:crypto';
import { WparError } from '../kernel/errno.ts';

/** A fingerprint in its canonical form: `sha256:<64 lower-case hex>`. */
export type Fingerprint = `sha256:${string}`;

/** The fingerprint of a certificate's DER bytes. */
export function fingerprintOf(der: Uint8Array): Fingerprint {
  return `sha256:${createHash('sha256').update(der).digest('hex')}`;
}

/**
 * Parses a fingerprint as a user may type it: `sha256:HEX`, bare HEX, or OpenSSL's `AB:CD:...` form.
 * Throws EINVAL saying what a fingerprint looks like.
 */
export function parseFingerprint(text: unknown): Fingerprint {
  const raw = typeof text === 'string' ? text.trim() : '';
  const hex = raw.replace(/^sha256:/i, '').replaceAll(':', '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new WparError('EINVAL', `bad fingerprint ${JSON.stringify(String(text))}: expected sha256: and 64 hex digits (as wpar identity prints it)`);
  }
  return `sha256:${hex}`;
}
