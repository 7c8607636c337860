/**
 * Training configurations that cannot be trained as asked are refused up front, each with a message that
 * says what to change (instead of being adjusted silently, e.g. `--method posthoc --m 64 --k 33` used to
 * build two 33-latent SAEs with k = 33); and each pair loss has its own default lambda.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { latentsPerSae, pairLossWeight, PAIR_LOSS_WEIGHT_DEFAULTS, parseConfig } from '../../lib/train/config.js';
import { expectSaeError } from '../helpers/expect-error.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const data = { image: { path: 'img.npy' }, text: { path: 'txt.npy' } };
const cfg = (o: Record<string, unknown>) => ({ method: 'posthoc', data, ...o });

describe('training configuration: impossible combinations and defaults', () => {
  it('k above the latents of each SAE is refused with what to change; the boundary is accepted', () => {
    const e = expectSaeError(() => parseConfig(cfg({ sae: { m: 64, k: 33 } })), 'ERR_ARG');
    expect(e.message).to.match(/sae\.k: k = 33 is more than the 32 latents each modality SAE of method 'posthoc' gets/);
    expect(e.message).to.match(/lower sae\.k to at most 32, raise sae\.m to at least 66, or set sae\.latentsPerModality to 'full'/);
    expectSaeError(() => parseConfig(cfg({ method: 'separate', sae: { m: 65, k: 33 } })), 'ERR_ARG', /32 latents/); // odd m rounds down
    const ok = parseConfig(cfg({ sae: { m: 64, k: 32 } }));
    expect(latentsPerSae(ok)).to.equal(32);
    expect(latentsPerSae(parseConfig(cfg({ sae: { m: 64, k: 33, latentsPerModality: 'full' } })))).to.equal(64);
    expectSaeError(() => parseConfig(cfg({ sae: { m: 64, k: 65, latentsPerModality: 'full' } })), 'ERR_ARG', /k = 65 is more than the 64 latents of the SAE \(sae\.m = 64\): lower sae\.k to at most 64 or raise sae\.m to at least 65/);
    for (const method of ['shared', 'shared+iso', 'shared+group']) {
      expect(latentsPerSae(parseConfig(cfg({ method, sae: { m: 64, k: 33 } }))), method).to.equal(64); // one SAE of m latents
      expectSaeError(() => parseConfig(cfg({ method, sae: { m: 64, k: 65 } })), 'ERR_ARG', /latents of the SAE/);
    }
  });

  it('a validation file without its pair, and CUDA with BatchTopK or AuxK, are refused', () => {
    expectSaeError(() => parseConfig(cfg({ data: { ...data, valImage: { path: 'v.npy' } } })), 'ERR_ARG', /data\.valText: data\.valImage is given without it/);
    expectSaeError(() => parseConfig(cfg({ data: { ...data, valText: { path: 'v.npy' } } })), 'ERR_ARG', /data\.valImage: data\.valText is given without it/);
    expect(parseConfig(cfg({ data: { ...data, valImage: { path: 'a' }, valText: { path: 'b' } } })).data.valText).to.deep.equal({ path: 'b' });
    expectSaeError(() => parseConfig(cfg({ sae: { activation: 'batchtopk' }, train: { device: 'cuda' } })), 'ERR_ARG', /train\.device: the CUDA backend runs sae\.activation 'topk' without AuxK/);
    expectSaeError(() => parseConfig(cfg({ sae: { auxCoef: 0.1 }, train: { device: 'cuda' } })), 'ERR_ARG', /auxCoef 0\.1/);
    expect(parseConfig(cfg({ sae: { activation: 'batchtopk' }, train: { device: 'auto' } })).sae.activation).to.equal('batchtopk'); // auto runs it on the CPU
    // Every problem is listed at once.
    const e = expectSaeError(() => parseConfig(cfg({ sae: { m: 8, k: 5 }, data: { ...data, valText: { path: 'v' } } })), 'ERR_ARG');
    expect(e.message.split('\n')).to.have.length(3);
  });

  it('each pair loss has its own default lambda (iso-inner is not iso), and an explicit lambda wins', () => {
    expect(PAIR_LOSS_WEIGHT_DEFAULTS).to.deep.equal({ iso: 1e-4, 'iso-inner': 2e-4, group: 0.05 });
    expect(pairLossWeight(parseConfig(cfg({ method: 'shared+iso' })))).to.equal(1e-4);
    expect(pairLossWeight(parseConfig(cfg({ method: 'shared+iso', train: { isoVariant: 'iso-inner' } })))).to.equal(2e-4);
    expect(pairLossWeight(parseConfig(cfg({ method: 'shared+group' })))).to.equal(0.05);
    expect(pairLossWeight(parseConfig(cfg({ method: 'shared+iso', train: { isoVariant: 'iso-inner', pairLossWeight: 0.3 } })))).to.equal(0.3);
    expect(pairLossWeight(parseConfig(cfg({ method: 'posthoc' })))).to.equal(0);
  });

  it('cmsae train --method posthoc --m 64 --k 33 exits 2 before reading any data, saying what to change', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'test', 'helpers', 'cli-entry.ts'), 'train', '--image', 'missing.npy', '--text', 'missing.npy', '--method', 'posthoc', '--m', '64', '--k', '33', '--out', path.join(root, 'never-written')], { cwd: root, encoding: 'utf8' });
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/cmsae: ERR_ARG: invalid training configuration: sae\.k: k = 33 is more than the 32 latents .*raise sae\.m to at least 66/);
  });
});
