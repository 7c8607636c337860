// Top-k candidates ordered by (value desc, index asc) and the final per-row selection.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
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

// Candidates as 64-bit keys whose unsigned order is the ranking order (value desc, then index asc):
// high word = order-preserving bits of the value (-0 folded into +0), low word = ~index.
inline uint64_t candidate_key(float v, int32_t j) {
  uint32_t u;
  v += 0.f;
  std::memcpy(&u, &v, 4);
  u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  return (static_cast<uint64_t>(u) << 32) | (0xFFFFFFFFu - static_cast<uint32_t>(j));
}
inline Candidate key_candidate(uint64_t key) {
  uint32_t u = static_cast<uint32_t>(key >> 32);
  u = (u & 0x80000000u) ? (u & 0x7FFFFFFFu) : ~u;
  float v;
  std::memcpy(&v, &u, 4);
  return {v, static_cast<int32_t>(0xFFFFFFFFu - static_cast<uint32_t>(key))};
}

// Sorts candidates best-first, keeps the first `k`, and writes them to idx/val. Missing slots (fewer
// than k candidates) get value 0 and the smallest latent indices not already used, in ascending order.
void finalize_row(std::vector<Candidate>& cands, int k, int m, int32_t* idx, float* val);
// The same for candidates given as keys (candidate_key); reorders `keys`.
void finalize_keys(std::vector<uint64_t>& keys, int k, int m, int32_t* idx, float* val);

}  // namespace cmsae
