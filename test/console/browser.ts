/**
 * Debian's Chromium for the console tests, driven by playwright-core (never a browser download),
 * headless with a fresh user-data directory that is removed afterwards.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Debian's Chromium (installed by scripts/install-system-deps.sh). */
export const CHROMIUM = '/usr/bin/chromium';
/** Why the browser tests cannot run here, or false. */
export const NO_BROWSER: string | false = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (scripts/install-system-deps.sh installs it as root on Debian)`;

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

/** A headless Chromium with its own profile; dispose to close it and remove the profile. */
export async function launch(): Promise<BrowserContext & AsyncDisposable> {
  const profile = mkdtempSync(join(tmpdir(), 'corral-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, args: FLAGS, timeout: 60_000, viewport: { width: 1400, height: 560 },
    });
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
  context.setDefaultTimeout(20_000);
  return Object.assign(context, {
    async [Symbol.asyncDispose]() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  });
}
