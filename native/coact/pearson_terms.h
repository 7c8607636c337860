// Pearson correlation of two latents from their co-moment: C_ij = S_ij * f_i * inv_j - g_i * h_j with
// f_i = 1/(n s_i), g_i = mu_i/s_i, inv_j = 1/s_j, h_j = mu_j/s_j, evaluated in float64 in exactly
// CorrAccumulator's order and rounded to float32, so the dense and the large-m path see the same bits.
// A pair that never co-fires (S_ij = 0) is the rank-one value float(-g_i h_j).
#pragma once
#include <vector>

#include "../corr/corr_accumulator.h"

namespace cmsae::coact {

struct PearsonTerms {
  std::vector<double> f, g;    // [mA]; 0 for latents that are not alive
  std::vector<double> inv, h;  // [mB]
};

inline PearsonTerms pearson_terms(const CorrStats& s, long long rows) {
  PearsonTerms t;
  const double n = static_cast<double>(rows);
  const size_t mA = s.a.alive.size(), mB = s.b.alive.size();
  t.f.assign(mA, 0.0);
  t.g.assign(mA, 0.0);
  t.inv.assign(mB, 0.0);
  t.h.assign(mB, 0.0);
  for (size_t i = 0; i < mA; ++i)
    if (s.a.alive[i]) {
      t.f[i] = 1.0 / (n * s.a.std[i]);
      t.g[i] = s.a.mean[i] / s.a.std[i];
    }
  for (size_t j = 0; j < mB; ++j)
    if (s.b.alive[j]) {
      t.inv[j] = 1.0 / s.b.std[j];
      t.h[j] = s.b.mean[j] / s.b.std[j];
    }
  return t;
}

inline float pearson(double s, double f, double g, double inv, double h) { return static_cast<float>(s * f * inv - g * h); }

}  // namespace cmsae::coact
