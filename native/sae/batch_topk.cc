// BatchTopK selection (batch_topk.h): the R*k largest positive pre-activations of the batch.
#include "batch_topk.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <vector>

#include "topk_select.h"

namespace cmsae {

BatchTopKKept batch_topk_select(const EncoderView& enc, const float* X, long R, int k, int capacity, CodesBuffer& codes) {
  const int m = enc.m, d = enc.d;
  const int cap = capacity;
  std::vector<int32_t> ci(static_cast<size_t>(R) * cap);
  std::vector<float> cv(static_cast<size_t>(R) * cap);
  topk_encode(enc, X, R, cap, 0.f, ci.data(), cv.data());
  std::vector<std::vector<Candidate>> rows(R);
  for (long r = 0; r < R; ++r)
    for (int s = 0; s < cap; ++s)
      if (cv[r * cap + s] > 0.f) rows[r].push_back({cv[r * cap + s], ci[r * cap + s]});

  const long long target = static_cast<long long>(R) * k;
  auto cut_value = [&]() -> float {
    std::vector<float> all;
    for (auto& row : rows)
      for (auto& c : row) all.push_back(c.value);
    if (static_cast<long long>(all.size()) <= target) return 0.f;  // keep every positive value
    std::nth_element(all.begin(), all.begin() + (target - 1), all.end(), std::greater<float>());
    return all[target - 1];
  };
  float tau = cut_value();
  if (cap < m) {
    std::vector<long> saturated;
    for (long r = 0; r < R; ++r)
      if (static_cast<int>(rows[r].size()) == cap && rows[r].back().value >= tau) saturated.push_back(r);
    if (!saturated.empty()) {
      std::vector<float> xs(saturated.size() * d);
      for (size_t i = 0; i < saturated.size(); ++i)
        std::memcpy(xs.data() + i * d, X + saturated[i] * d, sizeof(float) * d);
      std::vector<int32_t> fi(saturated.size() * m);
      std::vector<float> fv(saturated.size() * m);
      topk_encode(enc, xs.data(), static_cast<long>(saturated.size()), m, 0.f, fi.data(), fv.data());
      for (size_t i = 0; i < saturated.size(); ++i) {
        auto& row = rows[saturated[i]];
        row.clear();
        for (int s = 0; s < m && fv[i * m + s] > 0.f; ++s) row.push_back({fv[i * m + s], fi[i * m + s]});
      }
      tau = cut_value();
    }
  }
  // Keep v > tau, then v == tau in row order until the target count.
  long long kept = 0;
  for (auto& row : rows)
    for (auto& c : row) kept += (c.value > tau);
  long long tie_budget = target - kept;
  int k_out = 1;
  float min_kept = 0.f;
  bool any = false;
  for (auto& row : rows) {
    std::vector<Candidate> keep;
    for (auto& c : row) {
      bool take = c.value > tau || (c.value == tau && tau > 0.f && tie_budget > 0);
      if (c.value == tau && take && !(c.value > tau)) --tie_budget;
      if (take) {
        keep.push_back(c);
        min_kept = any ? std::min(min_kept, c.value) : c.value;
        any = true;
      }
    }
    row.swap(keep);
    k_out = std::max<int>(k_out, static_cast<int>(row.size()));
  }
  codes.rows = R;
  codes.k = k_out;
  codes.idx.resize(static_cast<size_t>(R) * k_out);
  codes.val.resize(static_cast<size_t>(R) * k_out);
  for (long r = 0; r < R; ++r) finalize_row(rows[r], k_out, m, codes.idx.data() + r * k_out, codes.val.data() + r * k_out);
  return BatchTopKKept{any, min_kept};
}

}  // namespace cmsae
