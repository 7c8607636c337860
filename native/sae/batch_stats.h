// Column statistics of a batch segment: mean[c] = (1/rows) sum_r X[r, c] and
// total_variance = sum_r sum_c (X[r, c] - mean[c])^2 (float64, per-thread partial sums in a fixed order).
#pragma once
#include <string>
#include <vector>

namespace cmsae {

struct ColumnStats {
  std::vector<double> mean;
  double total_variance = 0;
};

ColumnStats column_stats(const float* X, long rows, int d);

// ERR_DEGENERATE_BATCH for a segment whose total variance is too small for the FVU loss (loss_scale.h).
[[noreturn]] void fail_degenerate_batch(double total_variance);

}  // namespace cmsae
