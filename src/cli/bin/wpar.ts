#!/usr/bin/env node
// `wpar`: see src/cli/wpar.ts.
import { main } from '../main.ts';

await main('wpar');
