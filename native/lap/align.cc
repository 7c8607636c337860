// Latent alignment: maximize sum_i C[i, perm[i]] over alive A x alive B latents (exact assignment on the
// compacted alive submatrix), then pair the leftover latents of both sides in ascending index order.
#include "align.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "../common/errors.h"
#include "../common/thread_pool.h"
#include "../common/validate.h"
#include "assignment.h"
#include "solver_policy.h"

namespace cmsae {

std::vector<int32_t> align_latents(const float* corr, int m, const uint8_t* alive_a, const uint8_t* alive_b,
                                   bool use_signed, bool device) {
  check_finite(corr, m, m, "correlation");
  const size_t total = static_cast<size_t>(m) * m;
  const float lim = 1.f + kCorrelationSlack;
  long long out_of_range = 0;
#pragma omp simd reduction(+ : out_of_range)
  for (size_t q = 0; q < total; ++q) out_of_range += !(std::fabs(corr[q]) <= lim);
  if (out_of_range)
    for (size_t q = 0; q < total; ++q)
      if (!(std::fabs(corr[q]) <= lim)) {
        char value[32];
        std::snprintf(value, sizeof value, "%g", static_cast<double>(corr[q]));
        fail("ERR_RANGE", "correlation[" + std::to_string(q / m) + ", " + std::to_string(q % m) + "] = " + value +
                              " is outside [-1, 1]: alignLatents takes Pearson correlations (CorrelationAccumulator.result()), "
                              "not co-activation counts or other scores");
      }
  std::vector<int32_t> ra, rb;  // alive latents of each side
  for (int i = 0; i < m; ++i) {
    if (alive_a[i]) ra.push_back(i);
    if (alive_b[i]) rb.push_back(i);
  }
  const long na = static_cast<long>(ra.size()), nb = static_cast<long>(rb.size());
  std::vector<int32_t> perm(m, -1);
  if (na > 0 && nb > 0) {
    std::vector<float> sub(static_cast<size_t>(na) * nb);
    const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), na)));
    parallel_for(T, [&](int t) {
      for (long r = split_begin(na, T, t); r < split_begin(na, T, t + 1); ++r) {
        const float* row = corr + static_cast<size_t>(ra[r]) * m;
        float* o = sub.data() + r * nb;
        for (long c = 0; c < nb; ++c) o[c] = use_signed ? row[rb[c]] : std::fabs(row[rb[c]]);
      }
    });
    AssignmentInput in;
    in.f32 = sub.data();
    in.rows = na;
    in.cols = nb;
    in.maximize = true;
    LapOptions opt;  // 'auto' with the default candidates
    opt.device = device;
    const AssignmentResult res = solve_assignment(in, opt);
    for (long r = 0; r < na; ++r)
      if (res.row_to_col[r] >= 0) perm[ra[r]] = rb[res.row_to_col[r]];
  }
  // Leftovers (dead latents, and alive ones the rectangular optimum left out): ascending on both sides.
  pair_leftovers(perm);
  return perm;
}

void pair_leftovers(std::vector<int32_t>& perm) {
  const int m = static_cast<int>(perm.size());
  std::vector<uint8_t> used_b(m, 0);
  for (int32_t j : perm)
    if (j >= 0) used_b[j] = 1;
  int next_b = 0;
  for (int i = 0; i < m; ++i) {
    if (perm[i] >= 0) continue;
    while (used_b[next_b]) ++next_b;
    perm[i] = next_b;
    used_b[next_b] = 1;
  }
}

}  // namespace cmsae
