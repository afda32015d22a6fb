/**
 * The executables' entry point: runs one command (or `wpar`) on the real process and sets its exit
 * status. Each `bin/*.ts` imports the version check first, then its own command, and calls
 * {@link main} or {@link mainWpar}; the build makes each one a single file (`scripts/bundle-commands.ts`).
 * @module
 */
import { runCommand, type Command } from './command.ts';
import { processIo } from './io.ts';
import { runWpar } from './wpar.ts';

/**
 * Runs `command` with `argv` (default: this process's arguments) and sets `process.exitCode`;
 * resolves when it is done.
 */
export async function main(command: Command<unknown>, argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  const status = await runCommand(command, argv, processIo());
  process.exitCode = status;
  return status;
}

/** `wpar VERB ...`: every command as a verb. */
export async function mainWpar(argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  const status = await runWpar(argv, processIo());
  process.exitCode = status;
  return status;
}
