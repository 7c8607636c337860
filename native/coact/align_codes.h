// Post-hoc alignment straight from a code store, for any mA, mB whose codes fit: the per-latent statistics, a
// memory plan, then either the dense path (the alive correlation submatrix in float32 and the usual certified
// assignment) or the large-m path (large_assign.h) -- the same float32 correlations, the same exact optimum.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "code_store.h"
#include "large_assign.h"

namespace cmsae {

enum class AlignPath { Auto, Dense, Large };

struct AlignCodesOptions {
  bool use_signed = true;
  double min_fires = 1;
  AlignPath path = AlignPath::Auto;
  double memory_budget = 0;  // bytes; 0: half of physical memory
  int candidates = kDefaultCandidates;  // large-m path: row candidates
  bool keep_cofiring = true; // large-m path: keep co-firing entries between rounds when they fit the budget
};

// What each path would hold at its peak (bytes), decided before anything large is allocated.
struct AlignMemoryPlan {
  double budget = 0;
  double codes = 0;    // the store (already held)
  double layout = 0;   // codes grouped for the row passes
  double scratch = 0;  // one re-formed row per thread
  double dense = 0;    // dense path: the alive correlation submatrix and its solver
  double large = 0;    // large-m path: graph, candidates, heaps, envelope
  double cache = 0;    // large-m path: room left for keeping co-firing entries between rounds
  double dense_total() const { return codes + layout + scratch + dense; }
  double large_total() const { return codes + layout + scratch + large; }
  bool use_large = false;
};

struct AlignCodesResult {
  long long n = 0;
  CorrSide side_a, side_b;  // moments (fires among them)
  CorrStats stats;          // mean, std, alive per side
  std::vector<int32_t> row_to_col;  // [mA]: B latent matched to each A latent, -1 when unmatched
  std::vector<int32_t> perm;        // [mA] when mA == mB: a bijection (leftovers paired in ascending order)
  std::vector<float> matched;       // [mA]: correlation of i with its partner (0 when either is not alive)
  double objective = 0;             // sum of C' over the matched alive pairs
  // Duals of the alive problem in the maximize sense (u_i + v_j >= C'_ij over alive pairs, equality on matched
  // ones), by latent; 0 for latents that are not alive.
  std::vector<double> dual_a, dual_b;
  AlignMemoryPlan plan;
  coact::LargeAlignStats large;
  double seconds_stats = 0, seconds_layout = 0, seconds_solve = 0;
};

// The plan for na x nb alive latents (ERR_NOMEM when the path asked for, or both under 'auto', exceed the budget,
// naming what would fit).
AlignMemoryPlan plan_alignment(const CodeStore& store, long long na, long long nb, const AlignCodesOptions& opt);

AlignCodesResult align_codes(const CodeStore& store, const AlignCodesOptions& opt);

// The dense mA x mB float32 correlation of the store's codes (the bits both paths use; 0 wherever either latent
// is not alive at min_fires). ERR_NOMEM when it cannot fit.
void codes_correlation(const CodeStore& store, double min_fires, float* out);

}  // namespace cmsae
