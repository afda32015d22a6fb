/**
 * `wpar VERB [ARG...]`: every command as a verb (`wpar mk`, `wpar start`, ..., also the full names,
 * `wpar mkwpar`), plus `wpar logs` and `wpar events`. `--home DIR` may come before the verb.
 * @module
 */
import type { DaemonClient } from './client.ts';
import { runCommand } from './command.ts';
import { COMMANDS, commandForVerb } from './commands/index.ts';
import { errorLine, EXIT_USAGE, UsageError } from './errors.ts';
import type { Io } from './io.ts';

/** `wpar`'s usage text. */
export function wparUsage(): string {
  const rows = COMMANDS.map((c) => `  ${c.verbs.join(', ').padEnd(22)}${c.summary}`);
  return `Usage: wpar [--home Directory] Command [Argument...]
       wpar help Command

Manages workload partitions through the wpard daemon of the home Directory (else $WPAR_HOME,
else $XDG_STATE_HOME/corral, by default ~/.local/state/corral).

Commands:
${rows.join('\n')}

"wpar Command --help" describes each one.
`;
}

/** Runs `wpar` with `argv` (without `wpar` itself); resolves to the exit status. */
export async function runWpar(argv: readonly string[], io: Io, connect?: (home: string) => DaemonClient): Promise<number> {
  const globals: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--home' && i + 1 < argv.length) globals.push(arg, argv[++i]!);
    else if (arg.startsWith('--home=')) globals.push(arg);
    else if (arg === '--help' || arg === '-?') {
      io.stdout.write(wparUsage());
      return 0;
    } else break;
  }
  const verb = argv[i];
  const verbs = COMMANDS.map((c) => c.verbs[0]).join(', ');
  const fail = (message: string): number => {
    io.stderr.write(errorLine('wpar', new UsageError(message)) + '\n');
    return EXIT_USAGE;
  };
  if (verb === undefined) return fail(`missing command (one of ${verbs})`);
  if (verb === 'help') {
    const topic = argv[i + 1];
    if (topic === undefined) {
      io.stdout.write(wparUsage());
      return 0;
    }
    const command = commandForVerb(topic);
    if (command === undefined) return fail(`unknown command ${JSON.stringify(topic)} (one of ${verbs})`);
    io.stdout.write(command.usage(`wpar ${topic}`));
    return 0;
  }
  const command = commandForVerb(verb);
  if (command === undefined) return fail(`unknown command ${JSON.stringify(verb)} (one of ${verbs})`);
  return runCommand(command, [...globals, ...argv.slice(i + 1)], io, `wpar ${verb}`, connect);
}
