// Top-k candidates ordered by (value desc, index asc) and the final per-row selection.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../common/candidate_keys.h"

namespace cmsae {

// Sorts candidates best-first, keeps the first `k`, and writes them to idx/val. Missing slots (fewer
// than k candidates) get value 0 and the smallest latent indices not already used, in ascending order.
void finalize_row(std::vector<Candidate>& cands, int k, int m, int32_t* idx, float* val);
// The same for candidates given as keys (candidate_key); reorders `keys`.
void finalize_keys(std::vector<uint64_t>& keys, int k, int m, int32_t* idx, float* val);

}  // namespace cmsae
