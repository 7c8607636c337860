// The pricing pass of the certified sparse path: every dense entry's reduced cost c_ij - u_i - v_j against the
// sparse duals; entries below -tol violate them and join the graph (none left: the sparse optimum is the dense one).
#pragma once
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "candidate_pass.h"
#include "device_lap.h"
#include "sparse_graph.h"

namespace cmsae::lap {

// Keeps the k smallest (value, index) pairs; worst at h[0] (used where few offers arrive: pricing).
struct TopK {
  std::vector<std::pair<double, int32_t>> h;
  int k;
  double thr() const { return static_cast<int>(h.size()) < k ? kInf : h.front().first; }
  void offer(double c, int32_t j) {
    if (static_cast<int>(h.size()) < k) {
      h.push_back({c, j});
      std::push_heap(h.begin(), h.end());
    } else if (std::make_pair(c, j) < h.front()) {
      std::pop_heap(h.begin(), h.end());
      h.back() = {c, j};
      std::push_heap(h.begin(), h.end());
    }
  }
};

struct Violations {
  std::vector<TopK> per_row;  // [rows]: the most violating 4k entries of each original row (memory O(n k))
  long total = 0;             // violating entries in all
  long rows_scanned = 0;      // rows the floors did not certify
};

// Prices D against ur (dual of each original row) and vc (of each original column), on `dev` when given (the
// CPU prices when the device finds more violations than it returns).
template <class Cost>
Violations price_out(const MinCost<Cost>& D, const std::vector<double>& ur, const std::vector<double>& vc,
                     const CandidateFloors& floors, double tol, int k, DeviceLap* dev);

}  // namespace cmsae::lap
