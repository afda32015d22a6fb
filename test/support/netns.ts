/**
 * Test hosts: network namespaces the tests make themselves (`ip netns add`), with loopback up, and
 * removed when disposed — also when a test fails, since tests hold them with `await using`.
 * Addresses used inside them exist only there.
 * @module
 */

import { execFileSync } from 'node:child_process';

let made = 0;

/** One test host. */
export class TestHost implements AsyncDisposable {
  /** Its network namespace's name (`csl-<pid>-<n>`). */
  readonly name: string;

  private constructor(name: string) {
    this.name = name;
  }

  /** Makes a fresh network namespace with loopback up. */
  static create(prefix = 'csl'): TestHost {
    const name = `${prefix}-${process.pid}-${++made}`;
    execFileSync('ip', ['netns', 'add', name]);
    const host = new TestHost(name);
    host.exec(['ip', 'link', 'set', 'lo', 'up']);
    return host;
  }

  /** Runs argv in the namespace to completion; returns stdout (throws on a non-zero exit). */
  exec(argv: readonly string[], timeoutMs = 20_000): string {
    return execFileSync('ip', ['netns', 'exec', this.name, ...argv], { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** `ip netns exec NAME argv...`, for spawning long-running processes there. */
  wrap(argv: readonly string[]): string[] {
    return ['ip', 'netns', 'exec', this.name, ...argv];
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
}

/** Whether this machine can make test hosts (root with iproute2). */
export const canMakeHosts: boolean = (() => {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
