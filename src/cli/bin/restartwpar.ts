#!/usr/bin/env node
// `restartwpar`: see src/cli/commands/restartwpar.ts.
import { main } from '../main.ts';

await main('restartwpar');
