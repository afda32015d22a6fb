#!/usr/bin/env node
// `rmwpar`: see src/cli/commands/rmwpar.ts.
import { main } from '../main.ts';

await main('rmwpar');
