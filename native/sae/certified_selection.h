// Per-row candidate lists of the certified encode (certified_encode.cc): the k-th-largest bound by bisection over
// the floats' order-preserving integer images, and one thread's append-only lists with their compaction.
// Include only from translation units compiled with AVX-512F.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../common/aligned.h"
#include "../common/candidate_keys.h"
#include "avx512_util.h"

namespace cmsae::certified {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr int kTightenEvery = 32;  // entries a row gathers before its threshold is recomputed after a block
constexpr int kTightenSteps = 5;   // bisection steps of that recomputation: a rough k-th bound is as good, and cheap

// GCC 12 warns falsely about the _mm512_undefined_* inside the min/max intrinsics once inlined here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

// The number of lo[0..n) >= t: per-lane counts (one masked add per 16 entries), summed at the end.
inline int count_at_least(const float* lo, int n, float t) {
  const __m512 tv = _mm512_set1_ps(t);
  const __m512i one = _mm512_set1_epi32(1);
  __m512i c = _mm512_setzero_si512();
  int i = 0;
  for (; i + 16 <= n; i += 16) c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(_mm512_loadu_ps(lo + i), tv, _CMP_GE_OQ), c, one);
  if (i < n) {
    const __mmask16 in = first_lanes(n - i);
    c = _mm512_mask_add_epi32(c, _mm512_mask_cmp_ps_mask(in, _mm512_maskz_loadu_ps(in, lo + i), tv, _CMP_GE_OQ), c, one);
  }
  return _mm512_reduce_add_epi32(c);
}

// A float L with at least k of lo[0..n) >= L, as large as `iterations` bisection steps over the order-preserving
// integer images of the floats get (32 give the exact k-th largest), and never below `above` (returned as it is when
// fewer than k reach it, or n < k). Vectorized counting: cheaper than a selection algorithm for the few hundred
// entries of a row.
inline float kth_largest_bound(const float* lo, int n, int k, int iterations, float above = -kInf) {
  if (k <= 0 || n < k) return above;
  __m512 vmn = _mm512_set1_ps(lo[0]), vmx = vmn;
  for (int i = 0; i < n; i += 16) {
    const __m512 v = _mm512_mask_loadu_ps(vmn, first_lanes(n - i), lo + i);  // masked-off lanes repeat lo[0]
    vmn = _mm512_min_ps(vmn, v);
    vmx = _mm512_max_ps(vmx, v);
  }
  float mn = _mm512_reduce_min_ps(vmn);
  const float mx = _mm512_reduce_max_ps(vmx);
  if (above > mn) {  // search above a bound already known: fewer steps, or none when it is not beaten
    if (count_at_least(lo, n, above) < k) return above;
    mn = above;
  }
  // count(>= value(a)) >= k, count(>= value(b)) = 0 < k (b may be one past the largest key: 64-bit)
  uint64_t a = float_order_bits(mn), b = static_cast<uint64_t>(float_order_bits(mx)) + 1;
  for (int it = 0; it < iterations && b - a > 1; ++it) {
    const uint64_t mid = a + (b - a) / 2;
    const bool enough = count_at_least(lo, n, float_from_order_bits(static_cast<uint32_t>(mid))) >= k;
    a = enough ? mid : a;
    b = enough ? b : mid;
  }
  return float_from_order_bits(static_cast<uint32_t>(a));
}

// The keep = min(n, k) largest of the distinct keys[0..n), in descending order, to out[0..keep): each key's rank (the
// number of keys above it) is counted against 8 keys at a time, and the key is stored at its rank (ranks >= k go to
// the spare slot out[k]). O(n^2) but branch-free: cheaper than sorting the few dozen candidates of a row. out has
// room for k + 1 keys.
inline int top_keys_by_rank(const uint64_t* keys, int n, int k, uint64_t* out) {
  for (int i = 0; i < n; ++i) {
    const __m512i ki = _mm512_set1_epi64(static_cast<long long>(keys[i]));
    int rank = 0;
    for (int j = 0; j < n; j += 8) {
      const __mmask8 in = static_cast<__mmask8>(first_lanes(n - j));
      rank += __builtin_popcount(_mm512_mask_cmpgt_epu64_mask(in, _mm512_maskz_loadu_epi64(in, keys + j), ki));
    }
    out[std::min(rank, k)] = keys[i];
  }
  return std::min(n, k);
}

// The k-th largest of v[0..n) exactly (-inf when n < k), for n <= kRankMost: the v[i] with fewer than k values above
// it and at least k at or above it, found by counting against 16 values at a time (no dependent bisection steps).
constexpr int kRankMost = 64;
inline float kth_largest_small(const float* v, int n, int k) {
  if (k <= 0 || n < k) return -kInf;
  float best = -kInf;
  for (int i = 0; i < n; ++i) {
    const __m512 vi = _mm512_set1_ps(v[i]);
    int above = 0, at_least = 0;
    for (int j = 0; j < n; j += 16) {
      const __mmask16 in = first_lanes(n - j);
      const __m512 x = _mm512_maskz_loadu_ps(in, v + j);
      above += __builtin_popcount(_mm512_mask_cmp_ps_mask(in, x, vi, _CMP_GT_OQ));
      at_least += __builtin_popcount(_mm512_mask_cmp_ps_mask(in, x, vi, _CMP_GE_OQ));
    }
    best = (above < k && at_least >= k) ? std::max(best, v[i]) : best;
  }
  return best;
}

// The k-th largest of v[0..n) exactly (-inf when n < k).
inline float kth_largest(const float* v, int n, int k) {
  return n <= kRankMost ? kth_largest_small(v, n, k) : kth_largest_bound(v, n, k, 32);
}

#pragma GCC diagnostic pop

// One thread's state of one selection (the main Top-K or AuxK) for the rows of a pass. Per row, an append-only list
// of offered latents (upper end, lower end, index) that is compacted when full: L = the k-th largest lower end kept
// is a lower bound of the row's k-th float32 value, so entries whose upper end is below max(L, floor+) can go, and
// so can later offers below it (thr). A row whose compaction frees too little overflows (the float32 path takes it).
struct Selection {
  int k = 0, cap = 0;
  float floor_up = 0;  // smallest float above the floor
  AlignedBuffer<float> up, lo;
  AlignedBuffer<int32_t> js;
  std::vector<int32_t> n;  // entries per row; < 0: the row overflowed
  std::vector<float> thr;  // admission threshold per row (+inf: closed)
  std::vector<int32_t> fresh;  // entries appended per row since its last compaction
  long long offers = 0;  // entries appended (CMSAE_PROFILE)

  void reset(long rows, int k_, int cap_, float floor) {
    k = k_;
    cap = cap_;
    floor_up = std::nextafter(floor, kInf);
    const size_t need = static_cast<size_t>(std::max<long>(1, rows * cap));
    if (up.size() < need) {
      up.reset(need);
      lo.reset(need);
      js.reset(need);
    }
    n.assign(rows, 0);
    thr.assign(rows, k > 0 ? floor_up : kInf);
    fresh.assign(rows, 0);
    offers = 0;
  }
  void close_row(long r) { thr[r] = kInf; }

  // The k-th largest lower end among row r's entries (-inf when fewer than k).
  float kth_lower(long r, int iterations, float above) {
    return kth_largest_bound(lo.data() + r * cap, n[r], k, iterations, above);
  }
  // Drops row r's entries whose upper end is below t = max(k-th lower end, thresholds) and raises thr[r] to t.
  void compact(long r, float shared, int iterations) {
    const float t = kth_lower(r, iterations, std::max(thr[r], shared));
    float* u = up.data() + r * cap;
    float* l = lo.data() + r * cap;
    int32_t* j = js.data() + r * cap;
    const __m512 tv = _mm512_set1_ps(t);
    int w = 0;
    for (int i = 0; i < n[r]; i += 16) {  // in place: each store lands at or below the chunk just read
      const __mmask16 in = first_lanes(n[r] - i);
      const __m512 uv = _mm512_maskz_loadu_ps(in, u + i);
      const __mmask16 keep = _mm512_mask_cmp_ps_mask(in, uv, tv, _CMP_GE_OQ);
      const __mmask16 out = first_lanes(__builtin_popcount(keep));
      _mm512_mask_storeu_ps(u + w, out, _mm512_maskz_compress_ps(keep, uv));
      _mm512_mask_storeu_ps(l + w, out, _mm512_maskz_compress_ps(keep, _mm512_maskz_loadu_ps(in, l + i)));
      _mm512_mask_storeu_epi32(j + w, out, _mm512_maskz_compress_epi32(keep, _mm512_maskz_loadu_epi32(in, j + i)));
      w += __builtin_popcount(keep);
    }
    n[r] = w;
    thr[r] = t;
    fresh[r] = 0;
  }
  // Appends one entry to row r (compacting a full list first); false when the row overflowed.
  bool push(long r, float u, float l, int32_t j, float shared) {
    if (n[r] == cap) {
      compact(r, shared, 20);
      if (n[r] + 32 > cap) {  // the compaction freed too little: the float32 path takes the row
        n[r] = -1;
        thr[r] = kInf;
        return false;
      }
      if (u < thr[r]) return true;  // below the raised threshold: nothing to keep
    }
    const long at = r * cap + n[r];
    up.data()[at] = u;
    lo.data()[at] = l;
    js.data()[at] = j;
    ++n[r];
    ++fresh[r];
    ++offers;
    return true;
  }
  // After a block: tightens row r's threshold once enough entries arrived since the last compaction (offers then
  // stay near k ln(m/k) instead of filling the list first).
  void tighten(long r, float shared) {
    if (n[r] >= k && thr[r] != kInf && fresh[r] >= kTightenEvery) compact(r, shared, kTightenSteps);
  }
};

// Entries per row of a selection: room for the k best, the bound's window and slack so compactions stay rare.
inline int selection_cap(int k, long m) { return static_cast<int>(std::min<long>(m, 4L * k) + 64); }

}  // namespace cmsae::certified
