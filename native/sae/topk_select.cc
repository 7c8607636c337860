// Final per-row Top-K selection: best k by (value desc, index asc), padded with value-0 slots.
#include "topk_select.h"

#include <functional>

namespace cmsae {

void finalize_row(std::vector<Candidate>& cands, int k, int m, int32_t* idx, float* val) {
  const int keep = static_cast<int>(std::min<size_t>(cands.size(), static_cast<size_t>(k)));
  std::partial_sort(cands.begin(), cands.begin() + keep, cands.end(),
                    [](const Candidate& a, const Candidate& b) { return ranks_before(a, b); });
  for (int s = 0; s < keep; ++s) {
    idx[s] = cands[s].index;
    val[s] = cands[s].value;
  }
  pad_row(keep, k, m, idx, val);
}

void finalize_keys(std::vector<uint64_t>& keys, int k, int m, int32_t* idx, float* val) {
  const int keep = static_cast<int>(std::min<size_t>(keys.size(), static_cast<size_t>(k)));
  std::sort(keys.begin(), keys.end(), std::greater<uint64_t>());
  for (int s = 0; s < keep; ++s) {
    const Candidate c = key_candidate(keys[s]);
    idx[s] = c.index;
    val[s] = c.value;
  }
  pad_row(keep, k, m, idx, val);
}

}  // namespace cmsae
