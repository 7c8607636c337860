/** The evaluations on planted structure with known answers, and their bad-input errors. */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { AlignedPair, Normalizer, TopKSAE } from '../../lib/index.js';
import type { CorrelationResult } from '../../lib/align/correlation.js';
import { heterogeneity } from '../../lib/eval/heterogeneity.js';
import { smoothDensity } from '../../lib/fit/report.js';
import { checkLabels, imageConcepts, loadEvalLabels, textConcepts } from '../../lib/eval/labels.js';
import { EvalModel, loadEvalModel } from '../../lib/eval/model.js';
import { monosemanticityScores } from '../../lib/eval/monosemanticity.js';
import { evaluateReconstruction } from '../../lib/eval/reconstruction.js';
import { evaluateRetrieval, retrievalFromCodes } from '../../lib/eval/retrieval.js';
import { conceptLatent, evaluateSteering, steeringCsv } from '../../lib/eval/steering.js';
import { evaluateZeroShot } from '../../lib/eval/zeroshot.js';
import type { Matrix, SparseCodes } from '../../lib/types.js';
import { monosemanticityReference } from '../helpers/eval-references.js';
import { expectSaeError, expectSaeRejection } from '../helpers/expect-error.js';
import { tempDir } from '../helpers/tmp.js';

/** An SAE whose encoder and decoder are the identity (or a permutation of it): codes are the top-k coordinates. */
function identitySae(d: number, k: number, perm?: number[]): TopKSAE {
  const W_enc = new Float32Array(d * d), W_dec = new Float32Array(d * d);
  for (let i = 0; i < d; i++) {
    const j = perm ? perm[i] : i; // latent i reads coordinate j
    W_enc[j * d + i] = 1;
    W_dec[i * d + j] = 1;
  }
  return TopKSAE.fromWeights({ W_enc: { rows: d, cols: d, data: W_enc }, b_enc: new Float32Array(d), W_dec: { rows: d, cols: d, data: W_dec }, b_dec: new Float32Array(d) }, { k });
}

function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Rows = weight * e_c (+ small noise on the other coordinates). */
function oneHotRows(cs: number[], d: number, next: () => number, weight = 1, noise = 0.01): Matrix {
  const data = new Float32Array(cs.length * d);
  cs.forEach((c, r) => {
    for (let j = 0; j < d; j++) data[r * d + j] = noise * next();
    data[r * d + c] += weight;
  });
  return { rows: cs.length, cols: d, data };
}

describe('evaluations on planted structure', function () {
  this.timeout(60_000);
  const d = 8;

  it('retrieval: Recall@1 = 1 on an exactly aligned toy; a scrambled text index space collapses it', async () => {
    const next = rng(1);
    const imgs = oneHotRows([0, 1, 2, 3, 4, 5, 6, 7], d, next, 1, 0);
    const caps = oneHotRows([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7], d, next, 1, 0.05);
    const imageOfText = Int32Array.from({ length: 16 }, (_, t) => t >> 1);
    const sae = identitySae(d, 2);
    using model = new EvalModel(sae, sae, new Normalizer('l2'), 'shared', [sae]);
    const r = await evaluateRetrieval(model, imgs, caps, imageOfText);
    expect(r.imageToText).to.deep.equal({ r1: 1, r5: 1, r10: 1 });
    expect(r.textToImage.r1).to.equal(1);
    expect(r.nImages).to.equal(8);
    expect(r.nCaptions).to.equal(16);
    // The text SAE reads coordinate (i + 1) % d into latent i: index i no longer means the same concept.
    const img = identitySae(d, 1), txt = identitySae(d, 1, Array.from({ length: d }, (_, i) => (i + 1) % d));
    using scrambled = new EvalModel(img, txt, new Normalizer('l2'), 'unaligned', [img, txt]);
    const s = await evaluateRetrieval(scrambled, imgs, caps, imageOfText);
    expect(s.imageToText.r1).to.equal(0);
    expect(s.textToImage.r1).to.equal(0);
  });

  it('retrieval: ties count against the query (all-zero codes rank last), images without captions are left out', async () => {
    const zeros: SparseCodes = { rows: 3, k: 1, indices: new Int32Array(3), values: new Float32Array(3) };
    const r = await retrievalFromCodes(zeros, { rows: 2, k: 1, indices: new Int32Array(2), values: new Float32Array(2) }, Int32Array.from([0, 1]), 4);
    expect(r.textToImage.r10).to.equal(1);
    expect(r.textToImage.r1).to.equal(0); // rank = #items with score >= 0, minus 1 = 2
    expect(r.imagesWithoutCaptions).to.equal(1);
    expect(r.ties.textToImage.fraction).to.equal(1);
    await expectSaeRejection(retrievalFromCodes(zeros, zeros, Int32Array.from([0, 5, 1]), 4), 'ERR_SHAPE');
  });

  it('zero-shot: separable clusters are classified exactly; a latent firing on every image is filtered', async () => {
    const next = rng(2);
    const C = 4, T = 3;
    const protoClasses = Array.from({ length: C * T }, (_, i) => Math.floor(i / T));
    const prompts = oneHotRows(protoClasses, d, next, 1, 0.1);
    const labels = Int32Array.from({ length: 40 }, (_, i) => i % C);
    const images = oneHotRows(Array.from(labels), d, next, 1, 0.05);
    // A bright coordinate 7 on every image: without the filter it is each image's top latent.
    for (let r = 0; r < images.rows; r++) images.data[r * d + 7] = 0.6;
    const sae = identitySae(d, 2);
    using model = new EvalModel(sae, sae, new Normalizer('l2'), 'shared', [sae]);
    const z = await evaluateZeroShot(model, prompts, T, images, labels);
    expect(z.accuracy).to.equal(1);
    expect(z.classes).to.equal(C);
    expect(z.keptLatents).to.be.below(d);
    const all = await evaluateZeroShot(model, prompts, T, images, labels, { maxFireRate: 1 });
    expect(all.keptLatents).to.equal(d);
    // Bad inputs: prompt width, label count, class range, template count.
    await expectSaeRejection(evaluateZeroShot(model, { rows: 12, cols: 5, data: new Float32Array(60) }, T, images, labels), 'ERR_SHAPE', /expects 8/);
    await expectSaeRejection(evaluateZeroShot(model, prompts, T, images, labels.subarray(0, 10)), 'ERR_SHAPE', /labels/);
    await expectSaeRejection(evaluateZeroShot(model, prompts, T, images, labels.map((x) => x + 4)), 'ERR_RANGE');
    await expectSaeRejection(evaluateZeroShot(model, prompts, 5, images, labels), 'ERR_SHAPE', /multiple/);
    await expectSaeRejection(evaluateZeroShot(model, prompts, T, { rows: 0, cols: d, data: new Float32Array(0) }, new Int32Array(0)), 'ERR_SHAPE', /at least one/);
    await expectSaeRejection(evaluateZeroShot(model, prompts, T, images, labels, { maxFireRate: 0 }), 'ERR_ARG');
  });

  it('steering moves source images toward the planted concept (mAP rises with alpha); the concept latent is found', async () => {
    const next = rng(3);
    const nC = 4;
    // 80 images, image i carries concept i % 4 (one-hot on coordinate c, plus coordinate 4 + (i % 3) as background).
    const n = 80;
    const imgData = new Float32Array(n * d);
    const imgSets: Int32Array[] = [];
    for (let i = 0; i < n; i++) {
      const c = i % nC;
      imgData[i * d + c] = 1;
      imgData[i * d + 4 + (i % 3)] = 0.8;
      for (let j = 0; j < d; j++) imgData[i * d + j] += 0.01 * next();
      imgSets.push(Int32Array.of(c));
    }
    const images: Matrix = { rows: n, cols: d, data: imgData };
    const caps = oneHotRows(Array.from({ length: n }, (_, i) => i % nC), d, next, 1, 0.02);
    const capSets = Array.from({ length: n }, (_, i) => Int32Array.of(i % nC));
    const sae = identitySae(d, 2);
    using model = new EvalModel(sae, sae, new Normalizer('l2'), 'shared', [sae]);
    const r = await evaluateSteering(model, images, caps, ['a', 'b', 'c', 'd'], imgSets, capSets, { alphas: [0, 2], sources: 20, minOffImages: 10 });
    expect(r.concepts.evaluated).to.equal(nC);
    for (let c = 0; c < nC; c++) expect(r.perConcept.find((p) => p.concept === 'abcd'[c])!.latentText).to.equal(c);
    const [a0, a2] = r.perAlpha;
    expect(a0.alpha).to.equal(0);
    expect(a2.img.map).to.be.greaterThan(a0.img.map + 0.3);
    expect(a2.img.precisionAt['10']).to.equal(1);
    expect(a0.preserve).to.be.closeTo(1, 1e-3); // alpha = 0: the Top-K reconstruction of the source
    expect(a2.preserve).to.be.below(a0.preserve);
    // Concepts without enough off-concept images are skipped with a reason.
    const few = await evaluateSteering(model, images, caps, ['a', 'b', 'c', 'd'], imgSets, capSets, { alphas: [1], sources: 5, minOffImages: 70 });
    expect(few.concepts.skipped).to.have.length(4);
    expect(few.concepts.skipped[0].reason).to.match(/lack it/);
    await expectSaeRejection(evaluateSteering(model, images, caps, ['a'], imgSets.slice(1), capSets), 'ERR_SHAPE');
    await expectSaeRejection(evaluateSteering(model, images, caps, ['a'], imgSets, capSets, { sources: -5 }), 'ERR_ARG', /sources/);
    await expectSaeRejection(evaluateSteering(model, images, caps, ['a'], imgSets, capSets, { alphas: [] }), 'ERR_ARG', /strength/);
    const dup = await evaluateSteering(model, images, caps, ['a', 'b', 'c', 'd'], imgSets, capSets, { alphas: [1, 1], sources: 5, minOffImages: 10 });
    expect(dup.perAlpha).to.have.length(1);
    expect(dup.perConcept).to.have.length(4);
    // The strength is in units of the decoder row's norm: a row scaled by 3 steers exactly as the unit row
    // (concept 'a': its sources never use latent 0, so only the steering term sees the scale).
    const w = sae.getWeights();
    for (let j = 0; j < d; j++) w.W_dec.data[j] *= 3;
    const scaled = TopKSAE.fromWeights(w, { k: 2 });
    using scaledModel = new EvalModel(scaled, scaled, new Normalizer('l2'), 'shared', [scaled]);
    const rs = await evaluateSteering(scaledModel, images, caps, ['a', 'b', 'c', 'd'], imgSets, capSets, { alphas: [0.5, 2], sources: 20, minOffImages: 10 });
    const ru = await evaluateSteering(model, images, caps, ['a', 'b', 'c', 'd'], imgSets, capSets, { alphas: [0.5, 2], sources: 20, minOffImages: 10 });
    for (let i = 0; i < ru.perConcept.length; i++) {
      if (ru.perConcept[i].concept !== 'a') continue;
      expect(rs.perConcept[i].preserve).to.be.closeTo(ru.perConcept[i].preserve, 1e-6);
      expect(rs.perConcept[i].img.map).to.be.closeTo(ru.perConcept[i].img.map, 1e-9);
    }
  });

  it('steering records which concept slots are alive on each side; dead ones are flagged, or skipped with deadSlots: skip', async () => {
    const next = rng(13);
    const n = 80, nC = 4;
    const images = oneHotRows(Array.from({ length: n }, (_, i) => i % nC), d, next, 1, 0.02);
    const caps = oneHotRows(Array.from({ length: n }, (_, i) => i % nC), d, next, 1, 0.02);
    const sets = Array.from({ length: n }, (_, i) => Int32Array.of(i % nC));
    // Image latent 0 never fires (zero encoder column, negative bias) but keeps its decoder row e_0: the text
    // latent of concept 'a' (latent 0) is paired with a dead image latent.
    const w = identitySae(d, 1).getWeights();
    for (let r = 0; r < d; r++) w.W_enc.data[r * d] = 0;
    w.b_enc[0] = -1;
    const img = TopKSAE.fromWeights(w, { k: 1 }), txt = identitySae(d, 1);
    using model = new EvalModel(img, txt, new Normalizer('l2'), 'aligned', [img, txt]);
    const opts = { alphas: [0, 1], sources: 10, minOffImages: 10 };
    const r = await evaluateSteering(model, images, caps, ['a', 'b', 'c', 'd'], sets, sets, opts);
    expect(r.deadSlots).to.equal('flag');
    expect(r.concepts.evaluated).to.equal(4); // flagged, still scored (every method on the same concepts)
    expect(r.concepts.deadImageSlot).to.deep.equal(['a']);
    expect(r.concepts.deadTextSlot).to.deep.equal([]);
    const a = r.perConcept.find((p) => p.concept === 'a')!, b = r.perConcept.find((p) => p.concept === 'b')!;
    expect(a).to.include({ latentImage: 0, imageSlotAlive: false, imageSlotFires: 0, textSlotAlive: true, imageSlotAliveTrain: null });
    expect(a.textSlotFires).to.equal(n / nC);
    expect(b.imageSlotAlive).to.equal(true);
    expect(b.imageSlotFires).to.be.at.least(n / nC); // its own images (and some of concept a's, whose latent is dead)
    const csv = steeringCsv(r).trim().split('\n');
    const head = csv[0].split(',');
    const row = (concept: string) => csv.find((l) => l.startsWith(`${concept},`))!.split(',');
    expect(row('a')[head.indexOf('image_slot_alive')]).to.equal('0');
    expect(row('b')[head.indexOf('image_slot_alive')]).to.equal('1');
    // Training-time alive masks (an aligned pair's statistics) count too: latent 1 dead on the image side and
    // latent 2 on the text side in training, although both fire on the evaluation set.
    const trainAlive = { image: Uint8Array.from([1, 0, 1, 1, 1, 1, 1, 1]), text: Uint8Array.from([1, 1, 0, 1, 1, 1, 1, 1]) };
    using withTrain = new EvalModel(img, txt, new Normalizer('l2'), 'aligned', [], trainAlive);
    const t = await evaluateSteering(withTrain, images, caps, ['a', 'b', 'c', 'd'], sets, sets, opts);
    expect(t.concepts.deadImageSlot).to.deep.equal(['a', 'b']);
    expect(t.concepts.deadTextSlot).to.deep.equal(['c']);
    expect(t.perConcept.find((p) => p.concept === 'b')).to.include({ imageSlotAlive: false, imageSlotAliveTrain: false, imageSlotFires: b.imageSlotFires });
    const skip = await evaluateSteering(withTrain, images, caps, ['a', 'b', 'c', 'd'], sets, sets, { ...opts, deadSlots: 'skip' });
    expect(skip.concepts.evaluated).to.equal(1);
    expect(skip.perConcept.every((p) => p.concept === 'd')).to.equal(true);
    expect(skip.concepts.skipped.map((x) => x.concept)).to.deep.equal(['a', 'b', 'c']);
    expect(skip.concepts.skipped[0].reason).to.match(/image latent 0 is dead \(fires on 0 evaluation images\)/);
    expect(skip.concepts.skipped[1].reason).to.match(/image latent 1 is dead .*dead on the training pairs/);
    expect(skip.concepts.skipped[2].reason).to.match(/text latent 2 is dead/);
    // Only alive concepts enter the skip-mode means: they equal concept d's own metrics.
    expect(skip.perAlpha[1].img.map).to.equal(t.perConcept.find((p) => p.concept === 'd' && p.alpha === 1)!.img.map);
    await expectSaeRejection(evaluateSteering(model, images, caps, ['a'], sets, sets, { deadSlots: 'drop' as never }), 'ERR_ARG', /deadSlots/);
    expectSaeError(() => new EvalModel(img, txt, new Normalizer('l2'), 'aligned', [], { image: new Uint8Array(3), text: new Uint8Array(8) }), 'ERR_SHAPE');
  });

  it("an aligned pair's alive masks enter the evaluation model in the aligned frame (text latent i = original latent perm[i])", async () => {
    const m = 6;
    const { dir, cleanup } = tempDir();
    try {
      const mk = (seed: number) => TopKSAE.create({ d: 4, m, k: 2, seed, device: 'cpu' });
      using image = mk(1);
      using text = mk(2);
      // Image latent i correlates with text latent (i + 2) % m; text latent 1 and image latent 4 are dead.
      const corr = new Float32Array(m * m);
      for (let i = 0; i < m; i++) corr[i * m + ((i + 2) % m)] = 0.9;
      const aliveA = Uint8Array.from([1, 1, 1, 1, 0, 1]), aliveB = Uint8Array.from([1, 0, 1, 1, 1, 1]);
      const z = () => new Float64Array(m);
      using pair = AlignedPair.fromCorrelation(image, text, { n: 10, firesA: z(), firesB: z(), aliveA, aliveB, meanA: z(), meanB: z(), stdA: z(), stdB: z(), correlation: { rows: m, cols: m, data: corr } }, { normalizer: new Normalizer('l2') });
      await pair.save(path.join(dir, 'pair'));
      using model = await loadEvalModel(path.join(dir, 'pair'));
      expect(Array.from(model.trainAlive!.image)).to.deep.equal(Array.from(aliveA));
      expect(Array.from(model.trainAlive!.text)).to.deep.equal(Array.from(pair.perm, (j) => aliveB[j]));
      expect(Array.from(model.trainAlive!.text)).to.not.deep.equal(Array.from(aliveB)); // the frame matters here
    } finally {
      cleanup();
    }
  });

  it("a standalone SAE checkpoint is evaluated with the normalization its cfg.json records (l2 only when it records none)", async () => {
    const { dir, cleanup } = tempDir();
    try {
      using sae = TopKSAE.create({ d: 4, m: 6, k: 2, seed: 3, device: 'cpu' });
      await sae.save(path.join(dir, 'none'), { normalization: { kind: 'none' } });
      await sae.save(path.join(dir, 'bare'));
      using recorded = await loadEvalModel(path.join(dir, 'none'));
      expect(recorded.normalizer.kind).to.equal('none');
      using bare = await loadEvalModel(path.join(dir, 'bare'));
      expect(bare.normalizer.kind).to.equal('l2');
      using overridden = await loadEvalModel(path.join(dir, 'none'), { normalization: new Normalizer('l2') });
      expect(overridden.normalizer.kind).to.equal('l2');
    } finally {
      cleanup();
    }
  });

  it('conceptLatent: the largest mean difference, ties to the lowest index', () => {
    const codes: SparseCodes = { rows: 4, k: 2, indices: Int32Array.from([3, 1, 3, 2, 0, 1, 0, 2]), values: Float32Array.from([1, 0.5, 1, 0.2, 1, 0.5, 1, 0.2]) };
    expect(conceptLatent(codes, [0, 1], [2, 3], 4)).to.deep.equal({ latent: 3, diff: 1 });
    expect(conceptLatent(codes, [0, 1, 2, 3], [], 4).latent).to.equal(0);
  });

  it('monosemanticity: a latent firing only on one cluster scores 1; the sparse formula equals the O(N^2) reference', () => {
    const next = rng(4);
    const N = 60, m = 5, k = 2, D = 6;
    const ext = new Float32Array(N * D);
    const codes: SparseCodes = { rows: N, k, indices: new Int32Array(N * k), values: new Float32Array(N * k) };
    for (let r = 0; r < N; r++) {
      const cluster = r % 3;
      for (let c = 0; c < D; c++) ext[r * D + c] = (c === cluster ? 2 : 0) + (cluster === 0 ? 0 : 0.3 * (next() - 0.5));
      // latent 0 fires only on cluster 0 (identical external rows); latent 1..4 at random.
      codes.indices[r * k] = cluster === 0 ? 0 : 1 + Math.floor(next() * 4);
      codes.values[r * k] = 0.5 + next();
      codes.indices[r * k + 1] = 1 + ((codes.indices[r * k] + Math.floor(next() * 3)) % 4);
      codes.values[r * k + 1] = next() < 0.2 ? 0 : 0.3 * next();
      if (codes.indices[r * k + 1] === codes.indices[r * k]) codes.values[r * k + 1] = 0;
    }
    const external: Matrix = { rows: N, cols: D, data: ext };
    const s = monosemanticityScores(codes, external, m);
    expect(s.scores[0]).to.be.closeTo(1, 1e-9);
    for (let j = 0; j < m; j++) {
      const a = new Float64Array(N);
      for (let r = 0; r < N; r++) for (let q = 0; q < k; q++) if (codes.indices[r * k + q] === j) a[r] += codes.values[r * k + q];
      expect(s.scores[j], `latent ${j}`).to.be.closeTo(monosemanticityReference(a, external), 1e-9);
    }
    expect(s.sorted[0]).to.be.closeTo(1, 1e-9);
    expect(s.latents).to.equal(m);
    // A latent that fires on every row with different values (min > 0) matches the reference too.
    const dense: SparseCodes = { rows: N, k: 1, indices: new Int32Array(N), values: Float32Array.from({ length: N }, () => 0.2 + next()) };
    const sd = monosemanticityScores(dense, external, 1);
    expect(sd.scores[0]).to.be.closeTo(monosemanticityReference(dense.values, external), 1e-9);
    // Nearly constant activations on every row: the centred second pass keeps full precision.
    const flat: SparseCodes = { rows: N, k: 1, indices: new Int32Array(N), values: Float32Array.from({ length: N }, () => 50 + 1e-3 * next()) };
    expect(monosemanticityScores(flat, external, 1).scores[0]).to.be.closeTo(monosemanticityReference(flat.values, external), 1e-9);
    expectSaeError(() => monosemanticityScores(codes, { rows: N - 1, cols: D, data: new Float32Array((N - 1) * D) }, m), 'ERR_SHAPE', /same inputs/);
  });

  it('heterogeneity: matched pairs planted at cos = alpha land in the top correlation bin at distance 1 - alpha', () => {
    const next = rng(5);
    const m = 16, dd = 64, alpha = 0.6;
    const phi = new Float32Array(m * dd), psi = new Float32Array(m * dd);
    for (let i = 0; i < m; i++) {
      // phi_i = e_i, psi_i = alpha e_i + sqrt(1 - alpha^2) e_{32+i}
      phi[i * dd + i] = 1;
      psi[i * dd + i] = alpha;
      psi[i * dd + 32 + i] = Math.sqrt(1 - alpha * alpha);
    }
    const sae = (W: Float32Array) => {
      const enc = new Float32Array(dd * m);
      for (let i = 0; i < m; i++) for (let c = 0; c < dd; c++) enc[c * m + i] = W[i * dd + c];
      return TopKSAE.fromWeights({ W_enc: { rows: dd, cols: m, data: enc }, b_enc: new Float32Array(m), W_dec: { rows: m, cols: dd, data: W }, b_dec: new Float32Array(dd) }, { k: 2 });
    };
    using image = sae(phi);
    using text = sae(psi);
    const corr = new Float32Array(m * m);
    const perm = Int32Array.from({ length: m }, (_, i) => (i * 5) % m);
    for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) corr[i * m + j] = j === i ? 0.9 : 0.05 * next();
    const alive = new Uint8Array(m).fill(1);
    alive[3] = 0;
    const r: CorrelationResult = { n: 100, firesA: new Float64Array(m), firesB: new Float64Array(m), aliveA: alive, aliveB: new Uint8Array(m).fill(1), meanA: new Float64Array(m), meanB: new Float64Array(m), stdA: new Float64Array(m), stdB: new Float64Array(m), correlation: { rows: m, cols: m, data: corr } };
    const h = heterogeneity(image, text, r, { perm: Int32Array.from({ length: m }, (_, i) => i) });
    const top = h.bins[h.bins.length - 1];
    expect(top.pairs).to.equal(m - 1); // the dead image latent is excluded
    expect(top.meanDistance).to.be.closeTo(1 - alpha, 1e-6);
    expect(h.bins[0].pairs).to.equal((m - 1) * m - (m - 1)); // 15 alive image x 16 text latents, minus the matched
    expect(h.bins[0].meanDistance).to.be.closeTo(1, 1e-6); // orthogonal atoms
    expect(h.matched!.mean).to.be.closeTo(1 - alpha, 1e-6);
    expect(h.aliveImage).to.equal(m - 1);
    // The density integrates to 1.
    const integral = top.density.reduce((a, b) => a + b, 0) * (2 / h.distBins);
    expect(integral).to.be.closeTo(1, 1e-9);
    // perm[i] = 5i mod 16 fixes i = 0, 4, 8, 12 (distance 0.4); the other 11 alive pairs are orthogonal.
    expect(heterogeneity(image, text, r, { perm }).matched!.mean).to.be.closeTo((4 * (1 - alpha) + 11) / 15, 1e-6);
  });

  it('the Figure 2 kernel smoothing keeps the mass and the mean of a histogram density', () => {
    const w = 0.02, bins = 100;
    const dens = new Array(bins).fill(0);
    dens[30] = 10 / w / 20; // 10 of 20 pairs at 0.61, 10 at 0.81
    dens[40] = 10 / w / 20;
    const s = smoothDensity(dens, w, 20);
    const mass = s.reduce((a, b) => a + b, 0) * w;
    const mean = s.reduce((a, p, i) => a + p * (i + 0.5) * w, 0) * w;
    expect(mass).to.be.closeTo(1, 1e-3);
    expect(mean).to.be.closeTo(0.71, 1e-3);
    expect(Math.max(...s)).to.be.below(Math.max(...dens));
  });

  it('reconstruction: zero error for inputs the SAE represents exactly, FVU and MSE per modality', async () => {
    const next = rng(6);
    const x = oneHotRows([0, 1, 2, 3, 4, 5], d, next, 1, 0);
    const sae = identitySae(d, 1);
    using model = new EvalModel(sae, sae, new Normalizer('l2'), 'shared', [sae]);
    const y = oneHotRows([0, 1, 2, 3, 4, 5], d, next, 1, 0);
    y.data[1] = 1; // row 0 = e0 + e1, normalized: k = 1 keeps one coordinate
    const r = await evaluateReconstruction(model, x, y);
    expect(r.image.mse).to.equal(0);
    expect(r.text.mse).to.be.closeTo(0.5 / 6, 1e-6);
    expect(r.mse).to.be.closeTo(0.25 / 6, 1e-6);
    expect(r.text.fvu).to.be.greaterThan(0);
  });
});

describe('evaluation label files', () => {
  const { dir, cleanup } = tempDir();
  after(cleanup);
  const write = (name: string, v: unknown) => {
    const p = path.join(dir, name);
    writeFileSync(p, typeof v === 'string' ? v : JSON.stringify(v));
    return p;
  };

  it('reads our format (names or indices), matches caption words without plurals, derives image concepts from captions', async () => {
    const f = write('labels.json', { concepts: ['dog', 'traffic light', 'cat'], imageOfText: [0, 0, 1], captions: ['A Dog under a traffic light', 'two dogs', 'a cat'] });
    const l = await loadEvalLabels([f]);
    checkLabels(l, 2, 3);
    expect(textConcepts(l)!.map((s) => Array.from(s))).to.deep.equal([[0, 1], [], [2]]);
    expect(imageConcepts(l, 2)!.map((s) => Array.from(s))).to.deep.equal([[0, 1], [2]]);
    const g = await loadEvalLabels([write('l2.json', { concepts: ['dog', 'cat'], image: [['dog'], [1]], text: [[0], ['cat'], []] })]);
    expect(g.image!.map((s) => Array.from(s))).to.deep.equal([[0], [1]]);
  });

  it('reads COCO instances and captions files', async () => {
    const inst = write('instances.json', { images: [{ id: 42 }, { id: 7 }], categories: [{ id: 18, name: 'dog' }, { id: 1, name: 'person' }], annotations: [{ image_id: 7, category_id: 18 }, { image_id: 42, category_id: 1 }, { image_id: 7, category_id: 1 }] });
    const caps = write('captions.json', { images: [{ id: 42 }, { id: 7 }], annotations: [{ image_id: 7, caption: 'a dog' }, { image_id: 42, caption: 'a person' }, { image_id: 7, caption: 'a person with a dog' }] });
    const l = await loadEvalLabels([inst, caps]);
    expect(l.concepts).to.deep.equal(['person', 'dog']);
    expect(l.image!.map((s) => Array.from(s).sort())).to.deep.equal([[0], [0, 1]]);
    expect(Array.from(l.imageOfText!)).to.deep.equal([1, 0, 1]);
    expect(textConcepts(l)!.map((s) => Array.from(s))).to.deep.equal([[1], [0], [0, 1]]);
    checkLabels(l, 2, 3);
  });

  it('mismatched or foreign label files give typed errors', async () => {
    const f = write('short.json', { imageOfText: [0, 1] });
    const l = await loadEvalLabels([f]);
    expectSaeError(() => checkLabels(l, 2, 3), 'ERR_SHAPE', /one entry per caption/);
    expectSaeError(() => checkLabels({ ...l, imageOfText: Int32Array.from([0, 5, 1]) }, 2, 3), 'ERR_SHAPE', /points at image row 5/);
    expectSaeError(() => checkLabels({ ...l, imageOfText: null }, 2, 3), 'ERR_SHAPE', /no imageOfText/);
    await expectSaeRejection(loadEvalLabels([write('unknown.json', { concepts: ['dog'], text: [['cat']] })]), 'ERR_FORMAT', /does not list/);
    await expectSaeRejection(loadEvalLabels([write('bad.json', '{not json')]), 'ERR_FORMAT', /not JSON/);
    await expectSaeRejection(loadEvalLabels([write('foreign.json', { hello: 1 })]), 'ERR_FORMAT');
    await expectSaeRejection(loadEvalLabels([path.join(dir, 'missing.json')]), 'ERR_IO');
    await expectSaeRejection(loadEvalLabels([write('inst-bad.json', { images: [{ id: 1 }], categories: [{ id: 1, name: 'x' }], annotations: [{ image_id: 9, category_id: 1 }] })]), 'ERR_FORMAT', /image_id 9/);
  });
});
