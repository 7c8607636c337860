import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { VERSION } from '../../lib/index.js';
import { packageRoot } from '../../lib/native/load.js';

describe('version', () => {
  it('lib/version.ts matches package.json', () => {
    const pkg = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8'));
    expect(VERSION).to.equal(pkg.version);
  });
});
