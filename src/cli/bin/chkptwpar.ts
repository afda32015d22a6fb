#!/usr/bin/env node
// `chkptwpar`: see src/cli/commands/chkptwpar.ts.
import { main } from '../main.ts';

await main('chkptwpar');
