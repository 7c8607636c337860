// Certified mixed-precision Top-K encode (certified_encode.h): p16 = Xh . Wh + b by BF16 GEMM blocks (bf16_gemm.h),
// E = A_r P_j + B_r Q_j + C_j + D_r (bf16_encoder.h); a latent is a candidate of its row when p16 + E >= L (the k-th
// largest p16 - E seen) and p16 + E > floor; candidates get their exact float32 value p32 = fma-chain(Xc, W_j) + b_j.
// Compiled with AVX-512F/BW/VL/DQ + BF16 flags: runs only where certified paths are available.
#include "certified_encode.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <vector>

#include "../common/aligned.h"
#include "../common/thread_pool.h"
#include "../common/validate.h"
#include "avx512_util.h"
#include "bf16_avx512.h"
#include "bf16_encoder.h"
#include "bf16_gemm.h"
#include "certified_selection.h"
#include "topk_select.h"

namespace cmsae {

namespace {

using certified::kInf;
using certified::Selection;
using certified::kth_largest_bound;
using certified::selection_cap;
constexpr long kStateBytesPerThread = 8L << 20;  // bounds the rows of one pass
constexpr long kMaxPassRows = 4096;
constexpr int kRankSelectMost = 256;  // candidates of a row up to which the rank count beats sorting

struct WorkerState {
  Selection main, aux;
  AlignedBuffer<float> C;     // [2][32 rows][latents of a block]: two buffers, one computed while the other is read
  AlignedBuffer<float> seed;  // [latents of a block]: lower ends for a row's seed threshold
  AlignedBuffer<int32_t> hits;  // [latents of a block + 16]: offsets of a row's lanes that pass the pre-filter
};

// Per-row inputs of a pass: Xc = x - b_dec (float32, for the exact recompute), Xh = bf16(Xc) padded, and the bound's
// row terms A = ||Xh||, B = ||Xl|| + G ||Xc||, D = 2^-126 (sqrt(d) ||Xh|| + 3d + 4); ok = 0 where the bound is void.
struct RowInputs {
  AlignedBuffer<float> Xc;
  AlignedBuffer<uint16_t> Xh;
  std::vector<float> A, B, D;
  std::vector<uint8_t> ok;
};

void size_row_inputs(int d, int dpad, long rows, long rows_pad, RowInputs& in) {
  if (in.Xc.size() < static_cast<size_t>(rows) * d) in.Xc.reset(static_cast<size_t>(rows) * d);
  if (in.Xh.size() < static_cast<size_t>(rows_pad) * dpad) in.Xh.reset(static_cast<size_t>(rows_pad) * dpad);
  in.A.resize(rows);
  in.B.resize(rows);
  in.D.resize(rows);
  in.ok.resize(rows);
}

// Rows [r_begin, r_end) of the padded batch (rows past `rows` get zero Xh); `in` sized by size_row_inputs. Returns
// whether those rows of x hold a NaN or +-Inf (an all-ones exponent), checked on the loads the rows need anyway.
bool prepare_row_range(const EncoderView& enc, const Bf16Encoder& e, const float* x, long rows, long r_begin,
                       long r_end, RowInputs& in) {
  const __m512i exp_bits = _mm512_set1_epi32(0x7f800000);
  __mmask16 nonfinite = 0;
  const int d = enc.d, dpad = e.dpad;
  const double G = bf16_bound_gamma(d), sqrt_d = std::sqrt(static_cast<double>(d)), inflate = 1.0 + 0x1p-20;
  const double maxQ = e.max_Q;
  for (long r = r_begin; r < r_end; ++r) {
    uint16_t* h = in.Xh.data() + r * dpad;
    if (r >= rows) {
      std::memset(h, 0, sizeof(uint16_t) * dpad);
      continue;
    }
    const float* src = x + r * d;
    float* xc = in.Xc.data() + r * d;
    __m512d vc = _mm512_setzero_pd(), vh = vc, vl = vc;
    for (int k = 0; k < dpad; k += 16) {  // d < k < dpad: zeros
      const __mmask16 live = first_lanes(d - k);
      __m512 v = _mm512_maskz_loadu_ps(live, src + k);
      const __m512i ex = _mm512_and_si512(_mm512_castps_si512(v), exp_bits);
      nonfinite = static_cast<__mmask16>(nonfinite | _mm512_cmpeq_epi32_mask(ex, exp_bits));
      if (enc.b_dec) v = _mm512_sub_ps(v, _mm512_maskz_loadu_ps(live, enc.b_dec + k));
      _mm512_mask_storeu_ps(xc + k, live, v);
      const __m512i bits = bf16_bits(v);
      const __m512 hf = _mm512_castsi512_ps(bits);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + k), _mm512_cvtepi32_epi16(_mm512_srli_epi32(bits, 16)));
      vc = square_sum(vc, v);
      vh = square_sum(vh, hf);
      vl = square_sum(vl, _mm512_sub_ps(v, hf));  // exact residual
    }
    const double sc = _mm512_reduce_add_pd(vc), sh = _mm512_reduce_add_pd(vh), sl = _mm512_reduce_add_pd(vl);
    const double nc = std::sqrt(sc), nh = std::sqrt(sh), nl = std::sqrt(sl);
    in.A[r] = static_cast<float>(nh * inflate);
    in.B[r] = static_cast<float>((nl + G * nc) * inflate);
    in.D[r] = static_cast<float>(0x1p-126 * (sqrt_d * nh + 3.0 * d + 4.0) * inflate);
    // Products and sums must stay far from float32 overflow for the bound (and p16) to mean anything.
    in.ok[r] = std::isfinite(in.A[r]) && std::isfinite(in.B[r]) && std::isfinite(in.D[r]) && nc * maxQ < 0x1p120;
  }
  return nonfinite != 0;
}

// All rows of the padded batch, split over the threads; returns whether x holds a NaN or +-Inf.
bool prepare_rows(const EncoderView& enc, const Bf16Encoder& e, const float* x, long rows, long rows_pad,
                  RowInputs& in) {
  size_row_inputs(enc.d, e.dpad, rows, rows_pad, in);
  const int T = std::max(1, std::min<int>(num_threads(), static_cast<int>(rows_pad / 32)));
  std::atomic<bool> nonfinite{false};
  parallel_for(T, [&](int t) {
    if (prepare_row_range(enc, e, x, rows, split_begin(rows_pad, T, t), split_begin(rows_pad, T, t + 1), in))
      nonfinite.store(true, std::memory_order_relaxed);
  });
  return nonfinite.load();
}

// Candidates of one row's selection: js[begin, end) in a flat list, exact values to vals[begin, end).
struct CandidateSegment {
  long row;
  int32_t begin, end;
  bool aux;
};

// 16 lanes of candidates for the exact recompute: lanes [0, count) from one row's list at `at`, and lanes
// [count, count + count2) from a second row's list at `at2` when count2 > 0 (two rows' partial groups share a
// vector; each lane multiplies its own row's x).
struct ExactGroup {
  const float* xc;
  const float* xc2;
  int32_t at, count, at2, count2;
};

// The groups of the segments in order: whole groups of 16, and each segment's last partial group merged into an
// earlier one with room.
void exact_groups(const float* Xc, int d, const std::vector<CandidateSegment>& segs, std::vector<ExactGroup>& groups) {
  groups.clear();
  long open = -1;  // a one-row partial group that may take a second row's piece
  for (const CandidateSegment& sg : segs) {
    const float* xc = Xc + sg.row * d;
    for (int32_t g = sg.begin; g < sg.end; g += 16) {
      const int32_t count = std::min<int32_t>(16, sg.end - g);
      if (count < 16 && open >= 0 && groups[open].count + count <= 16) {
        groups[open].xc2 = xc;
        groups[open].at2 = g;
        groups[open].count2 = count;
        open = -1;
        continue;
      }
      groups.push_back(ExactGroup{xc, nullptr, g, count, 0, 0});
      if (count < 16) open = static_cast<long>(groups.size()) - 1;
    }
  }
}

// The group's latent indices, lane by lane (lanes past the last repeat it); returns the lanes in use.
inline int group_latents(const ExactGroup& g, const int32_t* js, int32_t out[16]) {
  __m512i jv = _mm512_maskz_loadu_epi32(first_lanes(g.count), js + g.at);
  const int c = g.count + g.count2;
  if (g.count2) jv = _mm512_mask_expandloadu_epi32(jv, static_cast<__mmask16>(first_lanes(c) & ~first_lanes(g.count)), js + g.at2);
  _mm512_storeu_si512(out, jv);
  for (int i = c; i < 16; ++i) out[i] = out[c - 1];
  return c;
}

// p32 of every segment's latents: the FMA chain of encode_tile (acc = 0; acc = fma(xc[k], W[j][k], acc) for k
// ascending; acc + b_j). 16 latents per vector: 16 encoder rows are read 16 floats at a time and transposed in
// registers (each lane keeps its own chain, so the order of operations is the float32 kernel's), and the next
// group's rows are prefetched meanwhile (the encoder rows come from far caches).
void exact_preacts(const float* Xc, const float* W, const float* b, int d, const int32_t* js,
                   const std::vector<CandidateSegment>& segs, float* vals) {
  thread_local std::vector<ExactGroup> groups_cache;
  std::vector<ExactGroup>& groups = groups_cache;
  exact_groups(Xc, d, segs, groups);
  const int full = d / 16 * 16, rem = d - full;
  const __mmask16 tail = first_lanes(rem);
  const __m512i lane_ids = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  int32_t lat[16], lat_next[16];
  int c_next = groups.empty() ? 0 : group_latents(groups[0], js, lat_next);
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const ExactGroup& g = groups[gi];
    std::memcpy(lat, lat_next, sizeof lat);
    const int c = c_next;
    const float* rows[16];
    for (int i = 0; i < 16; ++i) rows[i] = W + static_cast<long>(lat[i]) * d;
    const float* next[16];
    int n_next = 0;
    if (gi + 1 < groups.size()) {
      c_next = group_latents(groups[gi + 1], js, lat_next);
      n_next = c_next;
      for (int i = 0; i < n_next; ++i) next[i] = W + static_cast<long>(lat_next[i]) * d;
    }
    const float* xc = g.xc;
    const float* xc2 = g.count2 ? g.xc2 : g.xc;
    const __mmask16 second = static_cast<__mmask16>(first_lanes(c) & ~first_lanes(g.count));
    __m512 acc = _mm512_setzero_ps();
    __m512 r[16];
    for (int k0 = 0; k0 < full; k0 += 16) {
      for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(rows[i] + k0);
      for (int i = 0; i < n_next; ++i) _mm_prefetch(reinterpret_cast<const char*>(next[i] + k0), _MM_HINT_T0);
      transpose16x16(r);
      if (g.count2) {
        for (int q = 0; q < 16; ++q)
          acc = _mm512_fmadd_ps(_mm512_mask_blend_ps(second, _mm512_set1_ps(xc[k0 + q]), _mm512_set1_ps(xc2[k0 + q])), r[q], acc);
      } else {
        for (int q = 0; q < 16; ++q) acc = _mm512_fmadd_ps(_mm512_set1_ps(xc[k0 + q]), r[q], acc);
      }
    }
    if (rem) {
      for (int i = 0; i < 16; ++i) r[i] = _mm512_maskz_loadu_ps(tail, rows[i] + full);
      transpose16x16(r);
      for (int q = 0; q < rem; ++q)
        acc = _mm512_fmadd_ps(_mm512_mask_blend_ps(second, _mm512_set1_ps(xc[full + q]), _mm512_set1_ps(xc2[full + q])), r[q], acc);
    }
    const __mmask16 live = first_lanes(c);
    acc = _mm512_add_ps(acc, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live, _mm512_loadu_si512(lat), b, 4));
    _mm512_mask_storeu_ps(vals + g.at, first_lanes(g.count), acc);
    if (g.count2) {  // lanes [count, c) down to lane 0
      const __m512 down = _mm512_permutexvar_ps(_mm512_add_epi32(lane_ids, _mm512_set1_epi32(g.count)), acc);
      _mm512_mask_storeu_ps(vals + g.at2, first_lanes(g.count2), down);
    }
  }
}

// Thresholds published by the threads per row: each is a valid lower bound of the row's k-th value (races only make
// the filter less tight).
struct SharedThresholds {
  std::unique_ptr<std::atomic<float>[]> main, aux;
  void reset(long rows, bool with_aux) {
    main.reset(new std::atomic<float>[rows]);
    for (long r = 0; r < rows; ++r) main[r].store(-kInf, std::memory_order_relaxed);
    if (with_aux) {
      aux.reset(new std::atomic<float>[rows]);
      for (long r = 0; r < rows; ++r) aux[r].store(-kInf, std::memory_order_relaxed);
    }
  }
};

inline void publish(std::atomic<float>& slot, float v) {
  if (v != kInf && v > slot.load(std::memory_order_relaxed)) slot.store(v, std::memory_order_relaxed);
}

// fl(v + E) >= t with E <= Emax implies v >= prefilter(t, Emax): the margins exceed every rounding involved.
inline float prefilter(float t, float Emax) {
  if (t == kInf) return kInf;
  return t - Emax * (1.f + 0x1p-18f) - std::fabs(t) * 0x1p-20f;
}

// Per latent block: the largest bound terms of its latents, for the per-row pre-filter.
struct BlockTerms {
  float P, Q, C;
};

// The candidates' bounds for 32 rows (row0..) x the n latents of a block (j0..); C holds Xh . Wh without the bias,
// row stride n. Per row, a pre-filter with the block's largest E (one scalar); lanes that pass it get their own E.
struct BlockEpilogue {
  const float* C;  // 32 rows x n latents, row stride n
  long n, row0, rows, j0;
  const BlockTerms* bt;
  const Bf16Encoder* e;
  const RowInputs* in;
  const uint16_t* dead16;  // per 16 latents, the dead ones (AuxK); null without AuxK
  SharedThresholds* shared;  // null with fixed row ranges: a row's thresholds are then its own thread's
};

// Row r of a block epilogue (rows past the batch are skipped).
void epilogue_row(const BlockEpilogue& be, int r, WorkerState& ws) {
  const long row = be.row0 + r;
  if (row >= be.rows) return;
  const long n = be.n, j0 = be.j0;
  const Bf16Encoder& e = *be.e;
  const uint16_t* dead16 = be.dead16;
  SharedThresholds* shared = be.shared;
  const bool has_aux = dead16 != nullptr;
  float& tm = ws.main.thr[row];
  const float shm = shared ? shared->main[row].load(std::memory_order_relaxed) : -kInf;
  const float sha = shared && has_aux ? shared->aux[row].load(std::memory_order_relaxed) : -kInf;
  if (tm != kInf) tm = std::max(tm, shm);
  if (has_aux && ws.aux.thr[row] != kInf) ws.aux.thr[row] = std::max(ws.aux.thr[row], sha);
  const float& ta = has_aux ? ws.aux.thr[row] : kInf;  // current (a compaction in push may raise it)
  if (tm == kInf && ta == kInf) return;
  const float Ar = be.in->A[row], Br = be.in->B[row], Dr = be.in->D[row];
  // E_max >= every E of the block (all terms >= 0; the float rounding is inside the terms' margins).
  const float Emax = std::fma(Ar, be.bt->P, std::fma(Br, be.bt->Q, be.bt->C + Dr)) * (1.f + 0x1p-20f);
  const float* Crow = be.C + r * n;
  const float* P = e.P.data() + j0;
  const float* Q = e.Q.data() + j0;
  const float* Cj = e.C.data() + j0;
  const float* bias = e.bias.data() + j0;
  if (tm != kInf && ws.main.n[row] < ws.main.k && n >= ws.main.k) {
    // No k-th value known yet (the row's first block here): seed the threshold with the k-th largest lower end of
    // this block, a lower bound of the row's k-th value like any other, so the block offers ~k, not all its latents.
    const __m512 Av = _mm512_set1_ps(Ar), Bv = _mm512_set1_ps(Br), Dv = _mm512_set1_ps(Dr);
    float* lows = ws.seed.data();
    for (long c = 0; c < n; c += 16) {
      const __m512 v = _mm512_add_ps(_mm512_load_ps(Crow + c), _mm512_load_ps(bias + c));
      const __m512 E = _mm512_fmadd_ps(
          Av, _mm512_load_ps(P + c), _mm512_fmadd_ps(Bv, _mm512_load_ps(Q + c), _mm512_add_ps(_mm512_load_ps(Cj + c), Dv)));
      _mm512_store_ps(lows + c, _mm512_sub_ps(v, E));
    }
    tm = kth_largest_bound(lows, static_cast<int>(n), ws.main.k, 12, tm);
  }
  const __m512 pre_m = _mm512_set1_ps(prefilter(tm, Emax)), pre_a = _mm512_set1_ps(prefilter(ta, Emax));
  // Pass 1, branch-free: the block's lanes that pass the pre-filter, as latent offsets (compressed lane numbers).
  int32_t* hits = ws.hits.data();
  int nh = 0;
  const __m512i lane_ids = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (long c0 = 0; c0 < n; c0 += 16) {
    const __m512 v = _mm512_add_ps(_mm512_load_ps(Crow + c0), _mm512_load_ps(bias + c0));
    __mmask16 hit = _mm512_cmp_ps_mask(v, pre_m, _CMP_GE_OQ);
    if (has_aux) hit |= _mm512_mask_cmp_ps_mask(dead16[(j0 + c0) / 16], v, pre_a, _CMP_GE_OQ);
    _mm512_storeu_si512(hits + nh, _mm512_maskz_compress_epi32(
                                       hit, _mm512_add_epi32(lane_ids, _mm512_set1_epi32(static_cast<int32_t>(c0)))));
    nh += __builtin_popcount(hit);
  }
  // Pass 2, per lane that passed: its own bound E, then the lists. Branch-free when they all fit in the main list
  // (each is written, and kept when its upper end reaches the threshold); else one by one, so compactions can raise
  // the thresholds as entries come.
  Selection& sel = ws.main;
  if (!has_aux && sel.n[row] >= 0 && sel.n[row] + nh <= sel.cap) {
    const long base = row * sel.cap;
    float* U = sel.up.data() + base;
    float* Lo = sel.lo.data() + base;
    int32_t* J = sel.js.data() + base;
    const int n0 = sel.n[row];
    const float t = tm;
    int w = n0;
    for (int h = 0; h < nh; ++h) {
      const int c = hits[h];
      const float v = Crow[c] + bias[c];
      const float E = std::fma(Ar, P[c], std::fma(Br, Q[c], Cj[c] + Dr));
      const float up = v + E;
      U[w] = up;
      Lo[w] = v - E;
      J[w] = static_cast<int32_t>(j0 + c);
      w += up >= t;
    }
    sel.n[row] = w;
    sel.fresh[row] += w - n0;
    sel.offers += w - n0;
    nh = 0;
  }
  for (int h = 0; h < nh; ++h) {
    const int c = hits[h];
    const float v = Crow[c] + bias[c];
    const float E = std::fma(Ar, P[c], std::fma(Br, Q[c], Cj[c] + Dr));
    const float up = v + E, lo = v - E;
    const int32_t j = static_cast<int32_t>(j0 + c);
    if (up >= tm) ws.main.push(row, up, lo, j, shm);
    if (has_aux && up >= ta && ((dead16[j / 16] >> (j % 16)) & 1u)) ws.aux.push(row, up, lo, j, sha);
  }
  ws.main.tighten(row, shm);
  if (has_aux) ws.aux.tighten(row, sha);
  if (!shared) return;
  if (tm > shm) publish(shared->main[row], tm);  // tm, ta: references to the (possibly raised) thresholds
  if (has_aux && ta > sha) publish(shared->aux[row], ta);
}

// Candidates of one row from every thread's state: the entries whose upper end reaches L (a lower bound of the row's
// k-th value; see below) and the floor, appended to js (their upper ends to ups).
void collect_candidates(Selection WorkerState::*which, const WorkerState* states, int T, long row, int k, float floor,
                        std::vector<float>& lows, std::vector<int32_t>& js, std::vector<float>& ups, bool tighten) {
  // The threads' thresholds are valid lower bounds of the row's k-th value already. With `tighten`, L is the k-th
  // largest lower end, found among the lower ends at or above them (usually ~k: counted exactly, not bisected);
  // without (the main selection, whose exact values come in two rounds that skip what cannot reach the Top-k),
  // L is the thresholds themselves.
  float known = -kInf;
  for (int t = 0; t < T; ++t) {
    const Selection& s = states[t].*which;
    if (s.thr[row] != kInf) known = std::max(known, s.thr[row]);
  }
  lows.clear();
  for (int t = 0; t < T && tighten; ++t) {
    const Selection& s = states[t].*which;
    const float* l = s.lo.data() + row * s.cap;
    size_t w = lows.size();
    lows.resize(w + s.n[row]);
    for (int i = 0; i < s.n[row]; ++i) {
      lows[w] = l[i];
      w += l[i] >= known;
    }
    lows.resize(w);
  }
  const int nl = static_cast<int>(lows.size());
  const float L = tighten && nl >= k ? certified::kth_largest(lows.data(), nl, k) : known;
  const float thr = std::max(L, std::nextafter(floor, kInf));
  for (int t = 0; t < T; ++t) {
    const Selection& s = states[t].*which;
    const float* u = s.up.data() + row * s.cap;
    const int32_t* j = s.js.data() + row * s.cap;
    size_t w = js.size();  // branch-free: each entry written, kept when it reaches thr
    js.resize(w + s.n[row]);
    ups.resize(w + s.n[row]);
    for (int i = 0; i < s.n[row]; ++i) {
      js[w] = j[i];
      ups[w] = u[i];
      w += u[i] >= thr;
    }
    js.resize(w);
    ups.resize(w);
  }
}

// The row's Top-k from the exact values of its candidates (the float32 kernel's key order).
void finish_segment(const CandidateSegment& sg, const int32_t* js, const float* vals, int k, float floor, long m,
                    std::vector<uint64_t>& keys, std::vector<uint64_t>& top, int32_t* idx, float* val) {
  keys.clear();
  for (int32_t i = sg.begin; i < sg.end; ++i)
    if (vals[i] > floor) keys.push_back(candidate_key(vals[i], js[i]));
  const int n = static_cast<int>(keys.size());
  if (n > kRankSelectMost) {
    finalize_keys(keys, k, m, idx, val);
    return;
  }
  top.resize(static_cast<size_t>(k) + 1);
  const int keep = certified::top_keys_by_rank(keys.data(), n, k, top.data());
  for (int s = 0; s < keep; ++s) {
    const Candidate c = key_candidate(top[s]);
    idx[s] = c.index;
    val[s] = c.value;
  }
  pad_row(keep, k, static_cast<int>(m), idx, val);
}

// Closes the rows in [r_begin, r_end) whose bound is void in one thread's selections (the float32 path takes them).
void close_void_rows(const RowInputs& in, long r_begin, long r_end, bool aux, WorkerState& ws) {
  for (long r = r_begin; r < r_end; ++r)
    if (!in.ok[r]) {
      ws.main.close_row(r);
      if (aux) ws.aux.close_row(r);
    }
}

// x_nonfinite (not null): set when x holds a NaN or +-Inf; the pass then stops before writing codes.
void certified_pass(EncodePath path, const EncoderView& enc, const float* x, long rows, int k, float floor,
                    int32_t* idx, float* val, const AuxSelect* aux, long aux_row0, bool* x_nonfinite) {
  const Bf16Encoder& e = *enc.bf16;
  const int T = num_threads();
  const int k_aux = aux ? aux->k : 0;
  const long rows_pad = (rows + kBf16BlockRows - 1) / kBf16BlockRows * kBf16BlockRows;
  const auto t0 = std::chrono::steady_clock::now();

  // Per calling thread, reused across calls (no page faults per call). Named through plain references: a lambda run
  // on a pool thread would otherwise see that thread's own thread_local objects.
  thread_local RowInputs in_cache;
  thread_local std::vector<WorkerState> states_cache;
  RowInputs& in = in_cache;
  // Each thread takes a fixed range of row blocks when they split evenly enough over the threads (within 1.25x, or
  // exactly): then a thread prepares, multiplies and finishes its own rows in one parallel region, with no barrier
  // between the phases (nothing of a row is read by another thread). Otherwise the phases run one after another,
  // the latent blocks spread over the threads.
  const long row_blocks = rows_pad / kBf16BlockRows;
  const bool fixed = row_blocks >= 4L * T || (row_blocks >= T && row_blocks % T == 0);
  std::atomic<bool> nonfinite{false};
  if (fixed) {
    size_row_inputs(enc.d, e.dpad, rows, rows_pad, in);
  } else if (prepare_rows(enc, e, x, rows, rows_pad, in) && x_nonfinite) {
    *x_nonfinite = true;
    return;
  }
  std::vector<WorkerState>& states = states_cache;
  if (states.size() < static_cast<size_t>(T)) states = std::vector<WorkerState>(T);
  const int cap_main = selection_cap(k, enc.m), cap_aux = selection_cap(k_aux, enc.m);
  for (int t = 0; t < T; ++t) {
    states[t].main.reset(rows, k, cap_main, floor);
    if (aux) states[t].aux.reset(rows, k_aux, cap_aux, 0.f);
    if (!fixed) close_void_rows(in, 0, rows, aux != nullptr, states[t]);
  }
  std::vector<uint16_t> dead16;
  if (aux) {
    dead16.assign(e.panels, 0);
    for (long j = 0; j < enc.m; ++j)
      if (aux->dead[j]) dead16[j / 16] |= static_cast<uint16_t>(1u << (j % 16));
  }
  const auto t1 = std::chrono::steady_clock::now();

  // Work items: (run of up to 16 row blocks, latent block); a latent block (~256 KiB of VNNI panels) stays in L2 while
  // the run's 32-row blocks stream past, each 32-row block of Xh staying in L1 across the block's latent pairs (the
  // panels are loaded with the streaming hint, so they do not evict it). With fixed ranges a thread goes through the
  // latent blocks in order: its rows' lists and thresholds stay in its own caches, and a row's later blocks start
  // from the thresholds its earlier blocks set.
  const long pairs = e.panels / 2;
  const long panel_elems = static_cast<long>(e.dpad) * kBf16PanelLatents;
  const long block_pairs = std::max<long>(1, (256L << 10) / (panel_elems * 2 * 2));
  const long n_blocks = (pairs + block_pairs - 1) / block_pairs;
  constexpr long kRunBlocks = 16;
  const bool amx = path == EncodePath::AmxBf16;
  const uint16_t* dead_ptr = aux ? dead16.data() : nullptr;
  SharedThresholds shared;
  if (!fixed) shared.reset(rows, aux != nullptr);
  std::vector<BlockTerms> terms(n_blocks, BlockTerms{0.f, 0.f, 0.f});
  for (long b = 0; b < n_blocks; ++b)
    for (long j = b * block_pairs * kBf16BlockLatents; j < std::min(pairs, (b + 1) * block_pairs) * kBf16BlockLatents; ++j) {
      terms[b].P = std::max(terms[b].P, e.P.data()[j]);
      terms[b].Q = std::max(terms[b].Q, e.Q.data()[j]);
      terms[b].C = std::max(terms[b].C, e.C.data()[j]);
    }
  for (int t = 0; t < T; ++t)
    if (states[t].C.size() < static_cast<size_t>(2 * kBf16BlockRows * block_pairs * kBf16BlockLatents)) {
      states[t].C.reset(static_cast<size_t>(2 * kBf16BlockRows * block_pairs * kBf16BlockLatents));
      states[t].seed.reset(static_cast<size_t>(block_pairs * kBf16BlockLatents));
      states[t].hits.reset(static_cast<size_t>(block_pairs * kBf16BlockLatents + 16));
    }
  // prefetch_next: the last run of this latent block on this thread; its tile products then also pull the next
  // latent block's panels into L2 (prefetcht1, a slice per epilogue row), so that the next block's first row block
  // does not wait on far caches for them.
  auto run_item = [&](long rb0, long rb1, long block, WorkerState& ws, bool prefetch_next) {
    const long q0 = block * block_pairs, q1 = std::min(pairs, q0 + block_pairs);
    const long n = (q1 - q0) * kBf16BlockLatents;
    BlockEpilogue be{nullptr, n, 0, rows, q0 * kBf16BlockLatents, &terms[block], &e, &in, dead_ptr, fixed ? nullptr : &shared};
    if (amx) {
      // The epilogue of row block rb - 1 (in the other C buffer) runs between the tile products of row block rb.
      amx_tiles_begin();
      const int steps = e.dpad / 32 * static_cast<int>(q1 - q0);
      const int every = std::max(1, steps / kBf16BlockRows);
      BlockEpilogue pending = be;
      int next_row = kBf16BlockRows;  // rows of `pending` done
      const char* pf = nullptr;  // the next block's panels still to prefetch, [pf, pf_end)
      const char* pf_end = nullptr;
      long pf_step = 0;  // bytes per epilogue row slot
      if (prefetch_next && block + 1 < n_blocks) {
        const long nq0 = q1, nq1 = std::min(pairs, nq0 + block_pairs);
        pf = reinterpret_cast<const char*>(e.Wp.data() + 2 * nq0 * panel_elems);
        pf_end = reinterpret_cast<const char*>(e.Wp.data() + 2 * nq1 * panel_elems);
        const long slots = (rb1 - rb0) * kBf16BlockRows;
        pf_step = ((pf_end - pf) / slots + 63) / 64 * 64;
      }
      auto run_pending = [&] {
        if (next_row < kBf16BlockRows) epilogue_row(pending, next_row++, ws);
        if (pf < pf_end) {
          const char* stop = std::min(pf_end, pf + pf_step);
          for (; pf < stop; pf += 64) _mm_prefetch(pf, _MM_HINT_T1);
        }
      };
      for (long rb = rb0; rb < rb1; ++rb) {
        const uint16_t* Xh = in.Xh.data() + rb * kBf16BlockRows * e.dpad;
        float* Cbuf = ws.C.data() + ((rb - rb0) & 1) * kBf16BlockRows * n;
        for (long q = q0; q < q1; ++q)
          amx_bf16_block(Xh, e.dpad, e.Wp.data() + 2 * q * panel_elems, Cbuf + (q - q0) * kBf16BlockLatents, n,
                                 every, run_pending);
        while (next_row < kBf16BlockRows) run_pending();
        pending.C = Cbuf;
        pending.row0 = rb * kBf16BlockRows;
        next_row = 0;
      }
      while (next_row < kBf16BlockRows) run_pending();
      amx_tiles_end();
    } else {
      for (long rb = rb0; rb < rb1; ++rb) {
        const uint16_t* Xh = in.Xh.data() + rb * kBf16BlockRows * e.dpad;
        for (long q = q0; q < q1; ++q)
          avx512_bf16_block(Xh, e.dpad, e.Wp.data() + 2 * q * panel_elems, ws.C.data() + (q - q0) * kBf16BlockLatents, n);
        be.C = ws.C.data();
        be.row0 = rb * kBf16BlockRows;
        for (int r = 0; r < kBf16BlockRows; ++r) epilogue_row(be, r, ws);
      }
    }
  };
  // Per row: exact values of the surviving candidates, or the whole row to the float32 path.
  std::vector<long> fallback;
  std::mutex fallback_mutex;
  std::atomic<long long> n_cand{0}, n_aux_cand{0};
  auto exact_rows = [&](long r_begin, long r_end) {
    std::vector<float> lows, vals, ups, part_ups;
    std::vector<int32_t> js, part_js;
    std::vector<uint64_t> keys, top;
    std::vector<CandidateSegment> segs, first, second;
    std::vector<long> mine;
    long long nc = 0, na = 0;
    for (long row = r_begin; row < r_end; ++row) {
      bool over = !in.ok[row];
      for (int w = 0; w < T && !over; ++w)
        over = states[w].main.n[row] < 0 || (aux && states[w].aux.n[row] < 0);
      if (over) {
        mine.push_back(row);
        continue;
      }
      const int32_t b0 = static_cast<int32_t>(js.size());
      collect_candidates(&WorkerState::main, states.data(), T, row, k, floor, lows, js, ups, false);
      segs.push_back(CandidateSegment{row, b0, static_cast<int32_t>(js.size()), false});
      if (aux) {
        const int32_t a0 = static_cast<int32_t>(js.size());
        collect_candidates(&WorkerState::aux, states.data(), T, row, k_aux, 0.f, lows, js, ups, true);
        segs.push_back(CandidateSegment{row, a0, static_cast<int32_t>(js.size()), true});
      }
    }
    // Two rounds of exact values: first a main row's candidates with the largest upper ends (k rounded up to whole
    // vectors), then only those of the rest whose upper end reaches the k-th exact value found (the others cannot
    // reach the Top-k: k values are already at or above it).
    const int first_count = (k + 15) / 16 * 16;
    for (CandidateSegment& sg : segs) {
      const int n = sg.end - sg.begin;
      if (sg.aux || n <= first_count) {
        first.push_back(sg);
        continue;
      }
      const float u_cut = kth_largest_bound(ups.data() + sg.begin, n, first_count, 10);  // >= first_count reach it
      // Partition, branch-free through a scratch copy: upper ends >= u_cut first (in order), the rest after (reversed).
      part_js.resize(n);
      part_ups.resize(n);
      int a = 0, b = n;
      for (int32_t i = sg.begin; i < sg.end; ++i) {
        const bool in_first = ups[i] >= u_cut;
        const int at = in_first ? a : b - 1;
        part_js[at] = js[i];
        part_ups[at] = ups[i];
        a += in_first;
        b -= !in_first;
      }
      std::copy(part_js.begin(), part_js.end(), js.begin() + sg.begin);
      std::copy(part_ups.begin(), part_ups.end(), ups.begin() + sg.begin);
      const int32_t w = sg.begin + a;
      first.push_back(CandidateSegment{sg.row, sg.begin, w, false});
      second.push_back(CandidateSegment{sg.row, w, sg.end, false});
    }
    vals.resize(js.size());
    exact_preacts(in.Xc.data(), enc.W_rows, enc.b_enc, enc.d, js.data(), first, vals.data());
    size_t si = 0;
    for (CandidateSegment& sg : segs) {
      if (si == second.size() || second[si].row != sg.row || sg.aux) continue;
      CandidateSegment& rest = second[si++];
      lows.clear();  // the first round's exact values above the floor
      for (int32_t i = sg.begin; i < rest.begin; ++i)
        if (vals[i] > floor) lows.push_back(vals[i]);
      const float t_k = certified::kth_largest(lows.data(), static_cast<int>(lows.size()), k);  // -inf: fewer than k
      int32_t w = rest.begin;
      for (int32_t i = rest.begin; i < rest.end; ++i) {  // branch-free compaction
        js[w] = js[i];
        w += ups[i] >= t_k;
      }
      rest.end = w;
      sg.end = w;
    }
    exact_preacts(in.Xc.data(), enc.W_rows, enc.b_enc, enc.d, js.data(), second, vals.data());
    for (const CandidateSegment& sg : segs) {
      if (sg.aux) {
        na += sg.end - sg.begin;
        const long out_row = aux_row0 + sg.row;
        finish_segment(sg, js.data(), vals.data(), k_aux, 0.f, enc.m, keys, top, aux->idx + out_row * k_aux,
                       aux->val + out_row * k_aux);
      } else {
        nc += sg.end - sg.begin;
        finish_segment(sg, js.data(), vals.data(), k, floor, enc.m, keys, top, idx + sg.row * k, val + sg.row * k);
      }
    }
    n_cand += nc;
    n_aux_cand += na;
    std::lock_guard<std::mutex> lock(fallback_mutex);
    fallback.insert(fallback.end(), mine.begin(), mine.end());
  };

  std::vector<std::chrono::steady_clock::time_point> gemm_end(T);  // per thread (CMSAE_PROFILE)
  if (fixed) {
    parallel_for(T, [&](int t) {
      const long r0 = split_begin(row_blocks, T, t), r1 = split_begin(row_blocks, T, t + 1);
      const long lo = std::min(rows, r0 * kBf16BlockRows), hi = std::min(rows, r1 * kBf16BlockRows);
      // A NaN or Inf row gets a void bound (closed below); the batch is refused after the region.
      if (prepare_row_range(enc, e, x, rows, r0 * kBf16BlockRows, r1 * kBf16BlockRows, in))
        nonfinite.store(true, std::memory_order_relaxed);
      close_void_rows(in, lo, hi, aux != nullptr, states[t]);
      for (long block = 0; block < n_blocks; ++block)
        for (long rb = r0; rb < r1; rb += kRunBlocks)
          run_item(rb, std::min(r1, rb + kRunBlocks), block, states[t], rb + kRunBlocks >= r1);
      gemm_end[t] = std::chrono::steady_clock::now();
      exact_rows(lo, hi);
    });
  } else {  // block-major items: the threads spread over the row blocks of one latent block first
    parallel_for_workers(static_cast<int>(row_blocks * n_blocks), [&](int item, int worker) {
      const long rb = item % row_blocks, block = item / row_blocks;
      run_item(rb, rb + 1, block, states[worker], false);
    });
    gemm_end.assign(T, std::chrono::steady_clock::now());
    const int TM = std::max(1, std::min<int>(T, static_cast<int>(rows)));
    parallel_for(TM, [&](int t) { exact_rows(split_begin(rows, TM, t), split_begin(rows, TM, t + 1)); });
  }
  const auto t2 = *std::max_element(gemm_end.begin(), gemm_end.end());
  const auto t3 = std::chrono::steady_clock::now();
  if (x_nonfinite && nonfinite.load()) {
    *x_nonfinite = true;
    return;
  }

  if (!fallback.empty()) {
    std::sort(fallback.begin(), fallback.end());
    const long nf = static_cast<long>(fallback.size());
    std::vector<float> xs(static_cast<size_t>(nf) * enc.d);
    for (long i = 0; i < nf; ++i) std::memcpy(xs.data() + i * enc.d, x + fallback[i] * enc.d, sizeof(float) * enc.d);
    std::vector<int32_t> fi(static_cast<size_t>(nf) * k), ai(static_cast<size_t>(nf) * k_aux);
    std::vector<float> fv(static_cast<size_t>(nf) * k), av(static_cast<size_t>(nf) * k_aux);
    AuxSelect sub{};
    if (aux) sub = AuxSelect{aux->dead, k_aux, ai.data(), av.data()};
    topk_encode_fp32(enc, xs.data(), nf, k, floor, fi.data(), fv.data(), aux ? &sub : nullptr);
    for (long i = 0; i < nf; ++i) {
      const long row = fallback[i];
      std::memcpy(idx + row * k, fi.data() + i * k, sizeof(int32_t) * k);
      std::memcpy(val + row * k, fv.data() + i * k, sizeof(float) * k);
      if (aux) {
        std::memcpy(aux->idx + (aux_row0 + row) * k_aux, ai.data() + i * k_aux, sizeof(int32_t) * k_aux);
        std::memcpy(aux->val + (aux_row0 + row) * k_aux, av.data() + i * k_aux, sizeof(float) * k_aux);
      }
    }
  }
  count_encode_rows(rows - static_cast<long>(fallback.size()), static_cast<long>(fallback.size()), n_cand.load(),
                    n_aux_cand.load());

  static const bool profile = std::getenv("CMSAE_PROFILE") != nullptr;
  if (profile) {
    const auto t4 = std::chrono::steady_clock::now();
    auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    std::fprintf(stderr,
                 "[certified %s %ld rows] prepare %.2fms gemm+bounds %.2fms exact %.2fms (%.1f cand/row) fallback "
                 "%.2fms (%zu rows)%s\n",
                 encode_path_name(path), rows, ms(t0, t1), ms(t1, t2), ms(t2, t3),
                 rows ? static_cast<double>(n_cand.load()) / rows : 0.0, ms(t3, t4), fallback.size(),
                 fixed ? "; one region: prepare counted in gemm+bounds, exact from the last thread's gemm end" : "");
    long long off = 0;
    for (int t = 0; t < T; ++t) off += states[t].main.offers;
    std::fprintf(stderr, "  offers/row %.1f\n", static_cast<double>(off) / rows);
  }
}

}  // namespace

void certified_topk_encode(EncodePath path, const EncoderView& enc, const float* x, long rows, int k, float floor,
                           int32_t* idx, float* val, const AuxSelect* aux, bool* x_nonfinite) {
  if (x_nonfinite) *x_nonfinite = false;
  if (!enc.bf16->all_finite) {  // a non-finite bound term: no certificate for any row
    if (nonfinite_checked_first(x, rows * static_cast<long>(enc.d), x_nonfinite)) return;
    topk_encode_fp32(enc, x, rows, k, floor, idx, val, aux);
    count_encode_rows(0, rows, 0, 0);
    return;
  }
  const int k_aux = aux ? aux->k : 0;
  const long per_row = 12L * selection_cap(k, enc.m) + 8 + (aux ? 12L * selection_cap(k_aux, enc.m) + 8 : 0);
  const long most = std::min(kMaxPassRows, std::max<long>(kBf16BlockRows, kStateBytesPerThread / per_row));
  const long n_passes = (rows + most - 1) / most;  // passes of equal size (no small last one)
  const long pass = ((rows + n_passes - 1) / n_passes + kBf16BlockRows - 1) / kBf16BlockRows * kBf16BlockRows;
  for (long r0 = 0; r0 < rows; r0 += pass) {
    const long n = std::min(pass, rows - r0);
    certified_pass(path, enc, x + r0 * enc.d, n, k, floor, idx + r0 * k, val + r0 * k, aux, r0, x_nonfinite);
    if (x_nonfinite && *x_nonfinite) return;
  }
}

}  // namespace cmsae
