#!/usr/bin/env node
/**
 * `wpard [--home DIR] [--name NAME] [--listen ADDR:PORT] [--extension MODULE]... [--fallback-isolation]`: the daemon, in the foreground.
 * SIGTERM/SIGINT stop every WPAR cleanly (TERM, then KILL; WPARSTOP callouts run) and exit 0.
 * @module
 */
import { parseArgs } from 'node:util';
import { runDaemon } from './run.ts';

const USAGE = `usage: wpard [--home DIR] [--name NAME] [--listen ADDR:PORT] [--extension MODULE]... [--fallback-isolation]

  --home DIR            the system's home (default: $WPAR_HOME, else ~/.local/state/corral)
  --name NAME           the system's name for its peers (default: the hostname)
  --listen ADDR:PORT    open the peer endpoint (TLS 1.3, mutual authentication) for moves between hosts
  --extension MODULE    load a kernel extension (repeatable)
  --fallback-isolation  give WPARs a process group and rlimits only, even where namespaces work`;

let args;
try {
  args = parseArgs({
    options: {
      home: { type: 'string' },
      name: { type: 'string' },
      listen: { type: 'string' },
      extension: { type: 'string', multiple: true },
      'fallback-isolation': { type: 'boolean' },
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
await runDaemon({
  ...(args.home !== undefined && { home: args.home }),
  ...(args.name !== undefined && { name: args.name }),
  ...(args.listen !== undefined && { listen: args.listen }),
  extensions: args.extension ?? [],
  fallbackIsolation: args['fallback-isolation'] === true,
});
