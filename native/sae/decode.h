// Sparse decode: x_hat[b] = b_dec + sum_s val[b,s] * W_dec[idx[b,s]]  (gather-add of k decoder rows).
#pragma once
#include <cstdint>

namespace cmsae {

// W_dec: [m, d] rows; idx/val: [rows, k]; out: [rows, d]. Indices must be in [0, m) (checked by callers).
void sparse_decode(const float* W_dec, const float* b_dec, int d, const int32_t* idx, const float* val, long rows,
                   int k, float* out);

}  // namespace cmsae
