/**
 * Debian's Chromium for the console tests, driven by playwright-core (never a browser download),
 * headless with a fresh user-data directory that is removed afterwards.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

/**
 * A headless Chromium with its own profile; dispose to close it and remove the profile. With
 * `netns`, it runs in that network namespace (a test host's: `nsenter --net`), so it reaches
 * addresses that exist only there; playwright drives it over a pipe, which crosses namespaces.
 */
export async function launch(options: { netns?: string } = {}): Promise<BrowserContext & AsyncDisposable> {
  const profile = mkdtempSync(join(tmpdir(), 'corral-chromium-'));
  let context: BrowserContext;
  try {
    let executablePath = CHROMIUM;
    if (options.netns !== undefined) {
      if (!/^[A-Za-z0-9_-]+$/.test(options.netns)) throw new Error(`bad namespace name ${options.netns}`);
      executablePath = join(profile, 'chromium-in-netns');
      writeFileSync(executablePath, `#!/bin/sh\nexec nsenter --net=/run/netns/${options.netns} -- ${CHROMIUM} "$@"\n`, { mode: 0o755 });
    }
    context = await chromium.launchPersistentContext(join(profile, 'data'), {
      executablePath, headless: true, args: FLAGS, timeout: 60_000, viewport: { width: 1400, height: 560 },
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
