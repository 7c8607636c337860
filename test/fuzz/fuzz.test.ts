/**
 * The bad-input campaign, kept: seeded, bounded mutations of options, matrices, files and command lines. Every
 * call either succeeds with a well-formed result or throws a SaeError with a known code; a failed call leaves
 * the object's state (weights, optimizer moments, statistics) bit for bit as it was; saved state is never
 * corrupted. A regression of any defect found by the campaign fails here.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { main } from '../../lib/cli/main.js';
import {
  AlignedPair,
  CorrelationAccumulator,
  EmbeddingFile,
  SaeError,
  TopKSAE,
  alignLatents,
  matrix,
  npyBytes,
  permuteLatents,
  readRunConfig,
  parseSafetensors,
  solveAssignment,
  type Matrix,
  type SparseCodes,
} from '../../lib/index.js';
import { Rng, randomCodes } from '../helpers/random.js';
import { tempDir } from '../helpers/tmp.js';

const CODES = new Set([
  'ERR_SHAPE',
  'ERR_DTYPE',
  'ERR_NONFINITE',
  'ERR_ARG',
  'ERR_RANGE',
  'ERR_FORMAT',
  'ERR_IO',
  'ERR_DISPOSED',
  'ERR_BUSY',
  'ERR_STATE',
  'ERR_DEGENERATE_BATCH',
  'ERR_NOMEM',
  'ERR_INFEASIBLE',
  'ERR_DIVERGED',
  'ERR_CUDA_UNAVAILABLE',
]);

/** Values that break naive checks. */
const NASTY: unknown[] = [0, -1, 1.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 53 + 2, 1e12, -0, 1e-300, '3', '', 'abc', null, undefined, {}, [], [1], true];

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)];
}

/** Runs fn; returns 'ok' or the SaeError code; anything else (a TypeError, a RangeError, a crash) fails. */
function attempt(what: string, fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (!(e instanceof SaeError)) throw new Error(`${what}: threw a non-SaeError: ${(e as Error)?.stack ?? String(e)}`);
    expect(CODES.has(e.code), `${what}: unknown code ${e.code} (${e.message})`).to.equal(true);
    expect(e.message.length, `${what}: empty message`).to.be.greaterThan(10);
    return e.code;
  }
}

async function attemptAsync(what: string, fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
    return 'ok';
  } catch (e) {
    if (!(e instanceof SaeError)) throw new Error(`${what}: threw a non-SaeError: ${(e as Error)?.stack ?? String(e)}`);
    expect(CODES.has(e.code), `${what}: unknown code ${e.code} (${e.message})`).to.equal(true);
    return e.code;
  }
}

/** A fingerprint of everything a step may change. */
function stateHash(sae: TopKSAE): string {
  const h = createHash('sha256');
  const w = sae.getWeights();
  for (const a of [w.W_enc.data, w.b_enc, w.W_dec.data, w.b_dec]) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  const st = sae.getTrainingState();
  for (const name of Object.keys(st.arrays).sort()) {
    const a = st.arrays[name];
    h.update(name).update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  }
  h.update(JSON.stringify([st.step, st.samplesSeen, st.threshold, st.thresholdReady, st.bDecMeanInitPending]));
  return h.digest('hex');
}

function allFinite(a: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return false;
  return true;
}

function randomMatrix(rng: Rng, rows: number, cols: number, scale = 1): Matrix {
  return { rows, cols, data: rng.normals(rows * cols, scale) };
}

/** A valid matrix with one defect (or none, or a harmless one). */
function mutateMatrix(rng: Rng, base: Matrix): unknown {
  const x = { rows: base.rows, cols: base.cols, data: base.data.slice() };
  switch (rng.int(12)) {
    case 0:
      return { ...x, rows: pick(rng, NASTY) };
    case 1:
      return { ...x, cols: pick(rng, NASTY) };
    case 2:
      return { ...x, data: Float64Array.from(x.data) };
    case 3:
      return { ...x, data: x.data.subarray(0, Math.max(0, x.data.length - 1 - rng.int(4))) };
    case 4:
      x.data[rng.int(x.data.length)] = pick(rng, [NaN, Infinity, -Infinity]);
      return x;
    case 5:
      return { rows: 0, cols: x.cols, data: new Float32Array(0) };
    case 6:
      return pick(rng, [null, undefined, 3, 'x', [], { rows: 1 }]);
    case 7:
      for (let i = 0; i < x.data.length; i++) x.data[i] *= 1e30;
      return x;
    case 8:
      for (let i = 0; i < x.data.length; i++) x.data[i] *= 1e-21;
      return x;
    case 9:
      x.data.fill(0);
      return x;
    case 10:
      return { ...x, data: Array.from(x.data) };
    default:
      return x;
  }
}

describe('fuzz: the bad-input campaign (seeded, bounded)', function () {
  this.timeout(120_000);
  const tmp = tempDir('cmsae-fuzz-');
  after(() => tmp.cleanup());

  it('TopKSAE.create with mutated options: a SAE or a typed error', () => {
    const rng = new Rng(101);
    const keys = ['d', 'm', 'k', 'seed', 'activation', 'loss', 'auxCoef', 'batchCapacity', 'thresholdMomentum', 'weightDecay', 'beta1', 'beta2', 'eps', 'maxGradNorm', 'device', 'precision', 'pairLoss', 'pairLossWeight', 'deadWindow', 'bogus'];
    let ok = 0;
    for (let t = 0; t < 600; t++) {
      const o: Record<string, unknown> = { d: 8, m: 16, k: 4, seed: t };
      for (let j = rng.next() < 0.3 ? 0 : 1 + rng.int(2); j > 0; j--) o[pick(rng, keys)] = rng.next() < 0.8 ? pick(rng, NASTY) : pick(rng, ['topk', 'batchtopk', 'fvu', 'mse', 'cpu', 'cuda', 'fp32', 'group']);
      if (rng.next() < 0.1) o.k = 17; // k > m
      let sae: TopKSAE | null = null;
      const r = attempt(`create ${JSON.stringify(o)}`, () => (sae = TopKSAE.create(o as never)));
      if (r === 'ok') {
        ok++;
        const s = sae as unknown as TopKSAE;
        expect(s.k).to.be.at.most(s.m);
        s.dispose();
      }
      if (o.k === 17 && o.m === 16) expect(r).to.not.equal('ok');
    }
    expect(ok).to.be.greaterThan(10); // the harness is not refusing everything
  });

  it('encode, decode and step on mutated inputs: typed errors, and a failed step leaves the state bit for bit', async () => {
    const rng = new Rng(202);
    for (const activation of ['topk', 'batchtopk'] as const) {
      using sae = TopKSAE.create({ d: 12, m: 40, k: 5, seed: 3, activation, device: 'cpu', ...(activation === 'batchtopk' ? { batchCapacity: 12 } : {}) });
      const base = randomMatrix(rng, 9, 12);
      for (let s = 0; s < 3; s++) sae.step(base, { lr: 1e-3 });
      const good = { weights: sae.getWeights(), state: sae.getTrainingState() };
      for (let t = 0; t < 400; t++) {
        // A step that was accepted with an extreme lr (1e12, 1e38) legitimately wrecks the weights: start again.
        sae.setWeights(good.weights);
        sae.setTrainingState(good.state);
        const x = mutateMatrix(rng, base);
        const before = stateHash(sae);
        const op = rng.int(5);
        const lr = rng.next() < 0.2 ? pick(rng, [NaN, -1, 0, 1e12, 1e38, '1', undefined, Infinity]) : 1e-3;
        const what = `${activation} op ${op} lr ${String(lr)}`;
        if (op === 0) {
          const r = attempt(`encode ${what}`, () => {
            const c = sae.encode(x as Matrix);
            expect(allFinite(c.values)).to.equal(true);
          });
          expect(stateHash(sae), `encode changed the state (${r})`).to.equal(before);
        } else if (op === 1) {
          const r = attempt(`step ${what}`, () => {
            const res = sae.step(x as Matrix, { lr } as never);
            expect(Number.isFinite(res.loss), `step returned loss ${res.loss}`).to.equal(true);
          });
          if (r !== 'ok') expect(stateHash(sae), `failed step (${r}) changed the state`).to.equal(before);
          const w = sae.getWeights();
          expect(allFinite(w.W_enc.data) && allFinite(w.W_dec.data) && allFinite(w.b_enc) && allFinite(w.b_dec), `weights not finite after ${what} (${r})`).to.equal(true);
        } else if (op === 2) {
          const r = await attemptAsync(`stepAsync ${what}`, () => sae.stepAsync(x as Matrix, { lr } as never));
          if (r !== 'ok') expect(stateHash(sae), `failed stepAsync (${r}) changed the state`).to.equal(before);
        } else if (op === 3) {
          const r = attempt(`step without options ${what}`, () => (sae.step as (x: unknown) => unknown)(x));
          if (r !== 'ok') expect(stateHash(sae)).to.equal(before);
        } else {
          const codes = sae.encode(base);
          const bad: Record<string, unknown> = { ...codes, indices: codes.indices.slice(), values: codes.values.slice() };
          const field = pick(rng, ['rows', 'k', 'indices', 'values', 'index', 'value'] as const);
          if (field === 'index') (bad.indices as Int32Array)[rng.int(codes.indices.length)] = pick(rng, [-1, 40, 2 ** 31 - 1]);
          else if (field === 'value') (bad.values as Float32Array)[rng.int(codes.values.length)] = pick(rng, [NaN, Infinity]);
          else bad[field] = pick(rng, NASTY);
          attempt(`decode ${field}`, () => {
            const y = sae.decode(bad as unknown as SparseCodes);
            expect(allFinite(y.data)).to.equal(true);
          });
          expect(stateHash(sae)).to.equal(before);
        }
      }
    }
  });

  it('setTrainingState / setWeights / fromWeights with mutated state: typed errors, state unchanged', () => {
    const rng = new Rng(303);
    using sae = TopKSAE.create({ d: 6, m: 20, k: 3, seed: 1, device: 'cpu' });
    sae.step(randomMatrix(rng, 8, 6), { lr: 1e-3 });
    for (let t = 0; t < 120; t++) {
      const before = stateHash(sae);
      const st = sae.getTrainingState();
      const w = sae.getWeights();
      const op = rng.int(3);
      if (op === 0) {
        const bad: Record<string, unknown> = { ...st, arrays: { ...st.arrays } };
        const field = pick(rng, ['step', 'samplesSeen', 'threshold', 'arrays', 'moment', 'whole'] as const);
        if (field === 'moment') {
          const name = pick(rng, Object.keys(st.arrays));
          const a = st.arrays[name].slice();
          a[rng.int(a.length)] = pick(rng, [NaN, -1, Infinity]);
          (bad.arrays as Record<string, unknown>)[name] = rng.next() < 0.3 ? a.subarray(1) : a;
        } else if (field === 'whole') {
          attempt('setTrainingState(nasty)', () => sae.setTrainingState(pick(rng, [null, undefined, 3, {}]) as never));
          expect(stateHash(sae)).to.equal(before);
          continue;
        } else bad[field] = pick(rng, NASTY);
        attempt(`setTrainingState ${field}`, () => sae.setTrainingState(bad as never));
        // Either refused (state unchanged) or accepted; accepted state must be meaningful.
        const now = sae.getTrainingState();
        expect(Number.isInteger(now.step) && now.step >= 0, `step became ${now.step}`).to.equal(true);
        for (const name of ['fires', 'since']) if (now.arrays[name]) expect(now.arrays[name].every((v) => v >= 0), `${name} went negative`).to.equal(true);
        for (const name of Object.keys(now.arrays)) expect(allFinite(now.arrays[name]), `${name} not finite`).to.equal(true);
        if (stateHash(sae) !== before) sae.setTrainingState(st);
      } else if (op === 1) {
        const bad = { ...w, W_dec: { ...w.W_dec, data: w.W_dec.data.slice() } };
        const r = rng.int(3);
        if (r === 0) bad.W_dec.data[rng.int(bad.W_dec.data.length)] = NaN;
        else if (r === 1) (bad as Record<string, unknown>).b_enc = new Float32Array(3);
        else (bad as Record<string, unknown>).W_enc = pick(rng, NASTY);
        const res = attempt('setWeights', () => sae.setWeights(bad as never));
        expect(res).to.not.equal('ok');
        expect(stateHash(sae)).to.equal(before);
      } else {
        const res = attempt('fromWeights', () => {
          const other = TopKSAE.fromWeights(rng.next() < 0.5 ? (pick(rng, NASTY) as never) : w, pick(rng, [undefined, null, {}, { k: 3 }, { k: 99 }, { k: 'x' }]) as never);
          other.dispose();
        });
        expect(['ok', ...CODES]).to.include(res);
      }
    }
  });

  it('save() to whatever is at the target: replaces only its own directories, never loses a foreign file', async () => {
    const rng = new Rng(353);
    using sae = TopKSAE.create({ d: 4, m: 8, k: 2, seed: 0, device: 'cpu' });
    for (let t = 0; t < 25; t++) {
      const target = path.join(tmp.dir, `save-${t}`);
      const kind = pick(rng, ['absent', 'empty', 'ours', 'foreign', 'file', 'mixed'] as const);
      const foreign = path.join(target, 'notes.txt');
      if (kind === 'empty') mkdirSync(target);
      if (kind === 'ours' || kind === 'mixed') await sae.save(target);
      if (kind === 'foreign' || kind === 'mixed') {
        mkdirSync(target, { recursive: true });
        writeFileSync(foreign, `keep ${t}`);
      }
      if (kind === 'file') writeFileSync(target, `keep ${t}`);
      const r = await attemptAsync(`save over ${kind}`, () => sae.save(target));
      expect(r, kind).to.equal(kind === 'foreign' || kind === 'mixed' || kind === 'file' ? 'ERR_IO' : 'ok');
      if (kind === 'foreign' || kind === 'mixed') expect(readFileSync(foreign, 'utf8')).to.equal(`keep ${t}`);
      if (kind === 'file') expect(readFileSync(target, 'utf8')).to.equal(`keep ${t}`);
      if (r === 'ok') (await TopKSAE.load(target)).dispose();
    }
  });

  it('small helpers with nasty arguments: matrix, permuteLatents, readRunConfig', async () => {
    const rng = new Rng(373);
    for (let t = 0; t < 60; t++) {
      const rows = pick(rng, [...NASTY, 2, 3]), cols = pick(rng, [...NASTY, 2, 3]);
      const r = attempt(`matrix(${String(rows)}, ${String(cols)})`, () => {
        const m = matrix(rows as number, cols as number);
        expect(m.data.length).to.equal(m.rows * m.cols);
      });
      if (!(Number.isSafeInteger(rows) && Number.isSafeInteger(cols) && (rows as number) >= 0 && (cols as number) >= 0)) expect(r, `matrix(${String(rows)}, ${String(cols)})`).to.not.equal('ok');
    }
    expect(attempt('matrix with short data', () => matrix(2, 3, new Float32Array(5)))).to.equal('ERR_SHAPE');
    for (const v of [null, undefined, 3, {}]) expect(attempt(`permuteLatents(${String(v)})`, () => permuteLatents(v as never, v as never))).to.not.equal('ok');
    for (const v of [null, undefined, 3, '']) expect(await attemptAsync(`readRunConfig(${String(v)})`, () => readRunConfig(v as never))).to.equal('ERR_ARG');
  });

  it('parseSafetensors on mutated files: a parse or ERR_FORMAT, never another error', async () => {
    const rng = new Rng(404);
    const dir = path.join(tmp.dir, 'st');
    {
      using sae = TopKSAE.create({ d: 4, m: 8, k: 2, seed: 0, device: 'cpu' });
      await sae.save(dir);
    }
    const good = readFileSync(path.join(dir, 'sae_weights.safetensors'));
    const headerLen = Number(good.readBigUInt64LE(0));
    const header = JSON.parse(good.subarray(8, 8 + headerLen).toString('utf8')) as Record<string, Record<string, unknown>>;
    for (let t = 0; t < 400; t++) {
      let buf: Buffer;
      const op = rng.int(4);
      if (op === 0) {
        buf = Buffer.from(good);
        for (let j = 1 + rng.int(3); j > 0; j--) buf[rng.int(8 + headerLen)] ^= 1 << rng.int(8);
      } else if (op === 1) buf = good.subarray(0, rng.int(good.length));
      else {
        const h = structuredClone(header);
        const name = pick(rng, ['W_enc', 'b_enc', 'W_dec', 'b_dec']);
        const field = pick(rng, ['shape', 'data_offsets', 'dtype', 'entry']);
        const v = pick(rng, [...NASTY, [-8, 16], [2.5, 16], ['4', '8'], [0, 2 ** 40], [16, 8], 'F64', 'I8', [4, 8, 2]]);
        if (field === 'entry') (h as Record<string, unknown>)[name] = v;
        else h[name][field] = v;
        let json = JSON.stringify(op === 3 ? pick(rng, [null, 5, 'x', [], h]) : h);
        while ((8 + Buffer.byteLength(json)) % 8) json += ' ';
        const len = Buffer.alloc(8);
        len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
        buf = Buffer.concat([len, Buffer.from(json), good.subarray(8 + headerLen)]);
      }
      const r = attempt(`parseSafetensors op ${op}`, () => {
        const f = parseSafetensors(buf);
        for (const tns of f.tensors.values()) {
          expect(tns.shape.every((s) => Number.isInteger(s) && s >= 0)).to.equal(true);
          expect(tns.data.length).to.equal(tns.shape.reduce((a, b) => a * b, 1));
        }
      });
      expect(['ok', 'ERR_FORMAT']).to.include(r);
    }
  });

  it('our checkpoints with a flipped byte or a mutated cfg.json field are refused, never loaded wrong', async () => {
    const rng = new Rng(505);
    const dir = path.join(tmp.dir, 'ckpt');
    let reference: string;
    {
      using sae = TopKSAE.create({ d: 6, m: 12, k: 3, seed: 2, device: 'cpu' });
      sae.step(randomMatrix(rng, 8, 6), { lr: 1e-3 });
      await sae.save(dir);
      reference = stateHash(sae);
    }
    const files = readdirSync(dir).filter((f) => f.endsWith('.safetensors'));
    const cfgText = readFileSync(path.join(dir, 'cfg.json'), 'utf8');
    const originals = Object.fromEntries(files.map((f) => [f, readFileSync(path.join(dir, f))]));
    for (let t = 0; t < 60; t++) {
      const op = rng.int(2);
      let what: string;
      if (op === 0) {
        const f = pick(rng, files);
        const buf = Buffer.from(originals[f]);
        const hl = Number(buf.readBigUInt64LE(0));
        const at = 8 + hl + rng.int(buf.length - 8 - hl); // a data byte: only a checksum can notice
        buf[at] ^= 1 << rng.int(8);
        writeFileSync(path.join(dir, f), buf);
        what = `flip ${f}@${at}`;
      } else {
        const cfg = JSON.parse(cfgText) as { cmsae: Record<string, unknown> & { options: Record<string, unknown> } };
        const field = pick(rng, ['format_version', 'step', 'samples_seen', 'k', 'm', 'd'] as const);
        const v = pick(rng, ['1', 2 ** 31, -1, 2.5, '1e300', null, 1e300, 99]);
        if (field === 'k' || field === 'm' || field === 'd') cfg.cmsae.options[field] = v;
        else cfg.cmsae[field] = v;
        writeFileSync(path.join(dir, 'cfg.json'), JSON.stringify(cfg));
        what = `cfg ${field} = ${JSON.stringify(v)}`;
      }
      const r = await attemptAsync(`load after ${what}`, async () => {
        const sae = await TopKSAE.load(dir);
        try {
          expect(stateHash(sae), `${what} loaded different state without an error`).to.equal(reference);
        } finally {
          sae.dispose();
        }
      });
      expect(['ok', 'ERR_FORMAT'], what).to.include(r);
      if (op === 0) expect(r, `${what} was not detected`).to.equal('ERR_FORMAT');
      for (const f of files) writeFileSync(path.join(dir, f), originals[f]);
      writeFileSync(path.join(dir, 'cfg.json'), cfgText);
    }
  });

  it('CorrelationAccumulator blobs with a flipped byte are refused; alignment refuses meaningless correlations', () => {
    const rng = new Rng(606);
    using acc = new CorrelationAccumulator(10, 12);
    const codes = (m: number): SparseCodes => randomCodes(rng, 30, m, 3, (r) => 0.1 + r.next());
    acc.add(codes(10), codes(12));
    const blob = acc.serialize();
    for (let t = 0; t < 200; t++) {
      const bad = blob.slice();
      const op = rng.int(2);
      const data = op === 0 ? (bad[rng.int(bad.length)] ^= 1 << rng.int(8), bad) : bad.subarray(0, rng.int(bad.length));
      const r = attempt(`deserialize op ${op}`, () => CorrelationAccumulator.deserialize(data).dispose());
      expect(r, `corrupt blob (op ${op}) accepted`).to.equal('ERR_FORMAT');
    }
    const res = acc.result();
    for (const v of [1e30, NaN, -5, Infinity]) {
      const c = { ...res, correlation: { ...res.correlation, data: res.correlation.data.slice() } };
      c.correlation.data[rng.int(c.correlation.data.length)] = v;
      const r = attempt(`alignLatents with a correlation of ${v}`, () => alignLatents(c));
      expect(r, `correlation ${v} accepted`).to.not.equal('ok');
    }
  });

  it('solveAssignment and AlignedPair with mutated options: typed errors', async () => {
    const rng = new Rng(707);
    const cost = { rows: 5, cols: 6, data: Float64Array.from({ length: 30 }, () => rng.next()) };
    for (let t = 0; t < 150; t++) {
      const opts: Record<string, unknown> = {};
      for (const key of ['maximize', 'algorithm', 'candidates', 'returnDuals', 'device']) if (rng.next() < 0.4) opts[key] = rng.next() < 0.5 ? pick(rng, NASTY) : pick(rng, ['dense', 'sparse', 'auto', 'cpu', 2 ** 31, 4]);
      const r = attempt(`solveAssignment ${JSON.stringify(opts)}`, () => {
        const a = solveAssignment(cost, opts as never);
        expect(new Set(a.rowToCol).size).to.equal(5);
      });
      if (opts.candidates === 2 ** 31) expect(r, 'candidates 2**31 accepted').to.not.equal('ok');
    }
    using image = TopKSAE.create({ d: 4, m: 8, k: 2, seed: 0, device: 'cpu' });
    using text = TopKSAE.create({ d: 4, m: 8, k: 2, seed: 1, device: 'cpu' });
    using acc = new CorrelationAccumulator(8, 8);
    const x = randomMatrix(rng, 40, 4);
    acc.add(image.encode(x), text.encode(x));
    using pair = AlignedPair.fromCorrelation(image, text, acc.result());
    for (const side of ['audio', '', 'Image', null, 3, undefined]) expect(attempt(`encode(${String(side)})`, () => pair.encode(side as never, x)), `pair.encode(${String(side)}) accepted`).to.not.equal('ok');
    for (const dir of [null, undefined, 3, '', path.join(tmp.dir, 'nothing-here')]) expect(await attemptAsync(`AlignedPair.load(${String(dir)})`, () => AlignedPair.load(dir as never)), `AlignedPair.load(${String(dir)}) accepted`).to.not.equal('ok');
  });

  it('.npy files with mutated headers or truncated data: a file or a typed error; readRange checks its arguments', () => {
    const rng = new Rng(808);
    const good = Buffer.from(npyBytes({ rows: 6, cols: 5, data: rng.normals(30) }));
    const file = path.join(tmp.dir, 'x.npy');
    for (let t = 0; t < 200; t++) {
      const buf = Buffer.from(good);
      const op = rng.int(3);
      let data: Buffer = buf;
      if (op === 0) for (let j = 1 + rng.int(3); j > 0; j--) buf[rng.int(Math.min(buf.length, 128))] ^= 1 << rng.int(8);
      else if (op === 1) data = buf.subarray(0, rng.int(buf.length));
      else {
        const text = buf.toString('latin1');
        const v = pick(rng, ["(6.5, 5)", "('6', 5)", '(-6, 5)', '(6, 5, 2)', '()', '(99999999999999999, 5)', "'<f8'", "'|b1'", 'True']);
        data = Buffer.from(text.replace(pick(rng, ['(6, 5)', "'<f4'", 'False']), v), 'latin1');
      }
      writeFileSync(file, data);
      const r = attempt(`npy op ${op}`, () => {
        using f = EmbeddingFile.open(file);
        expect(Number.isInteger(f.rows) && Number.isInteger(f.dim)).to.equal(true);
        const out = new Float32Array(f.rows * f.dim);
        f.readRange(0, f.rows, out);
      });
      expect(['ok', 'ERR_FORMAT', 'ERR_SHAPE', 'ERR_DTYPE', 'ERR_IO'], `npy op ${op}`).to.include(r);
    }
    writeFileSync(file, good);
    using f = EmbeddingFile.open(file);
    for (const [start, count] of [[0.5, 2], [-1, 2], [0, 7], [5, 2], [NaN, 1], [0, -1], ['0', 1]] as const)
      expect(attempt(`readRange(${start}, ${count})`, () => f.readRange(start as number, count as number, new Float32Array(100))), `readRange(${start}, ${count}) accepted`).to.not.equal('ok');
  });

  it('the CLI with nasty flags exits 2 (usage) or 1 (typed failure) with a one-line message, never a stack trace', async () => {
    const rng = new Rng(909);
    const cases: string[][] = [
      ['align', '--run', tmp.dir, '--samples', 'abc'],
      ['align', '--run', tmp.dir, '--samples', '-1'],
      ['toy', '--out', path.join(tmp.dir, 'toy'), '--train-pairs', '1e12'],
      ['train', '--image', 'a.npy', '--text', 'b.npy', '--method', 'posthoc', '--batch-size', '99999999999', '--out', path.join(tmp.dir, 'r')],
      ['train', '--method', 'bogus', '--image', 'a.npy', '--text', 'b.npy', '--out', path.join(tmp.dir, 'r2')],
      ['encode', '--model', tmp.dir, '--input', '/dev/null', '--out', path.join(tmp.dir, 'c.safetensors')],
      ['synth', 'lambda-sweep'],
      ['synth', 'alpha-sweep', '--quick', '--out', path.join(tmp.dir, 'a'), '--recovery', 'bogus'],
      ['export', '--model', tmp.dir, '--format', 'bogus', '--out', path.join(tmp.dir, 'x')],
      ['export', '--model', path.join(tmp.dir, 'nothing'), '--format', 'saelens', '--out', path.join(tmp.dir, 'x')],
      ['encode', '--model', path.join(tmp.dir, 'nothing'), '--input', 'a.npy', '--out', path.join(tmp.dir, 'c2.safetensors'), '--side', 'audio'],
      ['fit', '--dataset', path.join(tmp.dir, 'missing.json'), '--out', path.join(tmp.dir, 'fit'), '--k', '0'],
      ['eval', 'retrieval', '--model', path.join(tmp.dir, 'nothing')],
      ['encode', '--model', tmp.dir, '--input', 'a.npy', '--out', path.join(tmp.dir, 'c3.safetensors'), '--batch-size', '0x10'],
      ['encode', '--model', tmp.dir, '--input', 'a.raw', '--out', path.join(tmp.dir, 'c4.safetensors'), '--shape', '0x20,128'],
      ['fit', '--dataset', path.join(tmp.dir, 'missing.json'), '--out', path.join(tmp.dir, 'fit2'), '--methods', ''],
      ['fit', '--dataset', path.join(tmp.dir, 'missing.json'), '--out', path.join(tmp.dir, 'fit3'), '--evaluations', ','],
      ['eval'],
      [],
    ];
    for (let t = 0; t < 12; t++) {
      const flag = pick(rng, ['--m', '--k', '--epochs', '--lr', '--batch-size', '--seed']);
      cases.push(['train', '--image', 'a.npy', '--text', 'b.npy', '--method', 'posthoc', flag, String(pick(rng, NASTY.filter((v) => typeof v !== 'object'))), '--out', path.join(tmp.dir, `r${t}`)]);
    }
    const write = process.stderr.write.bind(process.stderr);
    const writeOut = process.stdout.write.bind(process.stdout);
    for (const argv of cases) {
      let err = '';
      process.stderr.write = ((s: string | Uint8Array) => ((err += String(s)), true)) as typeof process.stderr.write;
      process.stdout.write = (() => true) as typeof process.stdout.write;
      let code: number;
      try {
        code = await main(argv);
      } finally {
        process.stderr.write = write;
        process.stdout.write = writeOut;
      }
      expect([1, 2], `cmsae ${argv.join(' ')} exited ${code}: ${err}`).to.include(code);
      expect(err, `cmsae ${argv.join(' ')} printed a stack trace`).to.not.match(/\n\s+at .*\(.*:\d+:\d+\)/);
      expect(err.trim().length, `cmsae ${argv.join(' ')} printed nothing`).to.be.greaterThan(0);
    }
  });
});
