// Top-k candidate keys and their heaps, and the tie scrambling of the certified assignment's keys: one
// definition for the CPU kernels (encode, correlation, assignment), the CUDA kernels and the CPU emulation.
// A candidate key is a 64-bit word whose unsigned order is the ranking order (value desc, then index asc).
// scramble(index, salt_of(row or column)) is a bijection of 32-bit words: a heavily tied matrix must not send
// every row of the assignment to the same lowest-index columns.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define CMSAE_HOST_DEVICE __host__ __device__
#else
#define CMSAE_HOST_DEVICE
#endif

namespace cmsae {

struct Candidate {
  float value;
  int32_t index;
};

// a ranks before b: larger value first, then smaller index (the deterministic tie rule).
CMSAE_HOST_DEVICE inline bool ranks_before(const Candidate& a, const Candidate& b) {
  return a.value > b.value || (a.value == b.value && a.index < b.index);
}

// Order-preserving image of a float's bits: unsigned order = float order (-0 just below +0, NaN-free inputs).
CMSAE_HOST_DEVICE inline uint32_t float_order_bits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
CMSAE_HOST_DEVICE inline float float_from_order_bits(uint32_t u) {
  u = (u & 0x80000000u) ? (u & 0x7FFFFFFFu) : ~u;
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}

// Candidates as 64-bit keys whose unsigned order is the ranking order (value desc, then index asc):
// high word = float_order_bits of the value (-0 folded into +0), low word = ~index.
CMSAE_HOST_DEVICE inline uint64_t candidate_key(float v, int32_t j) {
  return (static_cast<uint64_t>(float_order_bits(v + 0.f)) << 32) | (0xFFFFFFFFu - static_cast<uint32_t>(j));
}
CMSAE_HOST_DEVICE inline Candidate key_candidate(uint64_t key) {
  return {float_from_order_bits(static_cast<uint32_t>(key >> 32)), static_cast<int32_t>(0xFFFFFFFFu - static_cast<uint32_t>(key))};
}

// Min-heap of keys (root = worst kept): insert `key` into h[0..n).
CMSAE_HOST_DEVICE inline void key_heap_push(uint64_t* h, int n, uint64_t key) {
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
CMSAE_HOST_DEVICE inline void key_heap_replace_top(uint64_t* h, int n, uint64_t key) {
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
CMSAE_HOST_DEVICE inline bool key_heap_offer(uint64_t* h, int& n, int k, uint64_t key) {
  if (n < k) {
    key_heap_push(h, n++, key);
    return n == k;
  }
  if (key > h[0]) key_heap_replace_top(h, k, key);
  return true;
}

// The padding of a top-k row with fewer than k positive candidates: slots [keep, k) get value 0 and the smallest
// latent indices not among idx[0, keep) (the CPU engine's and the CUDA encode's convention).
CMSAE_HOST_DEVICE inline void pad_row(int keep, int k, int m, int32_t* idx, float* val) {
  int s = keep;
  for (int32_t j = 0; s < k && j < m; ++j) {
    bool used = false;
    for (int t = 0; t < keep; ++t) used |= (idx[t] == j);
    if (used) continue;
    idx[s] = j;
    val[s] = 0.f;
    ++s;
  }
}

// ---- tie scrambling of the assignment's candidate keys ----
CMSAE_HOST_DEVICE inline uint32_t salt_of(long x) { return static_cast<uint32_t>(x) * 0x85EBCA6Bu + 0x27D4EB2Fu; }
CMSAE_HOST_DEVICE inline int32_t scramble(long index, uint32_t salt) {
  return static_cast<int32_t>((static_cast<uint32_t>(index) ^ salt) * 0x9E3779B1u);
}
// The inverse of scramble for the index field of a key (0x0E8B2F51 is the inverse of 0x9E3779B1 mod 2^32).
CMSAE_HOST_DEVICE inline long unscramble_index(uint32_t field, uint32_t salt) { return static_cast<long>((field * 0x0E8B2F51u) ^ salt); }

}  // namespace cmsae
