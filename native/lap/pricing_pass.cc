// Pricing: reduced cost r_ij = c_ij - u_i - v_j for the entries the floors do not certify (an entry outside the
// graph costs at least max(row_floor_i, col_floor_j)); r_ij < -tol is a violation.
#include "pricing_pass.h"

#include <algorithm>
#include <functional>
#include <vector>

#include "../common/thread_pool.h"
#include "scan_kernels.h"

namespace cmsae::lap {
namespace {

// Row i has nothing to check unless some column j has v_j > row_floor_i - u_i + tol and col_floor_j - v_j <
// u_i - tol: with the columns sorted by v (descending) and prefix minima of col_floor_j - v_j that is one binary
// search per row (reach: how many of the sorted columns pass the first test).
struct PricingBounds {
  std::vector<int32_t> by_v;
  std::vector<double> v_desc, slack_min;
  PricingBounds(const std::vector<double>& vc, const std::vector<double>& col_floor) {
    const long cols = static_cast<long>(col_floor.size());
    by_v.resize(cols);
    for (long j = 0; j < cols; ++j) by_v[j] = static_cast<int32_t>(j);
    std::sort(by_v.begin(), by_v.end(), [&](int32_t a, int32_t b) { return vc[a] > vc[b] || (vc[a] == vc[b] && a < b); });
    v_desc.resize(cols);
    slack_min.resize(cols);
    for (long q = 0; q < cols; ++q) {
      v_desc[q] = vc[by_v[q]];
      const double z = col_floor[by_v[q]] - vc[by_v[q]];
      slack_min[q] = q ? std::min(slack_min[q - 1], z) : z;
    }
  }
  long reach(double row_floor, double ui, double tol) const {
    return std::lower_bound(v_desc.begin(), v_desc.end(), row_floor - ui + tol, std::greater<double>()) - v_desc.begin();
  }
};

// The rows the bounds do not certify, scanned on the device. False when it found more violations than it may
// return (the CPU prices then).
bool price_on_device(DeviceLap* dev, const std::vector<double>& ur, const std::vector<double>& vc,
                     const CandidateFloors& floors, const PricingBounds& b, double tol, int k, Violations& out) {
  const long rows = static_cast<long>(floors.row.size());  // one floor per original row
  std::vector<int32_t> scan;
  for (long i = 0; i < rows; ++i) {
    const long p = b.reach(floors.row[i], ur[i], tol);
    if (p > 0 && b.slack_min[p - 1] < ur[i] - tol) scan.push_back(static_cast<int32_t>(i));
  }
  std::vector<LapViolation> found;
  const long cap = std::max<long>(1L << 16, 4L * k * rows);
  const long n_viol = dev->price(scan, ur.data(), vc.data(), tol, cap, found);
  if (n_viol > cap) return false;
  std::sort(found.begin(), found.end(), [](const LapViolation& a, const LapViolation& b) { return a.row < b.row || (a.row == b.row && a.col < b.col); });
  for (const LapViolation& e : found) out.per_row[e.row].offer(e.reduced, e.col);
  out.total = n_viol;
  out.rows_scanned = static_cast<long>(scan.size());
  return true;
}

// Row i on the CPU: only the p columns the bounds leave when they are few, else the whole row through the SIMD
// filter. Returns the number of violating entries (the most violating 4k are offered to vi).
template <class Cost>
long price_row(const ScanKernelsT<Cost>& K, const MinCost<Cost>& D, long i, long p, double ui, const std::vector<double>& vc,
               const std::vector<double>& col_floor, const PricingBounds& b, double tol, TopK& vi) {
  const long cols = D.cols;
  long count = 0;
  auto check = [&](long j) {
    const double red = D.at(i, j) - ui - vc[j];
    if (!(red < -tol)) return;
    ++count;
    if (red < vi.thr()) vi.offer(red, static_cast<int32_t>(j));
  };
  if (p * 64 <= cols) {
    for (long q = 0; q < p; ++q) {
      const long j = b.by_v[q];
      if (col_floor[j] - vc[j] < ui - tol) check(j);
    }
    return count;
  }
  const Cost* row = D.data + i * cols;
  for (long j0 = 0; j0 < cols; j0 += 64) {
    const int len = static_cast<int>(std::min<long>(64, cols - j0));
    for (uint64_t mask = K.price_mask(row + j0, len, D.maximize ? -1.0 : 1.0, ui, vc.data() + j0, tol); mask; mask &= mask - 1)
      check(j0 + lowest_bit(mask));
  }
  return count;
}

template <class Cost>
void price_on_cpu(const MinCost<Cost>& D, const std::vector<double>& ur, const std::vector<double>& vc,
                  const CandidateFloors& floors, const PricingBounds& b, double tol, Violations& out) {
  const ScanKernelsT<Cost>& K = scan_kernels().template of<Cost>();
  const long rows = D.rows;
  const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), rows)));
  std::vector<long> counts(T, 0), scanned(T, 0);
  parallel_for(T, [&](int t) {
    for (long i = split_begin(rows, T, t); i < split_begin(rows, T, t + 1); ++i) {
      const double ui = ur[i];
      const long p = b.reach(floors.row[i], ui, tol);
      if (p == 0 || b.slack_min[p - 1] >= ui - tol) continue;  // certified by the bounds
      ++scanned[t];
      counts[t] += price_row(K, D, i, p, ui, vc, floors.col, b, tol, out.per_row[i]);
    }
  });
  out.total = 0;
  out.rows_scanned = 0;
  for (int t = 0; t < T; ++t) {
    out.total += counts[t];
    out.rows_scanned += scanned[t];
  }
}

}  // namespace

template <class Cost>
Violations price_out(const MinCost<Cost>& D, const std::vector<double>& ur, const std::vector<double>& vc,
                     const CandidateFloors& floors, double tol, int k, DeviceLap* dev) {
  const PricingBounds bounds(vc, floors.col);
  Violations out;
  out.per_row.assign(D.rows, TopK{{}, 4 * k});
  if (dev && price_on_device(dev, ur, vc, floors, bounds, tol, k, out)) return out;
  price_on_cpu(D, ur, vc, floors, bounds, tol, out);
  return out;
}

template Violations price_out<float>(const MinCost<float>&, const std::vector<double>&, const std::vector<double>&,
                                     const CandidateFloors&, double, int, DeviceLap*);
template Violations price_out<double>(const MinCost<double>&, const std::vector<double>&, const std::vector<double>&,
                                      const CandidateFloors&, double, int, DeviceLap*);

}  // namespace cmsae::lap
