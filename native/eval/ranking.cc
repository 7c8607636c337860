// AP, RR, NDCG@10, median rank, P@K and R@K of the relevant items' ranks under cosine similarity, without a
// full sort per query: only the relevant items are sorted, every other item is placed by binary search.
#include "ranking.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../common/errors.h"
#include "../common/memory.h"
#include "../common/thread_pool.h"
#include "../common/validate.h"

namespace cmsae {
namespace {

constexpr int kMaxTile = 64;  // bound on the kernels' mr and nr

// 1 / max(sqrt(sum_k x[k]^2), 1e-12) per row, the squares summed in float64 in column order.
std::vector<double> inverse_norms(const float* x, long rows, int d) {
  std::vector<double> inv(rows);
  const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), rows / 4096 + 1)));
  parallel_for(T, [&](int t) {
    for (long r = split_begin(rows, T, t); r < split_begin(rows, T, t + 1); ++r) {
      const float* p = x + r * d;
      double ss = 0.0;
      for (int k = 0; k < d; ++k) ss += static_cast<double>(p[k]) * p[k];
      inv[r] = 1.0 / std::max(std::sqrt(ss), 1e-12);
    }
  });
  return inv;
}

}  // namespace

// data[(p*d + k)*nr + c] = B[ids(p*nr + c)][k], 0 past the last row.
void pack_dot_panels(const float* B, const int32_t* ids, long rows, int d, int nr, DotPanels& out) {
  out.rows = rows;
  out.d = d;
  out.nr = nr;
  out.panels = (rows + nr - 1) / nr;
  out.data.reset(static_cast<size_t>(out.panels) * d * nr);
  const long P = out.panels;
  const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), P / 64 + 1)));
  parallel_for(T, [&](int t) {
    for (long p = split_begin(P, T, t); p < split_begin(P, T, t + 1); ++p) {
      float* dst = out.data.data() + static_cast<size_t>(p) * d * nr;
      for (int c = 0; c < nr; ++c) {
        const long row = p * nr + c;
        if (row >= rows) {
          for (int k = 0; k < d; ++k) dst[static_cast<size_t>(k) * nr + c] = 0.f;
          continue;
        }
        const float* src = B + static_cast<size_t>(ids ? ids[row] : row) * d;
        for (int k = 0; k < d; ++k) dst[static_cast<size_t>(k) * nr + c] = src[k];
      }
    }
  });
}

long dot_block_rows(const SaeKernels& K) { return 8L * K.mr; }

// out[r*ld + c] = sum_k A[a(r)][k] * B[c][k]: packed A rows against every packed B panel, panel-major so that one
// B panel stays in L1 while the block's A panels (in L2) stream past it.
void dot_block(const SaeKernels& K, const float* A, const int32_t* ids, long r0, long a_rows, int d, const DotPanels& B,
               DotScratch& s, float* out, long ld) {
  const int mr = K.mr, nr = K.nr;
  require(mr <= kMaxTile && nr <= kMaxTile && nr == B.nr && d == B.d, "ERR_INTERNAL", "dot_block: tile mismatch");
  const long mp = (a_rows + mr - 1) / mr;
  if (s.Ap.size() < static_cast<size_t>(mp) * mr * d) s.Ap.reset(static_cast<size_t>(mp) * mr * d);
  if (s.tile.size() < static_cast<size_t>(mr) * nr) s.tile.reset(static_cast<size_t>(mr) * nr);
  for (long u = 0; u < mp; ++u) {
    float* dst = s.Ap.data() + static_cast<size_t>(u) * d * mr;
    for (int r = 0; r < mr; ++r) {
      const long row = u * mr + r;
      if (row >= a_rows) {
        for (int k = 0; k < d; ++k) dst[static_cast<size_t>(k) * mr + r] = 0.f;
        continue;
      }
      const float* src = A + static_cast<size_t>(ids ? ids[r0 + row] : r0 + row) * d;
      for (int k = 0; k < d; ++k) dst[static_cast<size_t>(k) * mr + r] = src[k];
    }
  }
  float bias[kMaxTile] = {}, thr[kMaxTile];
  uint32_t masks[kMaxTile];
  std::fill(thr, thr + kMaxTile, std::numeric_limits<float>::infinity());
  for (long p = 0; p < B.panels; ++p) {
    const float* Bp = B.data.data() + static_cast<size_t>(p) * d * nr;
    const long c0 = p * nr;
    const long nc = std::min<long>(nr, B.rows - c0);
    for (long u = 0; u < mp; ++u) {
      K.encode_tile(d, s.Ap.data() + static_cast<size_t>(u) * d * mr, Bp, bias, thr, s.tile.data(), masks, true);
      const long nrows = std::min<long>(mr, a_rows - u * mr);
      for (long r = 0; r < nrows; ++r)
        std::memcpy(out + (u * mr + r) * ld + c0, s.tile.data() + r * nr, static_cast<size_t>(nc) * sizeof(float));
    }
  }
}

// AP = (1/|R|) sum_j (j+1)/(R_j+1), RR = 1/(R_0+1), NDCG@10 = DCG/IDCG, median(R), P@K = #{R_j<K}/K,
// R@K = #{R_j<K}/|R|, with R the ascending 0-based ranks of the relevant items by (cosine desc, index asc).
void ranking_metrics(const float* queries, long n_queries, const float* items, long n_items, int d,
                     const uint8_t* relevant, const int32_t* ks, int n_ks, const RankingOutput& out) {
  require(n_queries >= 1 && n_items >= 1 && d >= 1, "ERR_SHAPE", "ranking needs at least one query, one item and d >= 1");
  require(n_items <= 0x7fffffffL, "ERR_SHAPE", "at most 2^31 - 1 items");
  require(n_ks >= 0, "ERR_ARG", "ks: negative length");
  for (int j = 0; j < n_ks; ++j)
    if (ks[j] < 1) fail("ERR_ARG", "ks must be integers >= 1, got " + std::to_string(ks[j]));
  check_finite(queries, n_queries, d, "queries");
  check_finite(items, n_items, d, "items");

  const long Q = n_queries, N = n_items;
  std::vector<int32_t> rel;
  for (long i = 0; i < N; ++i)
    if (relevant[i]) rel.push_back(static_cast<int32_t>(i));
  const long nrel = static_cast<long>(rel.size());
  if (nrel == 0) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (long q = 0; q < Q; ++q) out.ap[q] = out.rr[q] = out.ndcg10[q] = out.median_rank[q] = nan;
    std::fill(out.precision, out.precision + static_cast<size_t>(n_ks) * Q, nan);
    std::fill(out.recall, out.recall + static_cast<size_t>(n_ks) * Q, nan);
    return;
  }

  // Query blocks of BR rows: every block streams all packed items from memory once, so blocks are large (8 to 32
  // register tiles, keeping that traffic small next to the arithmetic) but many enough to share the threads.
  const SaeKernels& K = kernels();
  const int T = num_threads();
  const long tiles = std::min<long>(32, std::max<long>(8, (Q + 4L * T * K.mr - 1) / (4L * T * K.mr)));
  const long BR = tiles * K.mr;
  const long n_blocks = (Q + BR - 1) / BR;
  const int tasks = static_cast<int>(std::max<long>(1, std::min<long>(n_blocks, 8L * T)));
  require_memory(static_cast<double>(N) * d * 4 + static_cast<double>(std::min<long>(tasks, T)) * N * (BR * 4 + 8),
                 "ranking " + std::to_string(N) + " items");
  const std::vector<double> inv_q = inverse_norms(queries, Q, d), inv_x = inverse_norms(items, N, d);
  double inv_log2[10];
  for (int r = 0; r < 10; ++r) inv_log2[r] = 1.0 / std::log2(r + 2.0);
  double idcg = 0.0;
  for (long j = 0; j < std::min<long>(nrel, 10); ++j) idcg += inv_log2[j];
  DotPanels panels;
  pack_dot_panels(items, nullptr, N, d, K.nr, panels);
  const long n_buckets = 2 * nrel;

  parallel_for(tasks, [&](int t) {
    DotScratch scratch;
    AlignedBuffer<float> dots(static_cast<size_t>(BR) * N);
    std::vector<double> score(N), rs(nrel);
    std::vector<int32_t> order(nrel), ri(nrel);
    std::vector<int64_t> diff(nrel + 1), R(nrel), first(n_buckets + 1);
    for (long b = split_begin(n_blocks, tasks, t); b < split_begin(n_blocks, tasks, t + 1); ++b) {
      const long q0 = b * BR, rows = std::min(BR, Q - q0);
      dot_block(K, queries, nullptr, q0, rows, d, panels, scratch, dots.data(), N);
      for (long r = 0; r < rows; ++r) {
        const long q = q0 + r;
        const float* dq = dots.data() + r * N;
        const double iq = inv_q[q];
        for (long i = 0; i < N; ++i) score[i] = (static_cast<double>(dq[i]) * iq) * inv_x[i];
        // The relevant items in ranking order (rs: scores, ri: indices).
        std::copy(rel.begin(), rel.end(), order.begin());
        std::sort(order.begin(), order.end(),
                  [&](int32_t a, int32_t c) { return score[a] > score[c] || (score[a] == score[c] && a < c); });
        for (long j = 0; j < nrel; ++j) {
          rs[j] = score[order[j]];
          ri[j] = order[j];
        }
        // Every other item i is counted in front of the relevant ones it precedes: it precedes exactly the
        // relevant positions >= p(i) = #{j : rs_j > s_i or (rs_j == s_i and ri_j < i)}. The score range
        // [rs_last, rs_0] is cut into 2 nrel equal buckets (first[e]: the first relevant position in bucket e);
        // bucket() is monotone, so p lies in the item's own bucket and the search is O(1) on average.
        const double hi = rs[0], lo = rs[nrel - 1];
        double scale = hi > lo ? static_cast<double>(n_buckets) / (hi - lo) : 0.0;
        if (!std::isfinite(scale)) scale = 0.0;  // a range too narrow to cut: one bucket
        auto bucket = [&](double s) { return std::min<long>(n_buckets - 1, static_cast<long>((hi - s) * scale)); };
        std::fill(first.begin(), first.end(), 0);
        for (long j = 0; j < nrel; ++j) ++first[bucket(rs[j]) + 1];
        for (long e = 0; e < n_buckets; ++e) first[e + 1] += first[e];
        std::fill(diff.begin(), diff.end(), 0);
        for (long i = 0; i < N; ++i) {
          const double s = score[i];
          if (relevant[i] || s < lo) continue;  // below every relevant item (s == lo is decided in the bucket)
          if (s > hi) {
            ++diff[0];
            continue;
          }
          const long e = bucket(s);
          long a = first[e], c = first[e + 1];  // rs_j > s before a, rs_j < s from c on
          while (a < c) {
            const long mid = (a + c) / 2;
            if (rs[mid] > s || (rs[mid] == s && ri[mid] < i)) a = mid + 1;
            else c = mid;
          }
          ++diff[a];
        }
        int64_t ahead = 0;
        for (long j = 0; j < nrel; ++j) R[j] = j + (ahead += diff[j]);
        double ap = 0.0, dcg = 0.0;
        for (long j = 0; j < nrel; ++j) ap += static_cast<double>(j + 1) / static_cast<double>(R[j] + 1);
        for (long j = 0; j < nrel && R[j] < 10; ++j) dcg += inv_log2[R[j]];
        out.ap[q] = ap / static_cast<double>(nrel);
        out.rr[q] = 1.0 / static_cast<double>(R[0] + 1);
        out.ndcg10[q] = dcg / idcg;
        out.median_rank[q] = nrel % 2 ? static_cast<double>(R[nrel / 2])
                                      : (static_cast<double>(R[nrel / 2 - 1]) + static_cast<double>(R[nrel / 2])) / 2.0;
        for (int j = 0; j < n_ks; ++j) {
          const long hits = std::lower_bound(R.begin(), R.end(), static_cast<int64_t>(ks[j])) - R.begin();
          out.precision[static_cast<size_t>(j) * Q + q] = static_cast<double>(hits) / static_cast<double>(ks[j]);
          out.recall[static_cast<size_t>(j) * Q + q] = static_cast<double>(hits) / static_cast<double>(nrel);
        }
      }
    }
  });
}

}  // namespace cmsae
