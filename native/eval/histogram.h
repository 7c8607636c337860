// Joint histogram of co-activation correlation x decoder cosine distance over alive latent pairs (the paper's
// Figure 2).
#pragma once
#include <cstdint>

namespace cmsae {

// For every pair (i, j) with alive_image[i] && alive_text[j] and c = corr[i*m_text + j] in bin b
// (edges[b] <= c < edges[b+1], the last bin closed on the right; pairs outside every bin are skipped):
//   dist = 1 - (dot(A_i, T_j) * 1/max(|A_i|,1e-12)) * 1/max(|T_j|,1e-12),  h = clamp(floor(dist/2 * dist_bins)),
//   counts[b*dist_bins + h] += 1, pairs[b] += 1, sum[b] += dist.
// dot: float32 (the SIMD encode tile); norms and distances float64. Outputs are overwritten. Alive rows are
// compacted first (dead latents cost nothing); the result does not depend on the thread count.
// Errors: ERR_ARG (edges not strictly ascending / fewer than 2 / non-finite, dist_bins < 1), ERR_NONFINITE
// (a decoder, or the correlation of an alive pair).
void decoder_distance_histogram(const float* image_dec, long m_image, const float* text_dec, long m_text, int d,
                                const float* corr, const uint8_t* alive_image, const uint8_t* alive_text,
                                const double* edges, int n_edges, int dist_bins, double* counts, double* pairs,
                                double* sum);

}  // namespace cmsae
