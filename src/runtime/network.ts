/**
 * Wiring a bridge network (`mkwpar -N address=`, see `src/definition/network.ts` for the rule) into a
 * starting WPAR's network namespace with iproute2, and the low-ports setting of a WPAR's own network
 * namespace.
 * @module
 */

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { WparError } from '../kernel/errno.ts';
import type { NetworkSpec } from '../definition/network.ts';

/** The tools {@link attachBridge} and {@link openLowPorts} run. */
export interface NetworkTools {
  /** iproute2 `ip`. */
  readonly ip: string;
  /** util-linux `nsenter`. */
  readonly nsenter: string;
  /** procps `sysctl`. */
  readonly sysctl: string;
}

/**
 * Lets uid 0 of a WPAR with a network namespace of its own bind ports below 1024 there
 * (`net.ipv4.ip_unprivileged_port_start=0`, a per-namespace setting): its `CAP_NET_BIND_SERVICE`
 * counts only in namespaces its user namespace owns, and this one belongs to the host.
 */
export async function openLowPorts(tools: NetworkTools, pid: number): Promise<void> {
  await run(tools.nsenter, [`--net=/proc/${pid}/ns/net`, tools.sysctl, '-qw', 'net.ipv4.ip_unprivileged_port_start=0'], [], 'cannot open ports below 1024');
}

/**
 * The host side of a WPAR's veth pair: unique per home (`tag`) and cid, within the 15 bytes Linux
 * allows, e.g. `c1f0a9c-1z`.
 */
export function hostInterfaceName(tag: string, cid: number): string {
  return `c${createHash('sha256').update(tag).digest('hex').slice(0, 6)}-${cid.toString(36)}`;
}

/** One bridge set-up at a time per bridge name, so two WPARs starting together do not race. */
const bridges = new Map<string, Promise<void>>();

/**
 * Wires the network namespace of process `pid` to the host bridge: the bridge is created (with the
 * gateway address, up) if missing, a veth pair joins it, and the namespace's end becomes `eth0` with
 * the WPAR's address and a default route via the gateway. The namespace's end goes away with the
 * namespace, taking the host end with it, so nothing is left to clean up when the WPAR ends.
 * @throws WparError naming the step and iproute2's message.
 */
export async function attachBridge(tools: NetworkTools, spec: Extract<NetworkSpec, { mode: 'bridge' }>, pid: number, hostIf: string): Promise<void> {
  const previous = bridges.get(spec.bridge) ?? Promise.resolve();
  const ready = previous.catch(() => undefined).then(() => ensureBridge(tools.ip, spec));
  bridges.set(spec.bridge, ready);
  await ready;
  await run(tools.ip, ['-batch', '-'], [
    `link add ${hostIf} type veth peer name eth0 netns ${pid}`,
    `link set ${hostIf} master ${spec.bridge} up`,
  ], `cannot attach to bridge ${spec.bridge}`);
  await run(tools.nsenter, [`--net=/proc/${pid}/ns/net`, tools.ip, '-batch', '-'], [
    `addr add ${spec.address}/${spec.prefix} dev eth0`,
    'link set eth0 up',
    `route add default via ${spec.gateway}`,
  ], `cannot configure ${spec.address}/${spec.prefix}`);
}

async function ensureBridge(ip: string, spec: Extract<NetworkSpec, { mode: 'bridge' }>): Promise<void> {
  // Not a look in /sys/class/net: that is the network namespace /sys was mounted in, which need not
  // be the daemon's (`nsenter --net`). A bridge that exists already is what we want.
  await run(ip, ['link', 'add', spec.bridge, 'type', 'bridge'], [], `cannot create bridge ${spec.bridge}`)
    .catch((err: unknown) => { if (!(err instanceof WparError && err.code === 'EEXIST')) throw err; });
  // `replace` adds the gateway address once, however many WPARs share the subnet.
  await run(ip, ['-batch', '-'], [
    `addr replace ${spec.gateway}/${spec.prefix} dev ${spec.bridge}`,
    `link set ${spec.bridge} up`,
  ], `cannot set up bridge ${spec.bridge}`);
}

function run(file: string, args: readonly string[], input: readonly string[], what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const why = stderr.trim().split('\n').pop() || err.message;
      const code = /File exists/.test(why) ? 'EEXIST' : /Operation not permitted/.test(why) ? 'EPERM' : 'EINVAL';
      reject(new WparError(code, `${what}: ${why}`, { cause: err }));
    });
    // A tool that exits before reading its input must not take the daemon with it (EPIPE).
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input.map((line) => `${line}\n`).join(''));
  });
}
