// Validation of paired sparse codes (see code_checks.h).
#include "code_checks.h"

#include <cmath>
#include <string>

#include "../common/errors.h"

namespace cmsae {

void check_codes(const int32_t* idx, const float* val, int k, long rows, int m, const char* side,
                 std::vector<int64_t>& stamp, long row_label0, int32_t* counts) {
  for (long r = 0; r < rows; ++r) {
    int32_t nz = 0;
    for (int s = 0; s < k; ++s) {
      const long p = r * k + s;
      const float v = val[p];
      if (!std::isfinite(v))
        fail("ERR_NONFINITE", std::string(side) + " codes: value at row " + std::to_string(row_label0 + r) + ", slot " +
                                  std::to_string(s) + " is not finite; repair the codes before adding them");
      if (v == 0.f) continue;
      const int32_t j = idx[p];
      if (j < 0 || j >= m)
        fail("ERR_RANGE", std::string(side) + " codes: index " + std::to_string(j) + " at row " + std::to_string(row_label0 + r) +
                              " is outside [0, " + std::to_string(m) + "): the codes do not come from an SAE with m = " +
                              std::to_string(m));
      if (stamp[j] == r)
        fail("ERR_ARG", std::string(side) + " codes: latent " + std::to_string(j) + " is active twice in row " +
                            std::to_string(row_label0 + r) + "; each row may name a latent once");
      stamp[j] = r;
      ++nz;
    }
    counts[r] = nz;
  }
}

}  // namespace cmsae
