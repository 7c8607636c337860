/** Runs the cmsae CLI from the TypeScript sources (tests spawn it: node --import tsx test/helpers/cli-entry.ts ...). */
import { main } from '../../lib/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
