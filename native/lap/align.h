// Post-hoc latent alignment: the permutation that maximizes total correlation between alive latents.
#pragma once
#include <cstdint>
#include <vector>

namespace cmsae {

// perm[i] = B latent matched to A latent i, a bijection over all m latents (mA == mB == m):
// alive x alive pairs from the optimal assignment on C (signed) or |C|, then the remaining latents of
// both sides paired in ascending index order. C holds Pearson correlations: an entry outside
// [-1 - kCorrelationSlack, 1 + kCorrelationSlack] is ERR_RANGE, NaN/Inf ERR_NONFINITE (checked first). The
// assignment is solve_assignment's (solver_policy.h) with the default options on `device`.
constexpr float kCorrelationSlack = 1e-4f;
std::vector<int32_t> align_latents(const float* corr, int m, const uint8_t* alive_a, const uint8_t* alive_b,
                                   bool use_signed, bool device = false);

// Completes a partial matching perm (B latent or -1 for each of the m A latents, no B latent twice) into a
// bijection: the unmatched latents of both sides paired in ascending index order.
void pair_leftovers(std::vector<int32_t>& perm);

}  // namespace cmsae
