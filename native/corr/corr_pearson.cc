// Pearson correlation from the accumulated moments: mu_i = sum_i / n, s_i^2 = sumsq_i / n - mu_i^2 (population),
// C_ij = (S_ij/n - mu_i mu_j) / (s_i s_j), 0 wherever either latent is not alive; and its per-row / per-column top k.
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "../common/candidate_keys.h"
#include "../common/thread_pool.h"
#include "corr_accumulator.h"

namespace cmsae {
namespace {

// The k largest keys, best first, into idx/val [k] (index -1 and value 0 past the last key).
void write_top_keys(std::vector<uint64_t>& keys, int k, int32_t* idx, float* val) {
  const int keep = std::min<int>(k, static_cast<int>(keys.size()));
  std::partial_sort(keys.begin(), keys.begin() + keep, keys.end(), std::greater<uint64_t>());
  for (int s = 0; s < k; ++s) {
    const Candidate c = s < keep ? key_candidate(keys[s]) : Candidate{0.f, -1};
    idx[s] = c.index;
    val[s] = c.value;
  }
}

}  // namespace

void latent_stats(const CorrSide& s, long long rows, double min_fires, CorrResult& out) {
  const int m = static_cast<int>(s.sum.size());
  out.mean.assign(m, 0.0);
  out.std.assign(m, 0.0);
  out.alive.assign(m, 0);
  if (rows == 0) return;
  const double n = static_cast<double>(rows);
  for (int j = 0; j < m; ++j) {
    out.mean[j] = s.sum[j] / n;
    // Constant latents (never active, or always active with one value) have exactly zero variance.
    const bool constant = s.fires[j] == 0 || (s.fires[j] == n && s.min_nz[j] == s.max_nz[j]);
    const double var = constant ? 0.0 : std::max(0.0, (s.sumsq[j] - s.sum[j] * s.sum[j] / n) / n);
    out.std[j] = std::sqrt(var);
    out.alive[j] = !constant && var > 0 && s.fires[j] >= min_fires;
  }
}

void CorrAccumulator::side_stats(bool side_b, double min_fires, CorrResult& out) {
  flush();
  latent_stats(side_b ? B_ : A_, n_, min_fires, out);
}

CorrStats CorrAccumulator::stats(double min_fires) {
  CorrStats s;
  side_stats(false, min_fires, s.a);
  side_stats(true, min_fires, s.b);
  return s;
}

template <class T>
void CorrAccumulator::correlation_into(const CorrResult& a, const CorrResult& b, T* out) {
  flush();
  const double n = static_cast<double>(n_);
  // C_ij = (S_ij/n - mu_i mu_j) / (s_i s_j) = S_ij (1/(n s_i)) (1/s_j) - (mu_i/s_i)(mu_j/s_j); 0 for dead j.
  std::vector<double> inv_b(mB_, 0.0), mean_over_std_b(mB_, 0.0);
  for (int j = 0; j < mB_; ++j)
    if (b.alive[j]) {
      inv_b[j] = 1.0 / b.std[j];
      mean_over_std_b[j] = b.mean[j] / b.std[j];
    }
  const int T_ = std::max(1, std::min(num_threads(), mA_));
  parallel_for(T_, [&](int t) {
    for (long i = split_begin(mA_, T_, t); i < split_begin(mA_, T_, t + 1); ++i) {
      T* o = out + static_cast<size_t>(i) * mB_;
      if (!a.alive[i]) {
        std::fill(o, o + mB_, T(0));
        continue;
      }
      const double* row = S_.data() + static_cast<size_t>(i) * mB_;
      const double f = 1.0 / (n * a.std[i]), g = a.mean[i] / a.std[i];
      for (int j = 0; j < mB_; ++j) o[j] = static_cast<T>(row[j] * f * inv_b[j] - g * mean_over_std_b[j]);
    }
  });
}

void CorrAccumulator::correlation(const CorrResult& a, const CorrResult& b, float* out) { correlation_into(a, b, out); }
void CorrAccumulator::correlation(const CorrResult& a, const CorrResult& b, double* out) { correlation_into(a, b, out); }
void CorrAccumulator::correlation(double min_fires, float* out) {
  const CorrStats s = stats(min_fires);
  correlation_into(s.a, s.b, out);
}
void CorrAccumulator::correlation(double min_fires, double* out) {
  const CorrStats s = stats(min_fires);
  correlation_into(s.a, s.b, out);
}

void CorrAccumulator::top_correlations(const CorrResult& a, const CorrResult& b, int k, int32_t* row_idx,
                                       float* row_val, int32_t* col_idx, float* col_val) {
  flush();
  const double n = static_cast<double>(n_);
  const int T = std::max(1, std::min(num_threads(), mA_));
  // Per-thread column candidate heaps (min-heaps of keys), merged at the end.
  std::vector<std::vector<uint64_t>> col_keys(T, std::vector<uint64_t>(static_cast<size_t>(mB_) * k));
  std::vector<std::vector<int>> col_cnt(T, std::vector<int>(mB_, 0));
  parallel_for(T, [&](int t) {
    std::vector<uint64_t> keys;
    std::vector<uint64_t>& ck = col_keys[t];
    std::vector<int>& cc = col_cnt[t];
    for (long i = split_begin(mA_, T, t); i < split_begin(mA_, T, t + 1); ++i) {
      keys.clear();
      if (a.alive[i]) {
        const double* row = S_.data() + static_cast<size_t>(i) * mB_;
        for (int j = 0; j < mB_; ++j) {
          if (!b.alive[j]) continue;
          const float c = static_cast<float>((row[j] / n - a.mean[i] * b.mean[j]) / (a.std[i] * b.std[j]));
          keys.push_back(candidate_key(c, j));
          key_heap_offer(ck.data() + static_cast<size_t>(j) * k, cc[j], k, candidate_key(c, static_cast<int32_t>(i)));
        }
      }
      write_top_keys(keys, k, row_idx + i * k, row_val + i * k);
    }
  });
  const int TC = std::max(1, std::min(num_threads(), mB_));
  parallel_for(TC, [&](int t) {
    std::vector<uint64_t> keys;
    for (long j = split_begin(mB_, TC, t); j < split_begin(mB_, TC, t + 1); ++j) {
      keys.clear();
      for (int u = 0; u < T; ++u) keys.insert(keys.end(), col_keys[u].begin() + j * k, col_keys[u].begin() + j * k + col_cnt[u][j]);
      write_top_keys(keys, k, col_idx + j * k, col_val + j * k);
    }
  });
}

void CorrAccumulator::top_correlations(double min_fires, int k, int32_t* row_idx, float* row_val, int32_t* col_idx,
                                       float* col_val) {
  const CorrStats s = stats(min_fires);
  top_correlations(s.a, s.b, k, row_idx, row_val, col_idx, col_val);
}

}  // namespace cmsae
