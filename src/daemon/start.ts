/**
 * `npm start [-- --home DIR ...]`: `wpard` in the foreground (on the default home unless `--home`;
 * it takes every `wpard` flag), with a short guide to the commands. No setup, no external service.
 * @module
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveHome } from './home.ts';
import { runDaemon } from './run.ts';
import { parseWpardArgs } from './wpard-main.ts';

// In a checkout the commands are not on PATH (npm links a package's bins only where it is installed).
const bin = join(dirname(dirname(fileURLToPath(import.meta.url))), 'cli', 'bin');
const node = process.execPath;
const options = parseWpardArgs(process.argv.slice(2));
// The commands find the default home by themselves; another one they are told (--home or WPAR_HOME).
const other = options.home !== undefined && resolveHome(options.home) !== resolveHome(undefined);
const homeFlag = other ? ` --home ${resolveHome(options.home)}` : '';

await runDaemon({
  ...options,
  banner: (d) => `
Corral is running: wpard serves ${d.layout.home}
(isolation: ${d.isolation.summary})

In another terminal (every command is also a verb of \`wpar\`; installed with npm they are all on PATH):

  alias wpar='${node} ${join(bin, 'wpar.js')}${homeFlag}'
  wpar mk -n hello -c -s -- sh -c 'while true; do date; sleep 2; done'
  wpar ls                         # lswpar: name, state, cid, checkpoint phase, denials
  wpar ls -L hello                # everything about one WPAR
  wpar logs -f hello              # its console
  wpar events -f                  # every kernel and runtime event
  wpar chkpt -d /tmp/hello.img hello
  wpar stop hello && wpar rm hello
  wpar exec -n once -- uname -a   # wparexec: a transient WPAR in the foreground

${other
    ? `The commands find this daemon with --home ${d.layout.home} (as in the alias) or WPAR_HOME=${d.layout.home}.`
    : 'The commands find this daemon through the same default home (or --home DIR / WPAR_HOME).'}
A second system on this machine is a second daemon with its own home: npm start -- --home DIR.
Ctrl-C stops every WPAR cleanly and exits.
`,
});
