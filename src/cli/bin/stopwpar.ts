#!/usr/bin/env node
// `stopwpar`: see src/cli/commands/stopwpar.ts.
import { main } from '../main.ts';

await main('stopwpar');
