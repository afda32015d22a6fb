/**
 * A home's identity (M1): an Ed25519 private key and a self-signed certificate, made with the
 * system's `openssl` at the first start and kept in `HOME/identity/` (directory 0700, files 0600).
 * Only the certificate ever leaves the home: in TLS handshakes and in the signatures of images.
 * @module
 */
import { execFile } from 'node:child_process';
import { createPrivateKey, sign as cryptoSign, X509Certificate, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { WparError } from '../kernel/errno.ts';
import { fingerprintOf, type Fingerprint } from './fingerprint.ts';

const run = promisify(execFile);

/** One home's identity. */
export interface Identity {
  /** The system's name (`wpard --name`, default the hostname). */
  readonly name: string;
  /** The certificate, PEM. */
  readonly certificate: string;
  /** The private key, PEM (never sent anywhere). */
  readonly key: string;
  /** `sha256:` + hex of the certificate's DER. */
  readonly fingerprint: Fingerprint;
  /** Signs `data` with the private key (Ed25519); the signature in base64. */
  sign(data: Uint8Array): string;
}

/** Where the identity lives inside a home. */
export function identityDir(home: string): string {
  return join(home, 'identity');
}

/**
 * Loads the home's identity, making it on the first call (`openssl req -x509 -newkey ed25519`, argv,
 * no shell). The key and certificate are written under temporary names and renamed into place, so a
 * start killed half way leaves no half identity; an existing one is never replaced.
 */
export async function loadIdentity(home: string, name: string): Promise<Identity> {
  const dir = identityDir(home);
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  if (!existsSync(keyPath) || !existsSync(certPath)) {
    const tmpKey = join(dir, `.key.${process.pid}.tmp`);
    const tmpCert = join(dir, `.cert.${process.pid}.tmp`);
    const umask = process.umask(0o077);
    try {
      await run('openssl', [
        'req', '-x509', '-newkey', 'ed25519', '-nodes', '-days', '36500',
        '-subj', `/CN=corral:${name}`, '-keyout', tmpKey, '-out', tmpCert,
      ], { timeout: 30_000 });
      chmodSync(tmpKey, 0o600);
      chmodSync(tmpCert, 0o600);
      renameSync(tmpCert, certPath);
      renameSync(tmpKey, keyPath);
    } catch (err) {
      rmSync(tmpKey, { force: true });
      rmSync(tmpCert, { force: true });
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      const why = e.code === 'ENOENT' ? 'openssl is not installed (apt-get install openssl)' : (e.stderr?.trim().split('\n')[0] ?? e.message);
      throw new WparError(e.code === 'ENOENT' ? 'ENOENT' : 'EIO', `cannot make this home's identity in ${dir}: ${why}`, { cause: err });
    } finally {
      process.umask(umask);
    }
  }
  chmodSync(keyPath, 0o600);
  chmodSync(certPath, 0o600);
  const key = readFileSync(keyPath, 'utf8');
  const certificate = readFileSync(certPath, 'utf8');
  let privateKey: KeyObject;
  let x509: X509Certificate;
  try {
    privateKey = createPrivateKey(key);
    x509 = new X509Certificate(certificate);
  } catch (err) {
    throw new WparError('EINVAL', `the identity in ${dir} is damaged (${(err as Error).message}); move it away to make a new one`, { cause: err });
  }
  if (!x509.checkPrivateKey(privateKey)) throw new WparError('EINVAL', `the identity in ${dir} is damaged: key.pem does not match cert.pem`);
  return {
    name, certificate, key,
    fingerprint: fingerprintOf(x509.raw),
    sign: (data) => cryptoSign(null, data, privateKey).toString('base64'),
  };
}
