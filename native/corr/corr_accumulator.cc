// Streaming co-activation accumulator, ingest side: each paired row is validated, its nonzeros buffered (A as
// index/value, B as packed records) and its per-latent moments n, sum a, sum a^2, fires, min/max added; the
// buffered pair products S_ij += a_i b_j are applied in chunks by flush() (corr_flush.cc) or on the device.
#include "corr_accumulator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "../common/errors.h"
#include "../common/memory.h"
#include "../common/thread_pool.h"
#include "code_checks.h"

namespace cmsae {
namespace {

constexpr size_t kFlushEntries = size_t(1) << 23;  // buffered A nonzeros before a chunk is applied (~140 MB)

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

std::unique_ptr<CorrAccumulator> CorrAccumulator::create(long long mA, long long mB, bool cuda) {
  if (mA > (1 << 28) || mB > (1 << 28) || mA * mB > (1LL << 32))
    fail("ERR_ARG", "mA x mB = " + std::to_string(mA * mB) +
                        " co-moments (8 bytes each) is more than this accumulator supports (2^32)");
  auto acc = std::make_unique<CorrAccumulator>(static_cast<int>(mA), static_cast<int>(mB));
  if (cuda) acc->use_device(true);
  return acc;
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

}  // namespace cmsae
