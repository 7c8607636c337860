#!/usr/bin/env node
// Entry point of the cmsae CLI (runs the compiled TypeScript in dist/).
import { main } from '../dist/lib/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
