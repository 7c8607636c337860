/**
 * The Node versions package.json declares are ones every locked dependency supports (a dependency that needs a
 * newer Node would make `npm install` warn EBADENGINE, or fail under engine-strict), and npm is told to refuse
 * a mismatch instead of warning.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const json = (f: string) => JSON.parse(readFileSync(path.join(root, f), 'utf8')) as Record<string, unknown>;

describe('install: engines', () => {
  const declared = (json('package.json').engines as { node: string }).node;

  it('package.json declares a valid Node range that includes the Node running this test', () => {
    expect(semver.validRange(declared), declared).to.not.equal(null);
    expect(semver.satisfies(process.version, declared), `${process.version} vs ${declared}`).to.equal(true);
  });

  it('every package in package-lock.json supports every Node version package.json declares', () => {
    const packages = json('package-lock.json').packages as Record<string, { version?: string; engines?: { node?: string } | string[] }>;
    const narrower: string[] = [];
    let checked = 0;
    for (const [where, p] of Object.entries(packages)) {
      const node = !Array.isArray(p.engines) ? p.engines?.node : undefined;
      if (!where || !node) continue;
      checked++;
      if (!semver.subset(declared, node)) narrower.push(`${where.replace(/^.*node_modules\//, '')}@${p.version} needs node ${node}`);
    }
    expect(checked).to.be.greaterThan(50);
    expect(narrower, `declared node ${declared}`).to.deep.equal([]);
    // The check can tell: the range this project declared before (>=20.19) is wider than its dependencies allow.
    expect(semver.subset('>=20.19', '^20.19.0 || ^22.12.0 || >=23')).to.equal(false);
  });

  it('.npmrc makes an engine mismatch an install error (engine-strict)', () => {
    const rc = readFileSync(path.join(root, '.npmrc'), 'utf8');
    expect(rc).to.match(/^engine-strict\s*=\s*true\s*$/m);
  });
});
