// Lower envelope of lines y = a_c x + b_c (the convex-hull trick): min over c of a_c x + b_c for any x in
// O(log n) after an O(n log n) build. The pricing pass bounds every rank-one reduced cost of a row with it.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

namespace cmsae::coact {

class LowerEnvelope {
 public:
  // lines: (slope, intercept) pairs, any order.
  explicit LowerEnvelope(std::vector<std::pair<double, double>> lines) {
    // Slopes descending; of equal slopes only the lowest intercept matters.
    std::sort(lines.begin(), lines.end(), [](const auto& p, const auto& q) {
      return p.first != q.first ? p.first > q.first : p.second < q.second;
    });
    for (const auto& l : lines) {
      if (!hull_.empty() && hull_.back().first == l.first) continue;
      while (hull_.size() >= 2 && redundant(hull_[hull_.size() - 2], hull_.back(), l)) hull_.pop_back();
      hull_.push_back(l);
    }
    for (size_t t = 0; t + 1 < hull_.size(); ++t) breaks_.push_back(cross(hull_[t], hull_[t + 1]));
    for (const auto& l : hull_) {
      amax_ = std::max(amax_, std::fabs(l.first));
      bmax_ = std::max(bmax_, std::fabs(l.second));
    }
  }
  bool empty() const { return hull_.empty(); }
  // min over the lines at x, less a margin for the rounding of the build (a lower bound in exact arithmetic).
  double lower_bound(double x) const {
    if (hull_.empty()) return INFINITY;
    const size_t t = static_cast<size_t>(std::lower_bound(breaks_.begin(), breaks_.end(), x) - breaks_.begin());
    double best = INFINITY;
    for (size_t q = t >= 2 ? t - 2 : 0; q < std::min(hull_.size(), t + 3); ++q) best = std::min(best, hull_[q].first * x + hull_[q].second);
    return best - 1e-12 * (std::fabs(x) * amax_ + bmax_);
  }

 private:
  using Line = std::pair<double, double>;
  static double cross(const Line& p, const Line& q) { return (q.second - p.second) / (p.first - q.first); }
  // With slopes a1 > a2 > a3, the middle line is never the minimum when l1 and l3 cross left of l1 and l2.
  static bool redundant(const Line& l1, const Line& l2, const Line& l3) {
    return (l3.second - l1.second) * (l1.first - l2.first) <= (l2.second - l1.second) * (l1.first - l3.first);
  }
  std::vector<Line> hull_;
  std::vector<double> breaks_;
  double amax_ = 0, bmax_ = 0;
};

}  // namespace cmsae::coact
