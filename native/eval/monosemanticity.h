// MonoSemanticity score of every latent (Pach et al.; the paper's Figure 8) from sparse codes and an external
// embedding of the same inputs, without forming the N x N similarity matrix.
#pragma once
#include <cstdint>

#include "retrieval.h"  // CodeRows

namespace cmsae {

// For latent j with activations a over the N rows (a_r: the sum of the row's slots of j in slot order, float64;
// 0 where it is silent), a~ = (a - lo) / max(hi - lo, 1e-12) (lo, hi: min and max of a), and E the external
// rows L2-normalized (norms clamped at 1e-12):
//   MS_j = (||E^T a~||^2 - sum a~^2) / ((sum a~)^2 - sum a~^2),  0 when the denominator <= 1e-12,
// NaN when fires_j (rows with a_r != 0) < min_fires. E^T a~ = (E^T a - lo E^T 1) / range; a latent active in
// every row takes its sums in a second, centred pass. Every sum is float64 in row order, so the result does
// not depend on the thread count, and on codes that name a latent at most once per row (every SAE's) it equals
// lib's former TypeScript loops bit for bit (those counted a repeated latent's slots as separate rows). scores[m]
// and fires[m] are overwritten. Errors: ERR_RANGE (a nonzero slot's latent outside [0, m)), ERR_NONFINITE (an
// external value), ERR_ARG (min_fires < 1).
void monosemanticity_scores(const CodeRows& codes, const float* external, int d_ext, long m, long min_fires, double* scores,
                            double* fires);

}  // namespace cmsae
