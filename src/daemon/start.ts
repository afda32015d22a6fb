/**
 * `npm start`: `wpard` in the foreground on the default home (no setup, no external service), with a
 * short guide to the commands.
 * @module
 */
import { runDaemon } from './run.ts';

await runDaemon({
  banner: (d) => `
Corral is running: wpard serves ${d.layout.home}
(isolation: ${d.isolation.summary})

In another terminal, in this directory:

  npx mkwpar -n hello -c -s -- sh -c 'while true; do date; sleep 2; done'
  npx lswpar                      # name, state, cid, checkpoint phase, denials
  npx lswpar -L hello             # everything about one WPAR
  npx wpar logs -f hello          # its console
  npx wpar events -f              # every kernel and runtime event
  npx stopwpar hello && npx rmwpar hello
  npx wparexec -n once -- uname -a

The commands find this daemon through the same default home (or --home DIR / WPAR_HOME).
Ctrl-C stops every WPAR cleanly and exits.
`,
});
