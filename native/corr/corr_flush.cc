// The co-moment update S_ij += a_i b_j of the buffered rows: A nonzeros grouped by latent (a stable parallel
// counting sort), then each thread owns a band of S's rows of about equal work (no atomics) and updates one
// L2-resident row at a time from the B records of that latent's rows (float64, exact per product).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "../common/thread_pool.h"
#include "corr_accumulator.h"

namespace cmsae {

void CorrAccumulator::flush() {
  if (dev_) dev_->drain(S_.data());
  if (bufA_off_.size() < 2) return;
  static const bool profile = std::getenv("CMSAE_PROFILE") != nullptr;
  const auto t0 = std::chrono::steady_clock::now();
  const long rows = static_cast<long>(bufA_off_.size()) - 1;
  const LatentGroups groups = group_by_latent(rows);
  const auto t1 = std::chrono::steady_clock::now();
  apply_grouped(groups);
  if (profile) {
    const auto t2 = std::chrono::steady_clock::now();
    auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    std::fprintf(stderr, "[corr flush %ld rows] group %.1fms update %.1fms (%.0fM updates/s)\n", rows, ms(t0, t1), ms(t1, t2),
                 groups.work[mA_] / ms(t1, t2) / 1e3);
  }
  clear_buffers();
}

// Group A nonzeros by latent: a parallel counting sort over row ranges (stable in row order), which also
// sums each latent's update count (the B nonzeros of its rows) for load balancing.
CorrAccumulator::LatentGroups CorrAccumulator::group_by_latent(long rows) {
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
  LatentGroups g;
  std::vector<int64_t>& start = g.start;
  std::vector<double>& work = g.work;
  start.assign(static_cast<size_t>(mA_) + 1, 0);
  work.assign(static_cast<size_t>(mA_) + 1, 0.0);
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
  return g;
}

// Thread t owns S's rows [band[t], band[t+1]) of about work[mA] / T updates; row i gets a * b_j from every
// entry of latent i.
void CorrAccumulator::apply_grouped(const LatentGroups& groups) {
  const std::vector<int64_t>& start = groups.start;
  const std::vector<double>& work = groups.work;
  const RawVector<BEntry>& ent = ent_;
  const int T = std::max(1, std::min(num_threads(), mA_));
  std::vector<int> band(T + 1, mA_);
  band[0] = 0;
  for (int t = 1, i = 0; t < T; ++t) {
    while (i < mA_ && work[i] < work[mA_] * t / T) ++i;
    band[t] = i;
  }
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
}

}  // namespace cmsae
