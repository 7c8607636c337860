/**
 * The small JSON files that decide how embeddings are encoded carry checksums: an aligned pair's alignment.json,
 * a run's normalization.json and its checkpoint's state.json. An edit or a bit flip is refused; a checkpoint whose
 * recorded normalization disagrees with its run's normalization.json is refused by encode.
 */
import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { main } from '../../lib/cli/main.js';
import { sealJson, unsealJson } from '../../lib/io/json-seal.js';
import { AlignedPair, Trainer, readRunNormalizer, writeNpy } from '../../lib/index.js';
import { expectSaeError, expectSaeRejection } from '../helpers/expect-error.js';
import { plantedSuite } from '../helpers/planted-suite.js';

async function cli(argv: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const write = process.stderr.write.bind(process.stderr), writeOut = process.stdout.write.bind(process.stdout);
  process.stderr.write = ((s: string | Uint8Array) => ((err += String(s)), true)) as typeof process.stderr.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    return { code: await main(argv), err };
  } finally {
    process.stderr.write = write;
    process.stdout.write = writeOut;
  }
}

describe('sealed JSON files (alignment.json, normalization.json, state.json)', function () {
  this.timeout(120_000);
  const { dir, data: p } = plantedSuite({ n: 600, d: 16, C: 8, active: 2 });

  it('sealJson / unsealJson: round trip, any edit refused, unsealed files pass unless a seal is required', () => {
    const obj = { format_version: 2, n: 3, normalization: { kind: 'l2' } };
    expect(unsealJson(sealJson(obj), 'f')).to.deep.equal(obj);
    const edited = sealJson(obj).replace('"l2"', '"none"');
    expectSaeError(() => unsealJson(edited, 'f'), 'ERR_FORMAT', /corrupt or was edited/);
    expect(unsealJson(JSON.stringify(obj), 'f')).to.deep.equal(obj);
    expectSaeError(() => unsealJson(JSON.stringify(obj), 'f', { required: true }), 'ERR_FORMAT', /no checksum/);
    expectSaeError(() => unsealJson('null', 'f'), 'ERR_FORMAT', /JSON object/);
  });

  it("a pair's alignment.json and a run's normalization.json and state.json refuse edits; encode refuses a disagreeing normalization", async () => {
    const out = path.join(dir, 'run');
    const cfg = {
      method: 'posthoc' as const,
      data: { image: { path: p.imagePath }, text: { path: p.textPath }, normalization: 'center+l2' as const },
      sae: { m: 32, k: 2 },
      train: { epochs: 1, batchSize: 100, lr: 4e-3, checkpointEvery: 2 },
    };
    await new Trainer(cfg, { out }).run();
    const pairDir = path.join(out, 'final', 'pair');
    const metaFile = path.join(pairDir, 'alignment.json');
    const meta = readFileSync(metaFile, 'utf8');
    writeFileSync(metaFile, meta.replace('"center+l2"', '"l2"'));
    await expectSaeRejection(AlignedPair.load(pairDir), 'ERR_FORMAT', /corrupt or was edited/);
    writeFileSync(metaFile, meta);
    (await AlignedPair.load(pairDir)).dispose();

    const normFile = path.join(out, 'normalization.json');
    const norm = readFileSync(normFile, 'utf8');
    const j = JSON.parse(norm) as { mean: { image: number[] } };
    j.mean.image[0] += 0.3;
    writeFileSync(normFile, JSON.stringify(j));
    await expectSaeRejection(readRunNormalizer(out), 'ERR_FORMAT', /corrupt or was edited/);
    // Resealed (as if it came from another run): the checkpoint's own record disagrees.
    writeFileSync(normFile, sealJson(j as unknown as Record<string, unknown>));
    const input = path.join(dir, 'x.npy');
    await writeNpy(input, { rows: 4, cols: 16, data: Float32Array.from({ length: 64 }, (_, i) => Math.cos(i)) });
    const r = await cli(['encode', '--model', path.join(out, 'final', 'image'), '--input', input, '--out', path.join(dir, 'codes.safetensors')]);
    expect(r.code, r.err).to.equal(1);
    expect(r.err).to.match(/ERR_FORMAT: .*normalization\.json \(center\+l2\) disagrees with the normalization recorded in/);
    writeFileSync(normFile, norm);
    const ok = await cli(['encode', '--model', path.join(out, 'final', 'image'), '--input', input, '--out', path.join(dir, 'codes.safetensors')]);
    expect(ok.code, ok.err).to.equal(0);

    const stateFile = path.join(out, 'checkpoint', 'state.json');
    const state = readFileSync(stateFile, 'utf8');
    expect(state).to.match(/"step": [1-9]/);
    writeFileSync(stateFile, state.replace(/"step": (\d+)/, (_m, v: string) => `"step": ${Number(v) - 1}`));
    await expectSaeRejection(new Trainer(await Trainer.loadConfig(out), { out, resume: true }).run(), 'ERR_FORMAT', /corrupt or was edited/);
  });
});
