/**
 * Image signatures (M8): every image is signed with the identity of the home that wrote it, and
 * `restartwpar` accepts one signed by this home or by a trusted peer only.
 * @module
 */
import { verify, X509Certificate } from 'node:crypto';
import { WparError } from '../kernel/errno.ts';
import { signedBytes, type ImageManifest, type ImageSigner } from '../image/format/manifest.ts';
import { fingerprintOf } from './fingerprint.ts';
import type { Identity } from './identity.ts';
import type { PeerStore } from './peers.ts';

/** The signer of images written by this home. */
export function imageSigner(identity: Identity): ImageSigner {
  return { fingerprint: identity.fingerprint, certificate: identity.certificate, sign: (data) => identity.sign(data) };
}

/** Who signed an accepted image: `self`, a trusted peer's name, or null (accepted with `--insecure`). */
export type Signer = { readonly kind: 'self' } | { readonly kind: 'peer'; readonly name: string };

/**
 * Checks an image's signature against this home's trust: the certificate's fingerprint must be this
 * home's or a trusted peer's, and the signature must verify over the manifest (which holds every
 * part's SHA-256). Throws EPERM naming what is wrong; the image itself was verified for integrity.
 */
export function checkImageSignature(manifest: ImageManifest, identity: Identity, peers: Pick<PeerStore, 'byFingerprint'>, label: string): Signer {
  const sig = manifest.signature;
  if (!sig) throw new WparError('EPERM', `image ${label}: unsigned (format version ${manifest.version}); restart it with --insecure only if you trust where it came from`);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(sig.certificate);
  } catch (err) {
    throw new WparError('EPERM', `image ${label}: the signer's certificate cannot be read (${(err as Error).message})`, { cause: err });
  }
  const fp = fingerprintOf(cert.raw);
  if (fp !== sig.fingerprint) throw new WparError('EPERM', `image ${label}: the signature's fingerprint does not match its certificate (image tampered)`);
  const peer = fp === identity.fingerprint ? undefined : peers.byFingerprint(fp);
  if (fp !== identity.fingerprint && !peer) {
    throw new WparError('EPERM', `image ${label}: signed by an unknown identity ${fp} (not this home, not a trusted peer; see wpar peer add)`);
  }
  let ok: boolean;
  try {
    ok = verify(null, signedBytes(manifest), cert.publicKey, Buffer.from(sig.value, 'base64'));
  } catch {
    ok = false;
  }
  if (!ok) throw new WparError('EPERM', `image ${label}: the signature does not match the image (altered after signing)`);
  return peer ? { kind: 'peer', name: peer.name } : { kind: 'self' };
}
