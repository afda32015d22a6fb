#!/usr/bin/env node
// `movewpar`: see src/cli/commands/movewpar.ts.
// Only the version check is imported statically: on an older Node it prints one line and exits
// before anything that needs Node 24 is linked.
import { requireSupportedNode } from '../../node-version.ts';

requireSupportedNode('movewpar');
// Commands are short-lived: Node's on-disk compile cache saves recompiling the CLI at every run.
process.getBuiltinModule('node:module').enableCompileCache();
const { main } = await import('../main.ts');
await main('movewpar');
