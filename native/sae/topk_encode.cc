// Fused Top-K encode: pre = W_enc (x - b_dec) + b_enc, register-tiled GEMM whose epilogue feeds
// per-row bounded heaps, z = TopK_k(ReLU(pre)). Work items (row chunk x latent block) are handed out
// dynamically; each thread keeps candidate heaps for every row, merged per row at the end. The
// selection is exact under the total order (value desc, index asc), so the result does not depend on
// which thread ran which item.
#include "topk_encode.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <atomic>
#include <memory>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "../common/aligned.h"
#include "../common/thread_pool.h"
#include "../common/validate.h"
#include "certified_encode.h"
#include "kernels.h"
#include "topk_select.h"

namespace cmsae {
namespace {

constexpr long kBlockBytes = 160 * 1024;  // packed encoder block kept in L2 per work item

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

}  // namespace

namespace {

constexpr long kMaxRowsPerPass = 8192;  // bounds the per-thread candidate storage (threads x rows x k)
constexpr int kMaxMr = 16;              // largest register-tile height of any kernel table
constexpr long kTargetRowsPerItem = 2048;

// Candidate lists of one thread for every row of a pass: bounded min-heaps of keys (root = worst kept)
// and the threshold a pre-activation must exceed to be offered.
struct RowHeaps {
  int cap = 0;
  std::vector<uint64_t> keys;  // [rows, cap]
  std::vector<int> count;      // [rows]
  std::vector<float> thr;      // [padded rows]
  void reset(long rows, long padded_rows, int c, float floor) {
    cap = c;
    keys.resize(static_cast<size_t>(rows) * c);
    count.assign(rows, 0);
    thr.assign(padded_rows, std::numeric_limits<float>::infinity());
    std::fill(thr.begin(), thr.begin() + rows, c > 0 ? floor : std::numeric_limits<float>::infinity());
  }
  // Offers (v, j) to row r (v > thr[r] already checked) and returns the row's new threshold: just below
  // the worst kept value, so that a later latent with an equal value and a smaller index still reaches
  // the exact key comparison (threads visit latent blocks in any order).
  float offer(long r, float v, int32_t j, float floor) {
    uint64_t* h = keys.data() + r * cap;
    const uint64_t key = candidate_key(v, j);
    int& n = count[r];
    if (n < cap) {
      key_heap_push(h, n++, key);
      if (n < cap) return thr[r];
    } else if (key > h[0]) {
      key_heap_replace_top(h, cap, key);
    } else {
      return thr[r];
    }
    const float worst = key_candidate(h[0]).value;
    return std::max(floor, std::nextafter(worst, -std::numeric_limits<float>::infinity()));
  }
};

struct WorkerState {
  RowHeaps main, aux;
  AlignedBuffer<float> Bp, bias;  // per-block packing when the encoder is not pre-packed
  AlignedBuffer<float> tile;      // one register tile (64-byte aligned: no false sharing between threads)
  AlignedBuffer<uint32_t> masks;
};

void encode_pass(const EncoderView& enc, const float* x, long rows, int k, float floor, int32_t* idx, float* val,
                 const AuxSelect* aux, long aux_row0) {
  const SaeKernels& K = kernels();
  const int mr = K.mr, nr = K.nr, d = enc.d;
  static_assert(kMaxMr >= 12, "kMaxMr must cover every kernel table's mr");
  const long row_panels = (rows + mr - 1) / mr;
  const long lat_panels = (enc.m + nr - 1) / nr;
  const int T = num_threads();
  const int k_aux = aux ? aux->k : 0;

  // Packed inputs: a per-thread buffer reused across calls (no page faults per call) up to 16 MiB.
  const size_t xp_len = static_cast<size_t>(row_panels) * d * mr;
  thread_local AlignedBuffer<float> xp_cache;
  AlignedBuffer<float> xp_local;
  AlignedBuffer<float>* xp_buf = &xp_local;
  if (xp_len * sizeof(float) <= (16u << 20)) xp_buf = &xp_cache;
  if (xp_buf->size() < xp_len) xp_buf->reset(xp_len);
  AlignedBuffer<float>& Xp = *xp_buf;
  const auto t_start = std::chrono::steady_clock::now();
  pack_inputs(x, rows, d, enc.b_dec, mr, Xp.data());
  const auto t_packed = std::chrono::steady_clock::now();

  // Dead bits per latent panel (aux only).
  std::vector<uint32_t> dead_bits;
  if (aux) {
    dead_bits.assign(lat_panels, 0u);
    for (long j = 0; j < enc.m; ++j)
      if (aux->dead[j]) dead_bits[j / nr] |= 1u << (j % nr);
  }

  // Work items: (row chunk, latent block) pairs, handed out dynamically so a slowed core does not hold
  // the others back. A latent block (packed encoder panels) stays in L2 while a row chunk streams past.
  const long block_panels = std::max<long>(1, kBlockBytes / (static_cast<long>(d) * nr * 4));
  const long n_blocks = (lat_panels + block_panels - 1) / block_panels;
  long chunk_panels = std::max<long>(1, kTargetRowsPerItem / mr);
  if (n_blocks < 8L * T) {  // few latent blocks: cut the rows finer so every thread gets work
    const long want_chunks = (8L * T + n_blocks - 1) / n_blocks;
    chunk_panels = std::max<long>(1, std::min(chunk_panels, (row_panels + want_chunks - 1) / want_chunks));
  }
  const long n_chunks = (row_panels + chunk_panels - 1) / chunk_panels;
  const long n_items = n_chunks * n_blocks;
  const bool prepacked = enc.packed_W != nullptr && enc.packed_bias != nullptr && enc.packed_nr == nr;
  // One state per pool worker: every worker may take items, whatever their count (with fewer items than threads,
  // worker ids are still any of [0, T); sharing a state between two of them would race).
  const int workers = T;

  // Per-row thresholds published by the threads: each is just below some thread's k-th best value, so a
  // value below it cannot be in the final top k (exact); races only make the filter less tight.
  std::unique_ptr<std::atomic<float>[]> shared_thr(new std::atomic<float>[row_panels * mr]);
  for (long r = 0; r < row_panels * mr; ++r) shared_thr[r].store(floor, std::memory_order_relaxed);
  std::vector<WorkerState> state(workers);
  for (WorkerState& ws : state) {
    ws.main.reset(rows, row_panels * mr, k, floor);
    if (aux) ws.aux.reset(rows, row_panels * mr, k_aux, 0.f);
    if (!prepacked) {
      ws.Bp.reset(static_cast<size_t>(block_panels) * d * nr);
      ws.bias.reset(static_cast<size_t>(block_panels) * nr);
    }
    ws.tile.reset(static_cast<size_t>(mr) * nr);
    ws.masks.reset(mr);
  }

  parallel_for_workers(static_cast<int>(std::min<long>(n_items, 1L << 30)), [&](int item, int worker) {
    WorkerState& ws = state[worker];
    const long chunk = item / n_blocks, block = item % n_blocks;
    const long rp0 = chunk * chunk_panels, rp1 = std::min(row_panels, rp0 + chunk_panels);
    const long bp0 = block * block_panels, bp1 = std::min(lat_panels, bp0 + block_panels);
    const float* Wblock = prepacked ? enc.packed_W + bp0 * d * nr : ws.Bp.data();
    const float* bblock = prepacked ? enc.packed_bias + bp0 * nr : ws.bias.data();
    if (!prepacked) pack_encoder_panels(enc, bp0, bp1, nr, ws.Bp.data(), ws.bias.data());
    float thr[kMaxMr];
    for (long rp = rp0; rp < rp1; ++rp) {
      const float* Ap = Xp.data() + rp * d * mr;
      float* own_thr = ws.main.thr.data() + rp * mr;
      // A value must beat this thread's k-th best and every other thread's published k-th best.
      for (int r = 0; r < mr; ++r) thr[r] = std::max(own_thr[r], shared_thr[rp * mr + r].load(std::memory_order_relaxed));
      for (long p = bp0; p < bp1; ++p) {
        const uint32_t dead = aux ? dead_bits[p] : 0u;
        const uint32_t any = K.encode_tile(d, Ap, Wblock + (p - bp0) * d * nr, bblock + (p - bp0) * nr, thr,
                                           ws.tile.data(), ws.masks.data(), dead != 0);
        if (!any && !dead) continue;
        const int32_t j0 = static_cast<int32_t>(p * nr);
        for (int r = 0; r < mr; ++r) {
          const long row = rp * mr + r;
          if (row >= rows) break;
          const float* trow = ws.tile.data() + r * nr;
          if (uint32_t bits = ws.masks[r]) {
            for (; bits; bits &= bits - 1) {
              const int c = __builtin_ctz(bits);
              if (trow[c] > thr[r]) thr[r] = std::max(thr[r], own_thr[r] = ws.main.offer(row, trow[c], j0 + c, floor));
            }
            if (own_thr[r] > shared_thr[row].load(std::memory_order_relaxed))
              shared_thr[row].store(own_thr[r], std::memory_order_relaxed);
          }
          for (uint32_t bits = dead; bits; bits &= bits - 1) {
            const int c = __builtin_ctz(bits);
            if (trow[c] > ws.aux.thr[row]) ws.aux.thr[row] = ws.aux.offer(row, trow[c], j0 + c, 0.f);
          }
        }
      }
    }
  });

  const auto t_items = std::chrono::steady_clock::now();
  // Merge the threads' candidates of each row.
  const int TM = std::max(1, std::min<int>(T, static_cast<int>(rows)));
  parallel_for(TM, [&](int t) {
    std::vector<uint64_t> keys;
    auto gather = [&](long row, RowHeaps WorkerState::*which) {
      keys.clear();
      for (const WorkerState& ws : state) {
        const RowHeaps& h = ws.*which;
        keys.insert(keys.end(), h.keys.begin() + row * h.cap, h.keys.begin() + row * h.cap + h.count[row]);
      }
    };
    for (long row = split_begin(rows, TM, t); row < split_begin(rows, TM, t + 1); ++row) {
      gather(row, &WorkerState::main);
      finalize_keys(keys, k, enc.m, idx + row * k, val + row * k);
      if (aux) {
        gather(row, &WorkerState::aux);
        const long out_row = aux_row0 + row;
        finalize_keys(keys, k_aux, enc.m, aux->idx + out_row * k_aux, aux->val + out_row * k_aux);
      }
    }
  });
  static const bool profile = std::getenv("CMSAE_PROFILE") != nullptr;
  if (profile) {
    const auto t_end = std::chrono::steady_clock::now();
    auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    std::fprintf(stderr, "[encode %ld rows] pack %.2fms tiles %.2fms merge %.2fms\n", rows, ms(t_start, t_packed),
                 ms(t_packed, t_items), ms(t_items, t_end));
  }
}

}  // namespace

void topk_encode(const EncoderView& enc, const float* x, long rows, int k, float floor, int32_t* idx,
                 float* val, const AuxSelect* aux, bool* x_nonfinite) {
  if (enc.bf16 && rows > 0) {
    const EncodePath path = encode_path_for(k, enc.m);
    if (path != EncodePath::Fp32) {
      certified_topk_encode(path, enc, x, rows, k, floor, idx, val, aux, x_nonfinite);
      return;
    }
  }
  if (nonfinite_checked_first(x, rows * static_cast<long>(enc.d), x_nonfinite)) return;
  topk_encode_fp32(enc, x, rows, k, floor, idx, val, aux);
}

void topk_encode_fp32(const EncoderView& enc, const float* x, long rows, int k, float floor, int32_t* idx,
                      float* val, const AuxSelect* aux) {
  for (long r0 = 0; r0 < rows; r0 += kMaxRowsPerPass) {
    const long n = std::min(kMaxRowsPerPass, rows - r0);
    encode_pass(enc, x + r0 * enc.d, n, k, floor, idx + r0 * k, val + r0 * k, aux, r0);
  }
}

}  // namespace cmsae
