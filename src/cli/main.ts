/**
 * The executables' entry point: runs a command (or `wpar`) on the real process and sets its exit
 * status. Each `bin/*.ts` is a one-line shim over {@link main}.
 * @module
 */
import { runCommand, type Command } from './command.ts';
import { processIo } from './io.ts';

/**
 * Runs the command `name` (`mkwpar`, ..., or `wpar`) with `argv` (default: this process's
 * arguments) and sets `process.exitCode`; resolves when it is done.
 */
export async function main(name: string, argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  const io = processIo();
  let status: number;
  if (name === 'wpar') {
    const { runWpar } = await import('./wpar.ts'); // every verb: the whole registry
    status = await runWpar(argv, io);
  } else {
    // One executable, one command: load only its module (src/cli/commands/NAME.ts exports NAME).
    const command = (await import(`./commands/${name}.ts`) as Record<string, Command<unknown> | undefined>)[name];
    if (command === undefined) throw new Error(`no command named ${name}`);
    status = await runCommand(command, argv, io);
  }
  process.exitCode = status;
  return status;
}
