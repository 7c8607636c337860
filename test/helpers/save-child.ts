/**
 * A child process for the crash tests: saves a small two-level directory (version string in every file)
 * with writeDirectoryAtomic; CMSAE_TEST_KILL_IN_SAVE makes it SIGKILL itself inside the save.
 * Usage: node --import tsx test/helpers/save-child.ts <dir> <version>
 */
import { writeDirectoryAtomic } from '../../lib/io/atomic.js';
import { savedFiles } from './saved-files.js';

const [dir, version] = process.argv.slice(2);
await writeDirectoryAtomic(dir, savedFiles(version));
