/** Planted paired data in a temporary directory for one mocha suite (call inside describe: registers before/after). */
import { writePlanted, type PlantedData } from './paired-data.js';
import { tempDir } from './tmp.js';

export function plantedSuite(opts: Parameters<typeof writePlanted>[1]): { dir: string; data: PlantedData } {
  const { dir, cleanup } = tempDir();
  // Filled in before the suite's tests run; the same object throughout.
  const data = {} as PlantedData;
  before(async () => {
    Object.assign(data, await writePlanted(dir, opts));
  });
  after(cleanup);
  return { dir, data };
}
