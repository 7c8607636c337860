// The exact alignment assignment when the mA x mB correlation does not fit: maximize sum C'(i, j) over alive A
// latents i (rows) and alive B latents j (columns), C' = C (signed) or |C|, with C read from co-firing rows
// re-formed from the codes (cofire_pass.h) and the rank-one value -g_i h_j wherever a pair never co-fires.
// Certified like the dense sparse path (Lee & Orlin's sparsify and price out): candidates -> exact sparse JV ->
// pricing -> violators -> re-solve; the pricing pass bounds every rank-one entry of a row at once with a lower
// envelope of the columns' lines (O(m log m)), reads the row's co-firing entries, and scans the whole row only
// when the envelope cannot certify it.
#pragma once
#include <cstdint>
#include <vector>

#include "../lap/assignment.h"
#include "../lap/solver_policy.h"
#include "cofire_pass.h"
#include "pearson_terms.h"

namespace cmsae::coact {

struct LargeAlignOptions {
  bool use_signed = true;
  int candidates = kDefaultCandidates;  // row candidates (each column keeps max(2, k/8) more)
  double cache_bytes = 0;    // co-firing entries are kept between rounds when they fit in this (8 bytes each)
  int max_rounds = 1000;
};

struct LargeAlignStats {
  int rounds = 0, warm_rounds = 0;
  long violations = 0;     // entries the pricing passes added
  long edges = 0;          // edges of the final sparse graph
  long weak_rows = 0;      // rows given extra candidates in the first graph
  long rows_scanned = 0;   // rows read whole because their envelope bound did not certify them (all rounds)
  double cofire_pairs = 0; // alive pairs that co-fire
  int row_passes = 0;      // passes over the codes (N K^2 updates each)
  bool cached = false;     // co-firing entries kept in memory after the first pass
};

// Bytes the solve plans beyond the layout and the per-thread rows (graph, candidates, heaps, envelope), for
// na x nb alive latents, k candidates and T threads.
double large_solver_bytes(long long na, long long nb, int k, int threads);

// ra / rb: the alive A / B latents (ascending); terms from the same statistics. The result is over the
// na x nb problem in the maximize sense (duals included); matched_c[r] is the signed correlation of row r's
// match (0 when unmatched).
AssignmentResult solve_large_alignment(const CofireLayout& L, const PearsonTerms& terms, const std::vector<int32_t>& ra,
                                       const std::vector<int32_t>& rb, const LargeAlignOptions& opt,
                                       std::vector<float>& matched_c, LargeAlignStats* stats);

}  // namespace cmsae::coact
