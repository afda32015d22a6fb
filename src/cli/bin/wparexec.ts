#!/usr/bin/env node
// `wparexec`: see src/cli/commands/wparexec.ts.
import { main } from '../main.ts';

await main('wparexec');
