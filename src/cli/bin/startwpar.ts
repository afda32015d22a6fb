#!/usr/bin/env node
// `startwpar`: see src/cli/commands/startwpar.ts.
import { main } from '../main.ts';

await main('startwpar');
