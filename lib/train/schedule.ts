/** Learning-rate schedules: lr(step) = lr * factor(step), step = 0 for the first update. */
import { SaeError } from '../errors.js';

export type Schedule = 'constant' | 'warmup-cosine' | 'warmup-constant';

/**
 * 'constant': 1 (the reference's synthetic path). 'warmup-cosine': the reference's CC3M LambdaLR exactly:
 * warm = max(1, floor(warmupRatio * total)); s / warm while s < warm (so the first update has lr 0), then
 * 0.5 (1 + cos(pi (s - warm) / max(1, total - warm))). 'warmup-constant': the same warmup (none when
 * warmupRatio is 0), then 1.
 */
export function lrFactor(schedule: Schedule, step: number, total: number, warmupRatio: number): number {
  if (!(Number.isInteger(step) && step >= 0 && Number.isInteger(total) && total >= 1)) throw new SaeError('ERR_ARG', `schedule needs integer step >= 0 and total >= 1 (got ${step}, ${total})`);
  if (schedule === 'constant') return 1;
  if (schedule === 'warmup-cosine') {
    const warm = Math.max(1, Math.floor(warmupRatio * total));
    if (step < warm) return step / warm;
    return 0.5 * (1 + Math.cos((Math.PI * (step - warm)) / Math.max(1, total - warm)));
  }
  if (schedule === 'warmup-constant') {
    const warm = Math.floor(warmupRatio * total);
    return step < warm ? step / warm : 1;
  }
  throw new SaeError('ERR_ARG', `unknown schedule '${String(schedule)}'`);
}
