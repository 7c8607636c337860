/** Assertions for typed errors. */
import { expect } from 'chai';

import { SaeError } from '../../lib/index.js';

export function expectSaeError(fn: () => unknown, code: string, text?: RegExp): SaeError {
  try {
    fn();
  } catch (e) {
    expect(e, String(e)).to.be.instanceOf(SaeError);
    expect((e as SaeError).code, (e as Error).message).to.equal(code);
    if (text) expect((e as Error).message).to.match(text);
    return e as SaeError;
  }
  throw new Error(`expected a SaeError with code ${code}`);
}

export async function expectSaeRejection(p: Promise<unknown>, code: string, text?: RegExp): Promise<SaeError> {
  try {
    await p;
  } catch (e) {
    expect(e, String(e)).to.be.instanceOf(SaeError);
    expect((e as SaeError).code, (e as Error).message).to.equal(code);
    if (text) expect((e as Error).message).to.match(text);
    return e as SaeError;
  }
  throw new Error(`expected a rejection with code ${code}`);
}
