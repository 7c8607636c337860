// Top-k candidates ordered by (value desc, index asc) and the final per-row selection.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace cmsae {

struct Candidate {
  float value;
  int32_t index;
};

// a ranks before b: larger value first, then smaller index (the deterministic tie rule).
inline bool ranks_before(const Candidate& a, const Candidate& b) {
  return a.value > b.value || (a.value == b.value && a.index < b.index);
}

// Sorts candidates best-first, keeps the first `k`, and writes them to idx/val. Missing slots (fewer
// than k candidates) get value 0 and the smallest latent indices not already used, in ascending order.
void finalize_row(std::vector<Candidate>& cands, int k, int m, int32_t* idx, float* val);

}  // namespace cmsae
