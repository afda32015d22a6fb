#!/usr/bin/env node
// `mkwpar`: see src/cli/commands/mkwpar.ts.
import { main } from '../main.ts';

await main('mkwpar');
