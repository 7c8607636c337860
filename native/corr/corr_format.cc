// The accumulator's binary state: magic "CMSAECR1", header {version, mA, mB, 0}, n, per side sum/sumsq/fires
// (float64) and min/max (float32), S (float64, [mA, mB]), then (version 2) checksum64 of every byte before it.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../common/byte_io.h"
#include "../common/checksum.h"
#include "../common/errors.h"
#include "../common/thread_pool.h"
#include "corr_accumulator.h"

namespace cmsae {
namespace {

constexpr char kMagic[8] = {'C', 'M', 'S', 'A', 'E', 'C', 'R', '1'};
// Version 2 appends checksum64 of every byte before it. Version 1 (no checksum) is still read, with the same
// range checks.
constexpr uint32_t kFormatVersion = 2;

}  // namespace

std::vector<uint8_t> CorrAccumulator::serialize() {
  flush();
  std::vector<uint8_t> out;
  out.reserve(64 + S_.size() * 8 + (mA_ + mB_) * 32);
  append_bytes(out, kMagic, 8);
  const uint32_t header[4] = {kFormatVersion, static_cast<uint32_t>(mA_), static_cast<uint32_t>(mB_), 0};
  append_bytes(out, header, 4);
  const int64_t n = n_;
  append_bytes(out, &n, 1);
  for (const CorrSide* s : {&A_, &B_}) {
    append_bytes(out, s->sum.data(), s->sum.size());
    append_bytes(out, s->sumsq.data(), s->sumsq.size());
    append_bytes(out, s->fires.data(), s->fires.size());
    append_bytes(out, s->min_nz.data(), s->min_nz.size());
    append_bytes(out, s->max_nz.data(), s->max_nz.size());
  }
  append_bytes(out, S_.data(), S_.size());
  const uint64_t sum = checksum64(out.data(), out.size());
  append_bytes(out, &sum, 1);
  return out;
}

CorrAccumulator CorrAccumulator::deserialize(const uint8_t* data, size_t size) {
  ByteReader rd{data, data + size, "correlation state"};
  char magic[8];
  rd.get(magic, 8);
  if (std::memcmp(magic, kMagic, 8) != 0) fail("ERR_FORMAT", "not a serialized CorrelationAccumulator (bad magic)");
  uint32_t header[4];
  rd.get(header, 4);
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
  rd.get(&n, 1);
  if (n < 0) fail("ERR_FORMAT", "serialized CorrelationAccumulator has a negative row count");
  acc.n_ = n;
  for (CorrSide* s : {&acc.A_, &acc.B_}) {
    rd.get(s->sum.data(), s->sum.size());
    rd.get(s->sumsq.data(), s->sumsq.size());
    rd.get(s->fires.data(), s->fires.size());
    rd.get(s->min_nz.data(), s->min_nz.size());
    rd.get(s->max_nz.data(), s->max_nz.size());
  }
  rd.get(acc.S_.data(), acc.S_.size());
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
