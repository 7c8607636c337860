// Column statistics of a batch segment (batch_stats.h).
#include "batch_stats.h"

#include <algorithm>

#include "../common/errors.h"
#include "../common/thread_pool.h"

namespace cmsae {

ColumnStats column_stats(const float* X, long rows, int d) {
  ColumnStats s;
  s.mean.assign(d, 0.0);
  const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), rows / 64 + 1)));
  std::vector<std::vector<double>> part(T, std::vector<double>(d, 0.0));
  parallel_for(T, [&](int t) {
    std::vector<double>& p = part[t];
    for (long r = split_begin(rows, T, t); r < split_begin(rows, T, t + 1); ++r)
      for (int c = 0; c < d; ++c) p[c] += X[r * d + c];
  });
  for (int t = 0; t < T; ++t)
    for (int c = 0; c < d; ++c) s.mean[c] += part[t][c];
  for (int c = 0; c < d; ++c) s.mean[c] /= static_cast<double>(rows);
  std::vector<double> tv(T, 0.0);
  parallel_for(T, [&](int t) {
    double acc = 0;
    for (long r = split_begin(rows, T, t); r < split_begin(rows, T, t + 1); ++r)
      for (int c = 0; c < d; ++c) {
        const double e = X[r * d + c] - s.mean[c];
        acc += e * e;
      }
    tv[t] = acc;
  });
  for (int t = 0; t < T; ++t) s.total_variance += tv[t];
  return s;
}

void fail_degenerate_batch(double total_variance) {
  if (total_variance > 0.0)
    fail("ERR_DEGENERATE_BATCH",
         "the batch's total variance (" + std::to_string(total_variance) + ") is too small for the FVU loss in "
         "float32 (inputs of scale ~1e-20): rescale the inputs (a normalization or a constant factor) or use loss 'mse'");
  fail("ERR_DEGENERATE_BATCH",
       "FVU is undefined for a batch whose rows are all identical (e.g. a single row): use a batch of "
       "distinct rows or loss 'mse'");
}

}  // namespace cmsae
