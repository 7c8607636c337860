// counts[b][h] += 1, pairs[b] += 1, sum[b] += dist for alive (i, j) with corr_ij in bin b, dist = 1 - cos(A_i, T_j),
// h = min(H-1, floor(dist/2 * H)): threads over blocks of alive image rows, counts merged, sums in block order.
#include "histogram.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <string>
#include <vector>

#include "../common/errors.h"
#include "../common/memory.h"
#include "../common/thread_pool.h"
#include "../common/validate.h"
#include "ranking.h"

namespace cmsae {
namespace {

std::vector<double> inverse_norms(const float* x, const std::vector<int32_t>& ids, long m, int d) {
  std::vector<double> inv(m, 0.0);
  for (const int32_t r : ids) {
    const float* p = x + static_cast<size_t>(r) * d;
    double ss = 0.0;
    for (int k = 0; k < d; ++k) ss += static_cast<double>(p[k]) * p[k];
    inv[r] = 1.0 / std::max(std::sqrt(ss), 1e-12);
  }
  return inv;
}

}  // namespace

// counts[b*H + h] = #{alive (i,j) : corr_ij in [e_b, e_{b+1}), h = min(H-1, floor((1 - cos(A_i, T_j))/2 * H))}.
void decoder_distance_histogram(const float* image_dec, long m_image, const float* text_dec, long m_text, int d,
                                const float* corr, const uint8_t* alive_image, const uint8_t* alive_text,
                                const double* edges, int n_edges, int dist_bins, double* counts, double* pairs,
                                double* sum) {
  require(m_image >= 1 && m_text >= 1 && d >= 1, "ERR_SHAPE", "the histogram needs m_image, m_text and d >= 1");
  require(m_image <= 0x7fffffffL && m_text <= 0x7fffffffL, "ERR_SHAPE", "at most 2^31 - 1 latents per side");
  require(n_edges >= 2, "ERR_ARG", "corrEdges needs at least 2 entries");
  for (int b = 0; b < n_edges; ++b) {
    if (!std::isfinite(edges[b])) fail("ERR_ARG", "corrEdges[" + std::to_string(b) + "] is not finite");
    if (b > 0 && !(edges[b] > edges[b - 1]))
      fail("ERR_ARG", "corrEdges must be strictly ascending, but corrEdges[" + std::to_string(b) + "] = " +
                          std::to_string(edges[b]) + " <= corrEdges[" + std::to_string(b - 1) + "]");
  }
  require(dist_bins >= 1 && dist_bins <= (1 << 24), "ERR_ARG", "distBins must be an integer in [1, 2^24]");
  check_finite(image_dec, m_image, d, "imageDec");
  check_finite(text_dec, m_text, d, "textDec");
  std::vector<int32_t> ids_a, ids_t;
  for (long i = 0; i < m_image; ++i)
    if (alive_image[i]) ids_a.push_back(static_cast<int32_t>(i));
  for (long j = 0; j < m_text; ++j)
    if (alive_text[j]) ids_t.push_back(static_cast<int32_t>(j));
  for (const int32_t i : ids_a) {
    const float* row = corr + static_cast<size_t>(i) * m_text;
    for (const int32_t j : ids_t)
      if (!std::isfinite(row[j]))
        fail("ERR_NONFINITE", std::string("corr has a non-finite value (") + (std::isnan(row[j]) ? "NaN" : "Inf") +
                                  ") at row " + std::to_string(i) + ", column " + std::to_string(j) +
                                  " (both latents alive): repair it or mark a latent dead");
  }

  const int nb = n_edges - 1;
  const size_t H = static_cast<size_t>(dist_bins);
  std::fill(counts, counts + nb * H, 0.0);
  std::fill(pairs, pairs + nb, 0.0);
  std::fill(sum, sum + nb, 0.0);
  const long na = static_cast<long>(ids_a.size()), nt = static_cast<long>(ids_t.size());
  if (na == 0 || nt == 0) return;

  const SaeKernels& K = kernels();
  const long BR = dot_block_rows(K);
  require_memory(static_cast<double>(nt) * d * 4 + static_cast<double>(num_threads()) * (BR * nt * 4 + nb * H * 8),
                 "the decoder-distance histogram");
  const std::vector<double> inv_a = inverse_norms(image_dec, ids_a, m_image, d), inv_t = inverse_norms(text_dec, ids_t, m_text, d);
  DotPanels panels;
  pack_dot_panels(text_dec, ids_t.data(), nt, d, K.nr, panels);

  // One block of BR alive image rows per task (independent of the thread count): integer counts are merged in
  // any order, the float sums per task and then in task order.
  const long n_tasks = (na + BR - 1) / BR;
  require(n_tasks <= 0x7fffffffL, "ERR_SHAPE", "too many image latents");
  std::vector<double> task_sum(static_cast<size_t>(n_tasks) * nb, 0.0);
  std::mutex merge;
  parallel_for(static_cast<int>(n_tasks), [&](int t) {
    DotScratch scratch;
    AlignedBuffer<float> dots(static_cast<size_t>(BR) * nt);
    std::vector<double> c_local(nb * H, 0.0), p_local(nb, 0.0);
    double* s_local = task_sum.data() + static_cast<size_t>(t) * nb;
    const long r0 = t * BR, rows = std::min(BR, na - r0);
    dot_block(K, image_dec, ids_a.data(), r0, rows, d, panels, scratch, dots.data(), nt);
    for (long r = 0; r < rows; ++r) {
      const int32_t i = ids_a[r0 + r];
      const double ia = inv_a[i];
      const float* crow = corr + static_cast<size_t>(i) * m_text;
      const float* drow = dots.data() + r * nt;
      for (long c = 0; c < nt; ++c) {
        const int32_t j = ids_t[c];
        const double cv = crow[j];
        int b = static_cast<int>(std::upper_bound(edges, edges + n_edges, cv) - edges) - 1;
        if (b < 0) continue;
        if (b == nb) {
          if (cv != edges[nb]) continue;
          b = nb - 1;
        }
        const double dist = 1.0 - (static_cast<double>(drow[c]) * ia) * inv_t[j];
        const double h = std::min(static_cast<double>(H - 1), std::max(0.0, std::floor((dist / 2.0) * static_cast<double>(H))));
        c_local[b * H + static_cast<size_t>(h)] += 1.0;
        p_local[b] += 1.0;
        s_local[b] += dist;
      }
    }
    std::lock_guard<std::mutex> lock(merge);
    for (size_t e = 0; e < nb * H; ++e) counts[e] += c_local[e];
    for (int b = 0; b < nb; ++b) pairs[b] += p_local[b];
  });
  for (long t = 0; t < n_tasks; ++t)
    for (int b = 0; b < nb; ++b) sum[b] += task_sum[static_cast<size_t>(t) * nb + b];
}

}  // namespace cmsae
