#!/usr/bin/env node
// `lswpar`: see src/cli/commands/lswpar.ts.
import { main } from '../main.ts';

await main('lswpar');
