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

// Min-heap of keys (root = worst kept): insert `key` into h[0..n).
inline void key_heap_push(uint64_t* h, int n, uint64_t key) {
  int i = n;
  while (i > 0) {
    const int parent = (i - 1) >> 1;
    if (h[parent] <= key) break;
    h[i] = h[parent];
    i = parent;
  }
  h[i] = key;
}
// Replace the root of the full heap h[0..n) by `key` (> root) and restore the heap order.
inline void key_heap_replace_top(uint64_t* h, int n, uint64_t key) {
  int i = 0;
  for (;;) {
    int l = 2 * i + 1;
    if (l >= n) break;
    if (l + 1 < n && h[l + 1] < h[l]) ++l;
    if (key <= h[l]) break;
    h[i] = h[l];
    i = l;
  }
  h[i] = key;
}

// Offers `key` to the min-heap h[0..n) of capacity k (root = the worst kept key). Returns true when the
// heap is full afterwards, so that its root is the threshold a later key must beat.
inline bool key_heap_offer(uint64_t* h, int& n, int k, uint64_t key) {
  if (n < k) {
    key_heap_push(h, n++, key);
    return n == k;
  }
  if (key > h[0]) key_heap_replace_top(h, k, key);
  return true;
}

// Sorts candidates best-first, keeps the first `k`, and writes them to idx/val. Missing slots (fewer
// than k candidates) get value 0 and the smallest latent indices not already used, in ascending order.
void finalize_row(std::vector<Candidate>& cands, int k, int m, int32_t* idx, float* val);
// The same for candidates given as keys (candidate_key); reorders `keys`.
void finalize_keys(std::vector<uint64_t>& keys, int k, int m, int32_t* idx, float* val);

}  // namespace cmsae
