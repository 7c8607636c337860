// Sparse decode: x_hat[b] = b_dec + sum_s val[b,s] * W_dec[idx[b,s]], parallel over rows.
#include "decode.h"

#include <algorithm>
#include <cstring>

#include "../common/thread_pool.h"
#include "kernels.h"

namespace cmsae {

void sparse_decode(const float* W_dec, const float* b_dec, int d, const int32_t* idx, const float* val, long rows,
                   int k, float* out) {
  const SaeKernels& K = kernels();
  const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), rows / 16 + 1)));
  parallel_for(T, [&](int t) {
    for (long b = split_begin(rows, T, t); b < split_begin(rows, T, t + 1); ++b) {
      float* o = out + b * d;
      if (b_dec)
        std::memcpy(o, b_dec, sizeof(float) * d);
      else
        std::memset(o, 0, sizeof(float) * d);
      for (int s = 0; s < k; ++s) {
        const float v = val[b * k + s];
        if (v != 0.f) K.axpy(v, W_dec + static_cast<long>(idx[b * k + s]) * d, o, d);
      }
    }
  });
}

}  // namespace cmsae
