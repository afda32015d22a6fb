#!/usr/bin/env node
// `movewpar`: see src/cli/commands/movewpar.ts.
import { enableCompileCache } from 'node:module';

// Commands are short-lived: Node's on-disk compile cache saves recompiling the CLI at every run.
enableCompileCache();
const { main } = await import('../main.ts');
await main('movewpar');
