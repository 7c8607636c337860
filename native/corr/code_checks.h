// Validation of sparse codes as the co-activation statistics take them: finite values, indices in [0, m) for
// every active slot (value != 0), no latent active twice in a row; the first bad entry is a typed error.
#pragma once
#include <cstdint>
#include <vector>

namespace cmsae {

// Validates rows [0, rows) of codes ([rows, k] indices and values) and writes each row's number of nonzeros to
// counts[r]. stamp: scratch of m entries, all < 0 on first use (reused across calls of one thread); row_label0:
// the number of the first row in messages.
void check_codes(const int32_t* idx, const float* val, int k, long rows, int m, const char* side,
                 std::vector<int64_t>& stamp, long row_label0, int32_t* counts);

}  // namespace cmsae
