#!/usr/bin/env node
// `startwpar`: see src/cli/commands/startwpar.ts.
import { enableCompileCache } from 'node:module';

// Commands are short-lived: Node's on-disk compile cache saves recompiling the CLI at every run.
enableCompileCache();
const { main } = await import('../main.ts');
await main('startwpar');
