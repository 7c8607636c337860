// Ranking metrics of dense queries against dense items by cosine (concept steering), and the blocked dot
// products they share with the decoder-distance histogram (histogram.cc).
#pragma once
#include <cstdint>

#include "../common/aligned.h"
#include "../sae/kernels.h"

namespace cmsae {

// Per-query outputs, each [queries]; precision/recall are [n_ks, queries] (row j is K = ks[j]).
struct RankingOutput {
  double* ap;
  double* rr;
  double* ndcg10;
  double* median_rank;
  double* precision;
  double* recall;
};

// For each query q, items ranked by s(q,i) = (dot(q, x_i) * 1/max(|q|,1e-12)) * 1/max(|x_i|,1e-12) descending,
// ties by ascending item index (a stable sort); R = the 0-based ranks of the relevant items, ascending. Then
// AP = (1/|R|) sum_j (j+1)/(R_j+1), RR = 1/(R_0+1), NDCG@10, median(R), P@K = #{R_j < K}/K, R@K = #{R_j < K}/|R|;
// every metric is NaN when no item is relevant. dot: float32 (the SIMD encode tile), norms and scaling in
// float64. Only the relevant items are sorted: O(N d + N log |R|) per query. ERR_NONFINITE on NaN/Inf input.
void ranking_metrics(const float* queries, long n_queries, const float* items, long n_items, int d,
                     const uint8_t* relevant, const int32_t* ks, int n_ks, const RankingOutput& out);

// Rows of B ([rows, d], optionally a subset `ids`) packed in panels of nr rows for encode_tile:
// data[(p*d + k)*nr + c] = B[row p*nr + c][k], zero past the last row.
struct DotPanels {
  AlignedBuffer<float> data;
  long rows = 0, panels = 0;
  int d = 0, nr = 0;
};
void pack_dot_panels(const float* B, const int32_t* ids, long rows, int d, int nr, DotPanels& out);

// Scratch for dot_block (one per task).
struct DotScratch {
  AlignedBuffer<float> Ap, tile;
};
// A good number of A rows per dot_block call when B fits in the last-level cache (8 register tiles).
long dot_block_rows(const SaeKernels& K);

// out[r*ld + c] = sum_k A[a(r)][k] * B[c][k] (float32) for r < a_rows and all c < B.rows,
// with a(r) = ids ? ids[r0 + r] : r0 + r. Each entry is summed over k in order by one lane of the encode tile,
// so equal rows give bitwise equal results.
void dot_block(const SaeKernels& K, const float* A, const int32_t* ids, long r0, long a_rows, int d, const DotPanels& B,
               DotScratch& s, float* out, long ld);

}  // namespace cmsae
