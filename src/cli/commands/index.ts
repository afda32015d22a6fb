/**
 * Every command, and the `wpar` verbs that name them.
 * @module
 */
import type { Command } from '../command.ts';
import { chkptwpar } from './chkptwpar.ts';
import { drain, undrain } from './drain.ts';
import { events } from './events.ts';
import { hosts } from './hosts.ts';
import { identity } from './identity.ts';
import { logs } from './logs.ts';
import { lswpar } from './lswpar.ts';
import { mkwpar } from './mkwpar.ts';
import { movewpar } from './movewpar.ts';
import { peer } from './peer.ts';
import { restartwpar } from './restartwpar.ts';
import { rmwpar } from './rmwpar.ts';
import { startwpar } from './startwpar.ts';
import { stopwpar } from './stopwpar.ts';
import { wparexec } from './wparexec.ts';

/** Every command, in the order `wpar --help` lists them. */
export const COMMANDS: readonly Command<unknown>[] = [
  mkwpar, startwpar, stopwpar, rmwpar, lswpar, wparexec, chkptwpar, restartwpar, movewpar, logs, events, identity, peer, hosts, drain, undrain,
];

/** The command a `wpar` verb names (`mk` and `mkwpar` both give mkwpar), or undefined. */
export function commandForVerb(verb: string): Command<unknown> | undefined {
  return COMMANDS.find((c) => c.verbs.includes(verb));
}

/** The command with this executable name (`mkwpar`), or undefined. */
export function commandNamed(name: string): Command<unknown> | undefined {
  return COMMANDS.find((c) => c.name === name);
}

export { chkptwpar, drain, events, hosts, undrain, identity, logs, movewpar, peer, lswpar, mkwpar, restartwpar, rmwpar, startwpar, stopwpar, wparexec };
