// The pricing pass's exact search for violating rank-one entries of a row: columns grouped by their rank-one
// key (Q, or |Q|) into buckets of equal count, each sorted by the column dual v descending. An entry of cost
// >= x * key - slack violates only if v_c > x * key - u + tol, so within a bucket (key in [lo, hi]) the columns
// that can violate are a prefix of that order: v_c > min(x lo, x hi) - slack - u + tol.
#pragma once
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

namespace cmsae::coact {

class RankOneBuckets {
 public:
  RankOneBuckets(const std::vector<double>& key, const std::vector<double>& v, int buckets = 64) {
    const long n = static_cast<long>(key.size());
    std::vector<int32_t> by_key(n);
    std::iota(by_key.begin(), by_key.end(), 0);
    std::sort(by_key.begin(), by_key.end(), [&](int32_t a, int32_t b) { return key[a] < key[b]; });
    const long nb = std::max<long>(1, std::min<long>(buckets, n));
    start_.push_back(0);
    for (long b = 0; b < nb; ++b) {
      const long s = n * b / nb, e = n * (b + 1) / nb;
      if (s == e) continue;
      lo_.push_back(key[by_key[s]]);
      hi_.push_back(key[by_key[e - 1]]);
      std::vector<int32_t> cols(by_key.begin() + s, by_key.begin() + e);
      std::sort(cols.begin(), cols.end(), [&](int32_t a, int32_t c) { return v[a] > v[c]; });
      for (int32_t c : cols) {
        col_.push_back(c);
        v_.push_back(v[c]);
      }
      start_.push_back(col_.size());
    }
  }
  // fn(c) for every column with v_c > min(x lo_b, x hi_b) + shift in its bucket b (and a few more).
  template <class Fn>
  void for_candidates(double x, double shift, Fn&& fn) const {
    for (size_t b = 0; b + 1 < start_.size(); ++b) {
      const double lim = std::min(x * lo_[b], x * hi_[b]) + shift;
      for (size_t q = start_[b]; q < start_[b + 1] && v_[q] > lim; ++q) fn(col_[q]);
    }
  }

 private:
  std::vector<int32_t> col_;
  std::vector<double> v_;
  std::vector<size_t> start_;
  std::vector<double> lo_, hi_;
};

}  // namespace cmsae::coact
