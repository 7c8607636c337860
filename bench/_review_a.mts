import { copyFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { generateToy, writeToy } from '../lib/eval/toy.js';
import { readManifest } from '../lib/eval/inputs.js';
import { fit } from '../lib/fit/fit.js';
const dir = '/tmp/rev/a'; rmSync(dir, { recursive: true, force: true });
const SMALL = { d: 32, objects: 8, imageAttributes: 4, textAttributes: 4, trainPairs: 2000, evalImages: 120, captionsPerImage: 2, zeroShotImages: 100, templates: 2, externalDim: 16, seed: 3 };
const CONFIG = { sae: { m: 64, k: 4 }, train: { epochs: 2, batchSize: 128, lr: 2e-3 } };
const man = await writeToy(path.join(dir, 'toy'), generateToy(SMALL));
const other = await writeToy(path.join(dir, 'toy2'), generateToy({ ...SMALL, seed: 9 }));
const ev: string[] = [];
const run = async () => { ev.length = 0; const r = await fit({ out: path.join(dir, 'fit'), inputs: await readManifest(man), methods: ['shared'], config: CONFIG, evaluations: ['reconstruction', 'retrieval', 'zeroshot'], onEvent: (e) => { if (e.type === 'train' || e.type === 'eval') ev.push(`${e.type}:${(e as any).evaluation ?? ''}:${e.status}`); } }); return r; };
const r1 = await run(); console.log(ev.join(' '), 'zsMse', r1.results.shared[0].reconstruction?.zeroShot?.mse, 'acc', r1.results.shared[0].zeroshot?.accuracy);
// 1) replace zero-shot images (same path, new content) -> reconstruction should recompute its zeroShot MSE
await new Promise((r) => setTimeout(r, 20));
copyFileSync(path.join(dir, 'toy2', 'zeroshot_images.npy'), path.join(dir, 'toy', 'zeroshot_images.npy'));
const r2 = await run(); console.log(ev.join(' '), 'zsMse', r2.results.shared[0].reconstruction?.zeroShot?.mse, 'acc', r2.results.shared[0].zeroshot?.accuracy);
// 2) replace training data (same path, new content) -> training should not be reused
copyFileSync(path.join(dir, 'toy2', 'train_image.npy'), path.join(dir, 'toy', 'train_image.npy'));
copyFileSync(path.join(dir, 'toy2', 'train_text.npy'), path.join(dir, 'toy', 'train_text.npy'));
const r3 = await run(); console.log(ev.join(' '));
