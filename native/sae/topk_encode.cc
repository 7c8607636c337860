// Fused Top-K encode: pre = W_enc (x - b_dec) + b_enc, register-tiled GEMM whose epilogue feeds
// per-row bounded heaps, z = TopK_k(ReLU(pre)). Work is split over latent ranges (and row ranges
// when there are few latents); per-range candidates are merged per row at the end.
#include "topk_encode.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "../common/aligned.h"
#include "../common/thread_pool.h"
#include "kernels.h"
#include "topk_select.h"

namespace cmsae {
namespace {

constexpr long kBlockBytes = 160 * 1024;  // packed encoder block kept in L2 per task

// Xp[panel][k][mr] = x[panel*mr + r][k] - b_dec[k]; rows past `rows` are zero.
void pack_inputs(const float* x, long rows, int d, const float* b_dec, int mr, float* Xp) {
  long panels = (rows + mr - 1) / mr;
  int T = std::max(1, std::min<int>(num_threads(), static_cast<int>(panels)));
  parallel_for(T, [&](int t) {
    for (long p = split_begin(panels, T, t); p < split_begin(panels, T, t + 1); ++p) {
      float* dst = Xp + p * d * mr;
      for (int r = 0; r < mr; ++r) {
        long row = p * mr + r;
        if (row < rows) {
          const float* src = x + row * d;
          if (b_dec)
            for (int k = 0; k < d; ++k) dst[k * mr + r] = src[k] - b_dec[k];
          else
            for (int k = 0; k < d; ++k) dst[k * mr + r] = src[k];
        } else {
          for (int k = 0; k < d; ++k) dst[k * mr + r] = 0.f;
        }
      }
    }
  });
}

}  // namespace

// Transposed in 16-deep chunks so the rows are read sequentially and each written chunk stays in L1.
void pack_encoder_panels(const EncoderView& enc, long p0, long p1, int nr, float* Bp, float* bias_p) {
  constexpr int KC = 16;
  const int d = enc.d;
  for (long p = p0; p < p1; ++p) {
    float* __restrict dst = Bp + (p - p0) * d * nr;
    float* bdst = bias_p + (p - p0) * nr;
    const int valid = static_cast<int>(std::max<long>(0, std::min<long>(nr, enc.m - p * nr)));
    const float* src = enc.W_rows + p * nr * d;
    int k0 = 0;
    for (; k0 + KC <= d; k0 += KC) {
      for (int c = 0; c < valid; ++c) {
        const float* __restrict s = src + static_cast<long>(c) * d + k0;
        float* __restrict o = dst + static_cast<long>(k0) * nr + c;
        for (int kk = 0; kk < KC; ++kk) o[kk * nr] = s[kk];
      }
    }
    for (int c = 0; c < valid; ++c)
      for (int kk = k0; kk < d; ++kk) dst[static_cast<long>(kk) * nr + c] = src[static_cast<long>(c) * d + kk];
    for (int c = valid; c < nr; ++c)
      for (int kk = 0; kk < d; ++kk) dst[static_cast<long>(kk) * nr + c] = 0.f;
    for (int c = 0; c < nr; ++c) bdst[c] = c < valid ? enc.b_enc[p * nr + c] : -std::numeric_limits<float>::infinity();
  }
}

namespace {

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

}  // namespace

void topk_encode(const EncoderView& enc, const float* x, long rows, int k, float floor, int32_t* idx,
                 float* val, const AuxSelect* aux) {
  if (rows <= 0) return;
  const SaeKernels& K = kernels();
  const int mr = K.mr, nr = K.nr, d = enc.d;
  const long row_panels = (rows + mr - 1) / mr;
  const long lat_panels = (enc.m + nr - 1) / nr;
  const int T = num_threads();

  // Task grid: latent ranges x row ranges.
  int t_lat = static_cast<int>(std::min<long>(T, lat_panels));
  if (lat_panels < 4L * T) t_lat = 1;
  int t_row = static_cast<int>(std::max<long>(1, std::min<long>(T / t_lat, row_panels)));
  const int tasks = t_lat * t_row;
  const int k_aux = aux ? aux->k : 0;

  // Packed inputs: a per-thread buffer reused across calls (no page faults per call) up to 16 MiB.
  const size_t xp_len = static_cast<size_t>(row_panels) * d * mr;
  thread_local AlignedBuffer<float> xp_cache;
  AlignedBuffer<float> xp_local;
  AlignedBuffer<float>* xp_buf = &xp_local;
  if (xp_len * sizeof(float) <= (16u << 20)) xp_buf = &xp_cache;
  if (xp_buf->size() < xp_len) xp_buf->reset(xp_len);
  AlignedBuffer<float>& Xp = *xp_buf;
  pack_inputs(x, rows, d, enc.b_dec, mr, Xp.data());

  // Candidate storage: for each task, its row range x k (and x k_aux).
  std::vector<std::vector<Candidate>> heaps(tasks), aux_heaps(tasks);
  std::vector<std::vector<int>> heap_sizes(tasks), aux_sizes(tasks);

  // Dead bits per latent panel (aux only).
  std::vector<uint32_t> dead_bits;
  if (aux) {
    dead_bits.assign(lat_panels, 0u);
    for (long j = 0; j < enc.m; ++j)
      if (aux->dead[j]) dead_bits[j / nr] |= 1u << (j % nr);
  }

  const long block_panels = std::max<long>(1, kBlockBytes / (static_cast<long>(d) * nr * 4));
  const bool prepacked = enc.packed_W != nullptr && enc.packed_bias != nullptr && enc.packed_nr == nr;

  parallel_for(tasks, [&](int task) {
    const int tl = task / t_row, tr = task % t_row;
    const long lp0 = split_begin(lat_panels, t_lat, tl), lp1 = split_begin(lat_panels, t_lat, tl + 1);
    const long rp0 = split_begin(row_panels, t_row, tr), rp1 = split_begin(row_panels, t_row, tr + 1);
    const long r0 = rp0 * mr, r1 = std::min(rows, rp1 * mr);
    const long nrows = r1 - r0;

    // Per-row bounded min-heaps of candidate keys (integer compares); the row threshold is the worst
    // kept value once k are kept.
    std::vector<uint64_t> store(static_cast<size_t>(nrows) * k);
    std::vector<int>& count = heap_sizes[task];
    count.assign(nrows, 0);
    std::vector<float> thr(static_cast<size_t>(rp1 - rp0) * mr, std::numeric_limits<float>::infinity());
    for (long r = 0; r < nrows; ++r) thr[r] = k > 0 ? floor : std::numeric_limits<float>::infinity();

    std::vector<Candidate> aux_store;
    std::vector<CandidateHeap> aux_row_heaps;
    std::vector<float> aux_thr;
    if (aux) {
      aux_store.resize(static_cast<size_t>(nrows) * k_aux);
      aux_row_heaps.reserve(nrows);
      for (long r = 0; r < nrows; ++r) aux_row_heaps.emplace_back(aux_store.data() + r * k_aux, k_aux);
      aux_thr.assign(nrows, 0.f);
    }

    AlignedBuffer<float> Bp(prepacked ? 0 : static_cast<size_t>(block_panels) * d * nr);
    AlignedBuffer<float> bias(prepacked ? 0 : static_cast<size_t>(block_panels) * nr);
    std::vector<float> tile(static_cast<size_t>(mr) * nr);
    std::vector<uint32_t> masks(mr);

    for (long bp0 = lp0; bp0 < lp1; bp0 += block_panels) {
      const long bp1 = std::min(lp1, bp0 + block_panels);
      const float* Wblock = Bp.data();
      const float* bblock = bias.data();
      if (prepacked) {
        Wblock = enc.packed_W + bp0 * d * nr;
        bblock = enc.packed_bias + bp0 * nr;
      } else {
        pack_encoder_panels(enc, bp0, bp1, nr, Bp.data(), bias.data());
      }
      for (long rp = rp0; rp < rp1; ++rp) {
        const float* Ap = Xp.data() + rp * d * mr;
        float* row_thr = thr.data() + (rp - rp0) * mr;
        const long rbase = rp * mr - r0;  // local row index of the panel's first row
        for (long p = bp0; p < bp1; ++p) {
          const uint32_t dead = aux ? dead_bits[p] : 0u;
          const uint32_t any = K.encode_tile(d, Ap, Wblock + (p - bp0) * d * nr, bblock + (p - bp0) * nr,
                                             row_thr, tile.data(), masks.data(), dead != 0);
          if (!any && !dead) continue;
          const int32_t j0 = static_cast<int32_t>(p * nr);
          for (int r = 0; r < mr; ++r) {
            const long lr = rbase + r;
            if (lr >= nrows) break;
            const float* trow = tile.data() + r * nr;
            if (uint32_t bits = masks[r]) {
              uint64_t* buf = store.data() + lr * k;
              int n = count[lr];
              float t = row_thr[r];
              for (; bits; bits &= bits - 1) {
                const int c = __builtin_ctz(bits);
                if (!(trow[c] > t)) continue;
                const uint64_t key = candidate_key(trow[c], j0 + c);
                if (n < k) {
                  key_heap_push(buf, n++, key);
                  if (n == k) t = std::max(floor, key_candidate(buf[0]).value);
                } else if (key > buf[0]) {
                  key_heap_replace_top(buf, k, key);
                  t = std::max(floor, key_candidate(buf[0]).value);
                }
              }
              count[lr] = n;
              row_thr[r] = t;
            }
            if (dead) {
              for (uint32_t bits = dead; bits; bits &= bits - 1) {
                const int c = __builtin_ctz(bits);
                if (trow[c] > aux_thr[lr]) {
                  aux_row_heaps[lr].offer({trow[c], j0 + c});
                  if (aux_row_heaps[lr].full()) aux_thr[lr] = aux_row_heaps[lr].worst().value;
                }
              }
            }
          }
        }
      }
    }
    std::vector<Candidate>& out = heaps[task];
    out.resize(static_cast<size_t>(nrows) * k);
    for (long r = 0; r < nrows; ++r)
      for (int i = 0; i < count[r]; ++i) out[r * k + i] = key_candidate(store[r * k + i]);
    if (aux) {
      aux_sizes[task].resize(nrows);
      for (long r = 0; r < nrows; ++r) aux_sizes[task][r] = aux_row_heaps[r].size();
      aux_heaps[task] = std::move(aux_store);
    }
  });

  // Merge the latent-range candidates of each row.
  const int TM = std::max(1, std::min<int>(T, static_cast<int>(rows)));
  parallel_for(TM, [&](int t) {
    std::vector<Candidate> cands;
    for (long row = split_begin(rows, TM, t); row < split_begin(rows, TM, t + 1); ++row) {
      const long rp = row / mr;
      int tr = 0;
      while (split_begin(row_panels, t_row, tr + 1) <= rp) ++tr;
      const long r0 = split_begin(row_panels, t_row, tr) * mr;
      cands.clear();
      for (int tl = 0; tl < t_lat; ++tl) {
        const int task = tl * t_row + tr;
        const Candidate* h = heaps[task].data() + (row - r0) * k;
        cands.insert(cands.end(), h, h + heap_sizes[task][row - r0]);
      }
      finalize_row(cands, k, enc.m, idx + row * k, val + row * k);
      if (aux) {
        cands.clear();
        for (int tl = 0; tl < t_lat; ++tl) {
          const int task = tl * t_row + tr;
          const Candidate* h = aux_heaps[task].data() + (row - r0) * k_aux;
          cands.insert(cands.end(), h, h + aux_sizes[task][row - r0]);
        }
        finalize_row(cands, k_aux, enc.m, aux->idx + row * k_aux, aux->val + row * k_aux);
      }
    }
  });
}

}  // namespace cmsae
