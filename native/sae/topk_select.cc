#include "topk_select.h"

namespace cmsae {

void finalize_row(std::vector<Candidate>& cands, int k, int m, int32_t* idx, float* val) {
  int keep = static_cast<int>(std::min<size_t>(cands.size(), static_cast<size_t>(k)));
  std::partial_sort(cands.begin(), cands.begin() + keep, cands.end(), ranks_before);
  for (int s = 0; s < keep; ++s) {
    idx[s] = cands[s].index;
    val[s] = cands[s].value;
  }
  int s = keep;
  for (int32_t j = 0; s < k && j < m; ++j) {
    bool used = false;
    for (int t = 0; t < keep; ++t) used |= (idx[t] == j);
    if (used) continue;
    idx[s] = j;
    val[s] = 0.f;
    ++s;
  }
}

}  // namespace cmsae
