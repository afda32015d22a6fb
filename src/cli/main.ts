/**
 * The executables' entry point: runs a command (or `wpar`) on the real process and sets its exit
 * status. Each `bin/*.ts` is a one-line shim over {@link main}.
 * @module
 */
import { runCommand } from './command.ts';
import { commandNamed } from './commands/index.ts';
import { processIo } from './io.ts';
import { runWpar } from './wpar.ts';

/**
 * Runs the command `name` (`mkwpar`, ..., or `wpar`) with `argv` (default: this process's
 * arguments) and sets `process.exitCode`; resolves when it is done.
 */
export async function main(name: string, argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  const io = processIo();
  let status: number;
  if (name === 'wpar') {
    status = await runWpar(argv, io);
  } else {
    const command = commandNamed(name);
    if (command === undefined) throw new Error(`no command named ${name}`);
    status = await runCommand(command, argv, io);
  }
  process.exitCode = status;
  return status;
}
