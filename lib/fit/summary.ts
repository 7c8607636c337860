/** Aggregates a fit's per-seed results: mean and spread (sample std) over seeds, in the paper's Table 1 layout. */
import type { Method } from '../train/config.js';
import type { FitSummary, MethodSeedResults, Stat } from './results.js';

export function stat(xs: (number | undefined | null)[]): Stat {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  const n = v.length;
  if (n === 0) return { mean: NaN, std: NaN, n: 0 };
  const mean = v.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}

export function summarize(results: Record<string, Record<number, MethodSeedResults>>, methods: Method[], seeds: number[]): FitSummary {
  const s: FitSummary = { table: {}, steering: {}, steeringSlots: {}, monosemanticity: {} };
  for (const m of methods) {
    const rs = seeds.map((seed) => results[m]?.[seed]).filter((r): r is MethodSeedResults => !!r);
    const col = (f: (r: MethodSeedResults) => number | undefined) => stat(rs.map(f));
    s.table[m] = {
      reconMse: col((r) => r.reconstruction?.mse),
      i2t: { r1: col((r) => r.retrieval?.imageToText.r1), r5: col((r) => r.retrieval?.imageToText.r5), r10: col((r) => r.retrieval?.imageToText.r10) },
      t2i: { r1: col((r) => r.retrieval?.textToImage.r1), r5: col((r) => r.retrieval?.textToImage.r5), r10: col((r) => r.retrieval?.textToImage.r10) },
      zsMse: col((r) => r.reconstruction?.zeroShot?.mse),
      zsAccuracy: col((r) => r.zeroshot?.accuracy),
    };
    const alphas = rs.find((r) => r.steering)?.steering?.alphas ?? [];
    if (alphas.length)
      s.steering[m] = alphas.map((alpha) => {
        const at = (f: (p: NonNullable<MethodSeedResults['steering']>['perAlpha'][number]) => number) => col((r) => {
          const p = r.steering?.perAlpha.find((q) => q.alpha === alpha);
          return p ? f(p) : undefined;
        });
        return { alpha, mapImg: at((p) => p.img.map), mrrImg: at((p) => p.img.mrr), mapTxt: at((p) => p.txt.map), mrrTxt: at((p) => p.txt.mrr), preserve: at((p) => p.preserve) };
      });
    if (rs.some((r) => r.steering))
      s.steeringSlots[m] = {
        evaluated: col((r) => r.steering?.concepts.evaluated),
        deadImageSlot: col((r) => r.steering?.concepts.deadImageSlot.length),
        deadTextSlot: col((r) => r.steering?.concepts.deadTextSlot.length),
      };
    if (rs.some((r) => r.monosemanticity)) {
      const side = (k: 'image' | 'text') => ({ mean: col((r) => r.monosemanticity?.[k].mean), median: col((r) => r.monosemanticity?.[k].median), latents: col((r) => r.monosemanticity?.[k].latents) });
      s.monosemanticity[m] = { image: side('image'), text: side('text') };
    }
  }
  return s;
}
