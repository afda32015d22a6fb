/**
 * `npm start [-- --http ADDR:PORT]`: `wpard` in the foreground on the default home (no setup, no
 * external service), with a short guide to the commands; `--http` also serves the web console.
 * @module
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseHttpAddress, type HttpAddress } from '../console/address.ts';
import { runDaemon } from './run.ts';

// In a checkout the commands are not on PATH (npm links a package's bins only where it is installed).
const bin = join(dirname(dirname(fileURLToPath(import.meta.url))), 'cli', 'bin');
const node = process.execPath;

let http: HttpAddress | undefined;
try {
  const { values } = parseArgs({ options: { http: { type: 'string' } }, strict: true, allowPositionals: false });
  if (values.http !== undefined) http = parseHttpAddress(values.http);
} catch (err) {
  process.stderr.write(`npm start: ${(err as Error).message}\nusage: npm start [-- --http ADDR:PORT]\n`);
  process.exit(2);
}

await runDaemon({
  ...(http && { http }),
  banner: (d) => `
Corral is running: wpard serves ${d.layout.home}
(isolation: ${d.isolation.summary})

In another terminal (every command is also a verb of \`wpar\`; installed with npm they are all on PATH):

  alias wpar='${node} ${join(bin, 'wpar.js')}'
  wpar mk -n hello -c -s -- sh -c 'while true; do date; sleep 2; done'
  wpar ls                         # lswpar: name, state, cid, checkpoint phase, denials
  wpar ls -L hello                # everything about one WPAR
  wpar logs -f hello              # its console
  wpar events -f                  # every kernel and runtime event
  wpar chkpt -d /tmp/hello.img hello
  wpar stop hello && wpar rm hello
  wpar exec -n once -- uname -a   # wparexec: a transient WPAR in the foreground

The commands find this daemon through the same default home (or --home DIR / WPAR_HOME).
Ctrl-C stops every WPAR cleanly and exits.
`,
});
