#!/usr/bin/env node
// `movewpar`: see src/cli/commands/movewpar.ts. The first import checks the Node version (one line and exit 1
// on an older one); the build bundles the rest into this one file and keeps that check out of it,
// so it runs before anything else is evaluated (scripts/bundle-commands.ts).
import '../../node-check.ts';
import { movewpar } from '../commands/movewpar.ts';
import { main } from '../main.ts';

await main(movewpar);
