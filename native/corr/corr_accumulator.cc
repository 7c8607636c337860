// Streaming co-activation accumulator: S_ij += a_i b_j for every co-active pair of a paired row (float64,
// exact per product), applied in chunks grouped by A latent so that each thread owns a band of S's rows
// (no atomics) and updates one L2-resident row at a time. Pearson: C_ij = (S_ij/n - mu_i mu_j)/(s_i s_j).
#include "corr_accumulator.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "../common/checksum.h"
#include "../common/errors.h"
#include "../common/memory.h"
#include "../common/thread_pool.h"
#include "../sae/topk_select.h"

namespace cmsae {
namespace {

constexpr size_t kFlushEntries = size_t(1) << 23;  // buffered A nonzeros before a chunk is applied (~140 MB)
constexpr char kMagic[8] = {'C', 'M', 'S', 'A', 'E', 'C', 'R', '1'};
// Version 2 appends checksum64 of every byte before it. Version 1 (no checksum) is still read, with the same
// range checks.
constexpr uint32_t kFormatVersion = 2;

// Validates rows of codes and writes each row's number of nonzeros to counts[r].
void check_codes(const int32_t* idx, const float* val, int k, long rows, int m, const char* side,
                 std::vector<int64_t>& stamp, long row_label0, int32_t* counts) {
  for (long r = 0; r < rows; ++r) {
    int32_t nz = 0;
    for (int s = 0; s < k; ++s) {
      const long p = r * k + s;
      const float v = val[p];
      if (!std::isfinite(v))
        fail("ERR_NONFINITE", std::string(side) + " codes: value at row " + std::to_string(row_label0 + r) + ", slot " +
                                  std::to_string(s) + " is not finite; repair the codes before adding them");
      if (v == 0.f) continue;
      const int32_t j = idx[p];
      if (j < 0 || j >= m)
        fail("ERR_RANGE", std::string(side) + " codes: index " + std::to_string(j) + " at row " + std::to_string(row_label0 + r) +
                              " is outside [0, " + std::to_string(m) + "): the codes do not come from an SAE with m = " +
                              std::to_string(m));
      if (stamp[j] == r)
        fail("ERR_ARG", std::string(side) + " codes: latent " + std::to_string(j) + " is active twice in row " +
                            std::to_string(row_label0 + r) + "; each row may name a latent once");
      stamp[j] = r;
      ++nz;
    }
    counts[r] = nz;
  }
}

// Per-thread partial moments of one side (one record per latent: one cache line per nonzero), merged in
// thread order.
struct LatentMoments {
  double sum = 0, sumsq = 0, fires = 0;
  float mn = std::numeric_limits<float>::infinity(), mx = -std::numeric_limits<float>::infinity();
};

// Appends the nonzeros of rows [0, rows) to the CSR buffers (rows split over threads; sink.resize(n) and
// sink.put(q, j, v) store them) and adds their moments to `side`.
// counts[r]: the row's number of nonzeros (from check_codes).
template <class Sink>
void append_rows(const int32_t* idx, const float* val, int k, long rows, int m, const int32_t* counts, CorrSide& side,
                 RawVector<int64_t>& off, Sink sink) {
  if (off.empty()) off.push_back(0);
  const size_t off0 = off.size() - 1;
  off.resize(off0 + rows + 1);
  for (long r = 0; r < rows; ++r) off[off0 + r + 1] = off[off0 + r] + counts[r];
  sink.resize(static_cast<size_t>(off.back()));
  const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), rows / 1024 + 1)));
  std::vector<std::vector<LatentMoments>> part(T);
  parallel_for(T, [&](int t) {
    std::vector<LatentMoments> pm(m);
    for (long r = split_begin(rows, T, t); r < split_begin(rows, T, t + 1); ++r) {
      int64_t q = off[off0 + r];
      for (int s = 0; s < k; ++s) {
        const float v = val[r * k + s];
        if (v == 0.f) continue;
        const int32_t j = idx[r * k + s];
        LatentMoments& lm = pm[j];
        lm.sum += v;
        lm.sumsq += static_cast<double>(v) * v;
        lm.fires += 1.0;
        lm.mn = std::min(lm.mn, v);
        lm.mx = std::max(lm.mx, v);
        sink.put(q, j, v);
        ++q;
      }
    }
    part[t] = std::move(pm);
  });
  for (int t = 0; t < T; ++t)
    for (int j = 0; j < m; ++j) {
      const LatentMoments& lm = part[t][j];
      side.sum[j] += lm.sum;
      side.sumsq[j] += lm.sumsq;
      side.fires[j] += lm.fires;
      side.min_nz[j] = std::min(side.min_nz[j], lm.mn);
      side.max_nz[j] = std::max(side.max_nz[j], lm.mx);
    }
}

template <class T>
void put(std::vector<uint8_t>& out, const T* p, size_t n) {
  const uint8_t* b = reinterpret_cast<const uint8_t*>(p);
  out.insert(out.end(), b, b + n * sizeof(T));
}

template <class T>
void get(const uint8_t*& p, const uint8_t* end, T* dst, size_t n) {
  if (static_cast<size_t>(end - p) < n * sizeof(T)) fail("ERR_FORMAT", "correlation state is truncated");
  std::memcpy(dst, p, n * sizeof(T));
  p += n * sizeof(T);
}

}  // namespace

void CorrSide::resize(int m) {
  sum.assign(m, 0.0);
  sumsq.assign(m, 0.0);
  fires.assign(m, 0.0);
  min_nz.assign(m, std::numeric_limits<float>::infinity());
  max_nz.assign(m, -std::numeric_limits<float>::infinity());
}

CorrAccumulator::CorrAccumulator(int mA, int mB) : mA_(mA), mB_(mB) {
  require(mA > 0 && mB > 0, "ERR_ARG", "mA and mB must be >= 1");
  require_memory(8.0 * mA * mB + (size_t(1) << 28), "a " + std::to_string(mA) + " x " + std::to_string(mB) +
                                                      " correlation accumulator (float64 co-moments)");
  A_.resize(mA);
  B_.resize(mB);
  S_.reset_zeroed_parallel(static_cast<size_t>(mA) * mB);
}

void CorrAccumulator::add(const int32_t* ai, const float* av, int kA, const int32_t* bi, const float* bv, int kB,
                          long rows) {
  if (rows <= 0) return;
  // Validate first (rows split over threads; also counts each row's nonzeros): a rejected batch leaves the
  // state untouched.
  std::vector<int32_t> count_a(rows), count_b(rows);
  {
    const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), rows / 1024 + 1)));
    parallel_for(T, [&](int t) {
      const long r0 = split_begin(rows, T, t), r1 = split_begin(rows, T, t + 1);
      std::vector<int64_t> stamp_a(mA_, -1), stamp_b(mB_, -1);
      check_codes(ai + r0 * kA, av + r0 * kA, kA, r1 - r0, mA_, "A", stamp_a, r0, count_a.data() + r0);
      check_codes(bi + r0 * kB, bv + r0 * kB, kB, r1 - r0, mB_, "B", stamp_b, r0, count_b.data() + r0);
    });
  }
  // On the device the pair products go first: a failure there leaves the host moments and n_ unchanged.
  if (dev_) dev_->add(ai, av, kA, bi, bv, kB, rows);
  struct ASink {
    RawVector<int32_t>& idx;
    RawVector<float>& val;
    void resize(size_t n) { idx.resize(n), val.resize(n); }
    void put(int64_t q, int32_t j, float v) { idx[q] = j, val[q] = v; }
  };
  append_rows(ai, av, kA, rows, mA_, count_a.data(), A_, bufA_off_, ASink{bufA_idx_, bufA_val_});
  auto b_sink = [](auto& recs) {
    using Rec = std::remove_reference_t<decltype(recs[0])>;
    struct BSink {
      RawVector<Rec>& r;
      void resize(size_t n) { r.resize(n); }
      void put(int64_t q, int32_t j, float v) { r[q] = Rec{static_cast<decltype(Rec::idx)>(j), v}; }
    };
    return BSink{recs};
  };
  if (mB_ <= 65536) append_rows(bi, bv, kB, rows, mB_, count_b.data(), B_, bufB_off_, b_sink(bufB16_));
  else append_rows(bi, bv, kB, rows, mB_, count_b.data(), B_, bufB_off_, b_sink(bufB32_));
  n_ += rows;
  if (dev_) {
    clear_buffers();  // the moments are in A_/B_ now and the pair products on the device
    return;
  }
  if (bufA_idx_.size() >= kFlushEntries) flush();
}

void CorrAccumulator::clear_buffers() {
  bufA_off_.clear();
  bufB_off_.clear();
  bufA_idx_.clear();
  bufA_val_.clear();
  bufB16_.clear();
  bufB32_.clear();
}

void CorrAccumulator::use_device(bool cuda) {
  if (!cuda) {
    if (dev_) {
      dev_->drain(S_.data());
      dev_.reset();
    }
    return;
  }
  if (dev_) return;
  DeviceCorrFactory make = device_corr_factory();
  if (!make)
    fail("ERR_CUDA_UNAVAILABLE", "this build of crossmodal-sae has no CUDA backend (it was built without nvcc): use device 'cpu' or 'auto'");
  flush();
  dev_ = make(mA_, mB_);
}

void CorrAccumulator::flush() {
  if (dev_) dev_->drain(S_.data());
  if (bufA_off_.size() < 2) return;
  static const bool profile = std::getenv("CMSAE_PROFILE") != nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  const long rows = static_cast<long>(bufA_off_.size()) - 1;
  // Group A nonzeros by latent: a parallel counting sort over row ranges (stable in row order), which also
  // sums each latent's update count (the B nonzeros of its rows) for load balancing.
  const int TG = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), rows / 1024 + 1)));
  std::vector<std::vector<int64_t>> cnt(TG, std::vector<int64_t>(mA_, 0));
  std::vector<std::vector<double>> wpart(TG, std::vector<double>(mA_, 0.0));
  parallel_for(TG, [&](int t) {
    for (long r = split_begin(rows, TG, t); r < split_begin(rows, TG, t + 1); ++r) {
      const double nb = static_cast<double>(bufB_off_[r + 1] - bufB_off_[r]);
      for (int64_t p = bufA_off_[r]; p < bufA_off_[r + 1]; ++p) {
        ++cnt[t][bufA_idx_[p]];
        wpart[t][bufA_idx_[p]] += nb;
      }
    }
  });
  std::vector<int64_t> start(static_cast<size_t>(mA_) + 1, 0);
  std::vector<double> work(static_cast<size_t>(mA_) + 1, 0.0);
  for (int i = 0; i < mA_; ++i) {
    int64_t c = 0;
    double w = 0;
    for (int t = 0; t < TG; ++t) {
      const int64_t ct = cnt[t][i];
      cnt[t][i] = start[i] + c;  // becomes thread t's write cursor for latent i
      c += ct;
      w += wpart[t][i];
    }
    start[i + 1] = start[i] + c;
    work[i + 1] = work[i] + w;
  }
  // Each entry carries its B row's start and length directly, so the update loop (and its prefetch a few
  // entries ahead) reads them sequentially instead of chasing the row offsets.
  RawVector<BEntry>& ent = ent_;  // kept between flushes: no page faults per chunk
  ent.resize(bufA_idx_.size());
  parallel_for(TG, [&](int t) {
    std::vector<int64_t>& cur = cnt[t];
    for (long r = split_begin(rows, TG, t); r < split_begin(rows, TG, t + 1); ++r)
      for (int64_t p = bufA_off_[r]; p < bufA_off_[r + 1]; ++p) {
        const int32_t i = bufA_idx_[p];
        ent[cur[i]] = BEntry{bufB_off_[r], static_cast<int32_t>(bufB_off_[r + 1] - bufB_off_[r]), bufA_val_[p]};
        ++cur[i];
      }
  });
  const int T = std::max(1, std::min(num_threads(), mA_));
  std::vector<int> band(T + 1, mA_);
  band[0] = 0;
  for (int t = 1, i = 0; t < T; ++t) {
    while (i < mA_ && work[i] < work[mA_] * t / T) ++i;
    band[t] = i;
  }
  const auto t1 = std::chrono::steady_clock::now();
  auto update = [&](const auto* recs) {
    constexpr long rec_bytes = sizeof(recs[0]);
    parallel_for(T, [&](int t) {
      for (int i = band[t]; i < band[t + 1]; ++i) {
        double* row = S_.data() + static_cast<size_t>(i) * mB_;
        for (int64_t e = start[i]; e < start[i + 1]; ++e) {
          if (e + 4 < start[i + 1]) {  // the B rows of a latent's entries are scattered: fetch 4 entries ahead
            const BEntry& nx = ent[e + 4];
            const char* p = reinterpret_cast<const char*>(recs + nx.b_off);
            const long bytes = static_cast<long>(nx.b_len) * rec_bytes;
            for (long off = 0; off < bytes + 63; off += 64) __builtin_prefetch(p + std::min(off, bytes - 1));
          }
          const BEntry& en = ent[e];
          const double a = en.a;
          const auto* b = recs + en.b_off;
          for (int32_t q = 0; q < en.b_len; ++q) row[b[q].idx] += a * b[q].val;
        }
      }
    });
  };
  if (mB_ <= 65536) update(bufB16_.data());
  else update(bufB32_.data());
  if (profile) {
    const auto t2 = std::chrono::steady_clock::now();
    auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    std::fprintf(stderr, "[corr flush %ld rows] group %.1fms update %.1fms (%.0fM updates/s)\n", rows, ms(t0, t1), ms(t1, t2),
                 work[mA_] / ms(t1, t2) / 1e3);
  }
  clear_buffers();
}

void CorrAccumulator::merge(CorrAccumulator& o) {
  require(o.mA_ == mA_ && o.mB_ == mB_, "ERR_SHAPE",
          "cannot merge correlation accumulators of different sizes (" + std::to_string(mA_) + "x" +
              std::to_string(mB_) + " vs " + std::to_string(o.mA_) + "x" + std::to_string(o.mB_) + ")");
  require(&o != this, "ERR_ARG", "cannot merge an accumulator into itself");
  flush();
  o.flush();
  auto merge_side = [](CorrSide& d, const CorrSide& s) {
    for (size_t j = 0; j < d.sum.size(); ++j) {
      d.sum[j] += s.sum[j];
      d.sumsq[j] += s.sumsq[j];
      d.fires[j] += s.fires[j];
      d.min_nz[j] = std::min(d.min_nz[j], s.min_nz[j]);
      d.max_nz[j] = std::max(d.max_nz[j], s.max_nz[j]);
    }
  };
  merge_side(A_, o.A_);
  merge_side(B_, o.B_);
  const size_t total = S_.size();
  const int T = num_threads();
  parallel_for(T, [&](int t) {
    for (size_t p = split_begin(total, T, t); p < static_cast<size_t>(split_begin(total, T, t + 1)); ++p) S_[p] += o.S_[p];
  });
  n_ += o.n_;
}

void CorrAccumulator::side_stats(bool side_b, double min_fires, CorrResult& out) {
  flush();
  const CorrSide& s = side_b ? B_ : A_;
  const int m = side_b ? mB_ : mA_;
  out.mean.assign(m, 0.0);
  out.std.assign(m, 0.0);
  out.alive.assign(m, 0);
  if (n_ == 0) return;
  const double n = static_cast<double>(n_);
  for (int j = 0; j < m; ++j) {
    out.mean[j] = s.sum[j] / n;
    // Constant latents (never active, or always active with one value) have exactly zero variance.
    const bool constant = s.fires[j] == 0 || (s.fires[j] == n && s.min_nz[j] == s.max_nz[j]);
    const double var = constant ? 0.0 : std::max(0.0, (s.sumsq[j] - s.sum[j] * s.sum[j] / n) / n);
    out.std[j] = std::sqrt(var);
    out.alive[j] = !constant && var > 0 && s.fires[j] >= min_fires;
  }
}

template <class T>
void CorrAccumulator::correlation_into(const CorrResult& a, const CorrResult& b, T* out) {
  flush();
  const double n = static_cast<double>(n_);
  // C_ij = (S_ij/n - mu_i mu_j) / (s_i s_j) = S_ij (1/(n s_i)) (1/s_j) - (mu_i/s_i)(mu_j/s_j); 0 for dead j.
  std::vector<double> inv_b(mB_, 0.0), mean_over_std_b(mB_, 0.0);
  for (int j = 0; j < mB_; ++j)
    if (b.alive[j]) {
      inv_b[j] = 1.0 / b.std[j];
      mean_over_std_b[j] = b.mean[j] / b.std[j];
    }
  const int T_ = std::max(1, std::min(num_threads(), mA_));
  parallel_for(T_, [&](int t) {
    for (long i = split_begin(mA_, T_, t); i < split_begin(mA_, T_, t + 1); ++i) {
      T* o = out + static_cast<size_t>(i) * mB_;
      if (!a.alive[i]) {
        std::fill(o, o + mB_, T(0));
        continue;
      }
      const double* row = S_.data() + static_cast<size_t>(i) * mB_;
      const double f = 1.0 / (n * a.std[i]), g = a.mean[i] / a.std[i];
      for (int j = 0; j < mB_; ++j) o[j] = static_cast<T>(row[j] * f * inv_b[j] - g * mean_over_std_b[j]);
    }
  });
}

void CorrAccumulator::correlation(const CorrResult& a, const CorrResult& b, float* out) { correlation_into(a, b, out); }
void CorrAccumulator::correlation(const CorrResult& a, const CorrResult& b, double* out) { correlation_into(a, b, out); }

void CorrAccumulator::top_correlations(const CorrResult& a, const CorrResult& b, int k, int32_t* row_idx,
                                       float* row_val, int32_t* col_idx, float* col_val) {
  flush();
  const double n = static_cast<double>(n_);
  const int T = std::max(1, std::min(num_threads(), mA_));
  // Per-thread column candidate heaps (min-heaps of keys), merged at the end.
  std::vector<std::vector<uint64_t>> col_keys(T, std::vector<uint64_t>(static_cast<size_t>(mB_) * k));
  std::vector<std::vector<int>> col_cnt(T, std::vector<int>(mB_, 0));
  parallel_for(T, [&](int t) {
    std::vector<uint64_t> keys;
    std::vector<uint64_t>& ck = col_keys[t];
    std::vector<int>& cc = col_cnt[t];
    for (long i = split_begin(mA_, T, t); i < split_begin(mA_, T, t + 1); ++i) {
      keys.clear();
      if (a.alive[i]) {
        const double* row = S_.data() + static_cast<size_t>(i) * mB_;
        for (int j = 0; j < mB_; ++j) {
          if (!b.alive[j]) continue;
          const float c = static_cast<float>((row[j] / n - a.mean[i] * b.mean[j]) / (a.std[i] * b.std[j]));
          keys.push_back(candidate_key(c, j));
          key_heap_offer(ck.data() + static_cast<size_t>(j) * k, cc[j], k, candidate_key(c, static_cast<int32_t>(i)));
        }
      }
      const int keep = std::min<int>(k, static_cast<int>(keys.size()));
      std::partial_sort(keys.begin(), keys.begin() + keep, keys.end(), std::greater<uint64_t>());
      for (int s = 0; s < k; ++s) {
        const Candidate c = s < keep ? key_candidate(keys[s]) : Candidate{0.f, -1};
        row_idx[i * k + s] = c.index;
        row_val[i * k + s] = c.value;
      }
    }
  });
  const int TC = std::max(1, std::min(num_threads(), mB_));
  parallel_for(TC, [&](int t) {
    std::vector<uint64_t> keys;
    for (long j = split_begin(mB_, TC, t); j < split_begin(mB_, TC, t + 1); ++j) {
      keys.clear();
      for (int u = 0; u < T; ++u) keys.insert(keys.end(), col_keys[u].begin() + j * k, col_keys[u].begin() + j * k + col_cnt[u][j]);
      const int keep = std::min<int>(k, static_cast<int>(keys.size()));
      std::partial_sort(keys.begin(), keys.begin() + keep, keys.end(), std::greater<uint64_t>());
      for (int s = 0; s < k; ++s) {
        const Candidate c = s < keep ? key_candidate(keys[s]) : Candidate{0.f, -1};
        col_idx[j * k + s] = c.index;
        col_val[j * k + s] = c.value;
      }
    }
  });
}

std::vector<uint8_t> CorrAccumulator::serialize() {
  flush();
  std::vector<uint8_t> out;
  out.reserve(64 + S_.size() * 8 + (mA_ + mB_) * 32);
  put(out, kMagic, 8);
  const uint32_t header[4] = {kFormatVersion, static_cast<uint32_t>(mA_), static_cast<uint32_t>(mB_), 0};
  put(out, header, 4);
  const int64_t n = n_;
  put(out, &n, 1);
  for (const CorrSide* s : {&A_, &B_}) {
    put(out, s->sum.data(), s->sum.size());
    put(out, s->sumsq.data(), s->sumsq.size());
    put(out, s->fires.data(), s->fires.size());
    put(out, s->min_nz.data(), s->min_nz.size());
    put(out, s->max_nz.data(), s->max_nz.size());
  }
  put(out, S_.data(), S_.size());
  const uint64_t sum = checksum64(out.data(), out.size());
  put(out, &sum, 1);
  return out;
}

CorrAccumulator CorrAccumulator::deserialize(const uint8_t* data, size_t size) {
  const uint8_t* p = data;
  const uint8_t* end = data + size;
  char magic[8];
  get(p, end, magic, 8);
  if (std::memcmp(magic, kMagic, 8) != 0) fail("ERR_FORMAT", "not a serialized CorrelationAccumulator (bad magic)");
  uint32_t header[4];
  get(p, end, header, 4);
  if (header[0] != 1 && header[0] != kFormatVersion)
    fail("ERR_FORMAT", "CorrelationAccumulator format version " + std::to_string(header[0]) +
                           " is not supported (this version reads 1 and 2; a newer crossmodal-sae wrote it?)");
  if (header[1] == 0 || header[2] == 0 || header[1] > (1u << 28) || header[2] > (1u << 28) || header[3] != 0)
    fail("ERR_FORMAT", "serialized CorrelationAccumulator has an invalid header (sizes " + std::to_string(header[1]) + " x " +
                           std::to_string(header[2]) + "): corrupt or not ours");
  const uint64_t mA = header[1], mB = header[2];
  const uint64_t body = 8 + 16 + 8 + (mA + mB) * (3 * 8 + 2 * 4) + mA * mB * 8;
  const uint64_t expect = body + (header[0] >= 2 ? 8 : 0);
  if (size != expect)
    fail("ERR_FORMAT", "serialized CorrelationAccumulator has " + std::to_string(size) + " bytes, expected " +
                           std::to_string(expect) + " (truncated or corrupt)");
  if (header[0] >= 2) {
    uint64_t stored;
    std::memcpy(&stored, data + body, 8);
    if (stored != checksum64(data, body))
      fail("ERR_FORMAT", "serialized CorrelationAccumulator is corrupt (checksum mismatch): serialize the shard again");
  }
  CorrAccumulator acc(static_cast<int>(mA), static_cast<int>(mB));
  int64_t n;
  get(p, end, &n, 1);
  if (n < 0) fail("ERR_FORMAT", "serialized CorrelationAccumulator has a negative row count");
  acc.n_ = n;
  for (CorrSide* s : {&acc.A_, &acc.B_}) {
    get(p, end, s->sum.data(), s->sum.size());
    get(p, end, s->sumsq.data(), s->sumsq.size());
    get(p, end, s->fires.data(), s->fires.size());
    get(p, end, s->min_nz.data(), s->min_nz.size());
    get(p, end, s->max_nz.data(), s->max_nz.size());
  }
  get(p, end, acc.S_.data(), acc.S_.size());
  acc.check_state();
  return acc;
}

// What the statistics of real codes satisfy, with room for float64 rounding: per latent 0 <= fires <= n
// (a whole number), no moments without fires, finite extremes min <= max bounding the values,
// sum^2 <= fires * sumsq <= fires^2 max(min^2, max^2); per pair |S_ij/n - mu_i mu_j| <= s_i s_j
// (Cauchy-Schwarz on the centered codes), so every correlation lies in [-1, 1] up to rounding.
void CorrAccumulator::check_state() const {
  const double n = static_cast<double>(n_), tol = 1e-6;
  auto bad = [](const char* side, int j, const std::string& why) {
    fail("ERR_FORMAT", std::string("serialized CorrelationAccumulator is corrupt: side ") + side + " latent " + std::to_string(j) + " " + why);
  };
  for (int b = 0; b < 2; ++b) {
    const CorrSide& s = b ? B_ : A_;
    const char* side = b ? "B" : "A";
    for (int j = 0; j < static_cast<int>(s.sum.size()); ++j) {
      const double f = s.fires[j], sum = s.sum[j], sq = s.sumsq[j], lo = s.min_nz[j], hi = s.max_nz[j];
      if (!(f >= 0 && f <= n && f == std::floor(f))) bad(side, j, "has a fire count of " + std::to_string(f) + " for " + std::to_string(n_) + " rows");
      if (!std::isfinite(sum) || !(sq >= 0) || !std::isfinite(sq)) bad(side, j, "has non-finite or negative moments");
      if (f == 0) {
        if (sum != 0 || sq != 0 || lo != std::numeric_limits<float>::infinity() || hi != -std::numeric_limits<float>::infinity())
          bad(side, j, "has moments but never fired");
        continue;
      }
      if (!(std::isfinite(lo) && std::isfinite(hi) && lo <= hi)) bad(side, j, "has invalid extremes");
      const double big = std::max(lo * lo, hi * hi), slack = tol * f * std::sqrt(big);
      if (!(sum >= f * lo - slack && sum <= f * hi + slack)) bad(side, j, "has a sum outside fires x [min, max]");
      if (!(sum * sum <= f * sq * (1 + tol) && sq <= f * big * (1 + tol))) bad(side, j, "has inconsistent first and second moments");
    }
  }
  if (n_ == 0) {
    for (size_t q = 0; q < S_.size(); ++q)
      if (S_[q] != 0) fail("ERR_FORMAT", "serialized CorrelationAccumulator is corrupt: co-moments without rows");
    return;
  }
  // Means and population standard deviations exactly as side_stats computes them.
  auto moments = [n](const CorrSide& s, std::vector<double>& mu, std::vector<double>& sd) {
    mu.resize(s.sum.size());
    sd.resize(s.sum.size());
    for (size_t j = 0; j < s.sum.size(); ++j) {
      mu[j] = s.sum[j] / n;
      sd[j] = std::sqrt(std::max(0.0, (s.sumsq[j] - s.sum[j] * s.sum[j] / n) / n));
    }
  };
  std::vector<double> mua, sda, mub, sdb;
  moments(A_, mua, sda);
  moments(B_, mub, sdb);
  const int T = std::max(1, std::min(num_threads(), mA_));
  std::vector<int> first_bad(static_cast<size_t>(T), -1);
  parallel_for(T, [&](int t) {
    for (long i = split_begin(mA_, T, t); i < split_begin(mA_, T, t + 1); ++i) {
      const double* row = S_.data() + static_cast<size_t>(i) * mB_;
      const double mi = mua[i], si = sda[i] * (1 + tol), ami = std::fabs(mua[i]);
      int bad_here = 0;
#pragma omp simd reduction(+ : bad_here)
      for (int j = 0; j < mB_; ++j) {
        const double cov = row[j] / n - mi * mub[j];
        const double limit = si * sdb[j] + 1e-12 * (std::fabs(row[j]) / n + ami * std::fabs(mub[j]));
        bad_here += !(std::fabs(cov) <= limit);  // also NaN
      }
      if (bad_here) {
        first_bad[t] = static_cast<int>(i);
        return;
      }
    }
  });
  for (int t = 0; t < T; ++t)
    if (first_bad[t] >= 0)
      fail("ERR_FORMAT", "serialized CorrelationAccumulator is corrupt: co-moments of A latent " + std::to_string(first_bad[t]) +
                             " are not finite or would give a correlation outside [-1, 1]");
}

}  // namespace cmsae
