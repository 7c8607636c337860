// Exact retrieval ranks over sparse codes (the paper's Recall@K with ties counted against the query), through
// an inverted index over the items: no dense query x item matrix is ever formed.
#pragma once
#include <cstdint>

namespace cmsae {

// Rows of sparse codes: row r has slots s in [0, k) with latent idx[r*k+s] and value val[r*k+s] (0 = empty slot).
struct CodeRows {
  const int32_t* idx;
  const float* val;
  long rows;
  int k;
};

// Ground truth in CSR form: query q's relevant items are items[offsets[q] .. offsets[q+1]).
struct GroundTruthRows {
  const int32_t* offsets;  // [queries.rows + 1]
  const int32_t* items;    // [n_items]
  long n_items;
};

// rank(q) = #{i : s(q,i) >= t(q)} - 1 and ties(q) = #{i : s(q,i) == t(q)}, where
//   s(q,i) = sum_l qh[l] ih[l],  xh = x / max(||x||, 1e-12),  t(q) = max over q's ground-truth items of s(q,i);
// x is a code row as a sparse vector (slots with the same latent summed in slot order), norms and dot products
// in float64 summed in ascending latent order, so identical rows score bitwise identically.
// m: the number of latents (0: max index + 1 over both code sets). Every input is validated before any work:
// ERR_RANGE (an index outside [0, m), a ground-truth item outside [0, items.rows)), ERR_NONFINITE, ERR_ARG
// (offsets not ascending, a query without ground truth). Returns the m used.
long retrieval_ranks(const CodeRows& queries, const CodeRows& items, const GroundTruthRows& gt, long m, int32_t* ranks,
                     int32_t* ties);

}  // namespace cmsae
