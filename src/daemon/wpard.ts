#!/usr/bin/env node
/**
 * `wpard [--home DIR] [--extension MODULE]... [--fallback-isolation] [--http ADDR:PORT]`: the daemon, in the foreground.
 * SIGTERM/SIGINT stop every WPAR cleanly (TERM, then KILL; WPARSTOP callouts run) and exit 0.
 * @module
 */
import { parseArgs } from 'node:util';
import { parseHttpAddress, type HttpAddress } from '../console/address.ts';
import { runDaemon } from './run.ts';

const USAGE = `usage: wpard [--home DIR] [--extension MODULE]... [--fallback-isolation] [--http ADDR:PORT]

  --home DIR            the system's home (default: $WPAR_HOME, else ~/.local/state/corral)
  --extension MODULE    load a kernel extension (repeatable)
  --fallback-isolation  give WPARs a process group and rlimits only, even where namespaces work
  --http ADDR:PORT      serve the web console and /metrics (ADDR defaults to 127.0.0.1: --http :8080);
                        open the address it prints, with the token from HOME/console.token`;

let args;
try {
  args = parseArgs({
    options: {
      home: { type: 'string' },
      extension: { type: 'string', multiple: true },
      'fallback-isolation': { type: 'boolean' },
      http: { type: 'string' },
      help: { type: 'boolean', short: '?' },
    },
    strict: true,
    allowPositionals: false,
  }).values;
} catch (err) {
  process.stderr.write(`wpard: ${(err as Error).message}\n${USAGE}\n`);
  process.exit(2);
}
if (args.help) {
  process.stdout.write(USAGE + '\n');
  process.exit(0);
}
let http: HttpAddress | undefined;
try {
  if (args.http !== undefined) http = parseHttpAddress(args.http);
} catch (err) {
  process.stderr.write(`wpard: ${(err as Error).message} (EINVAL)\n`);
  process.exit(2);
}
await runDaemon({
  ...(args.home !== undefined && { home: args.home }),
  extensions: args.extension ?? [],
  fallbackIsolation: args['fallback-isolation'] === true,
  ...(http && { http }),
});
