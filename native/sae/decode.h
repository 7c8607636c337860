// Sparse decode: x_hat[b] = b_dec + sum_s val[b,s] * W_dec[idx[b,s]]  (gather-add of k decoder rows).
#pragma once
#include <cstdint>

namespace cmsae {

// W_dec: [m, d] rows; idx/val: [rows, k]; out: [rows, d]. Indices must be in [0, m) (checked by callers).
void sparse_decode(const float* W_dec, const float* b_dec, int d, const int32_t* idx, const float* val, long rows,
                   int k, float* out);

// Fused decode + residual + loss gradient + code gradient for rows [r0, r0+rows):
//   x_hat[b] = b_dec + sum_s val[b,s] W_dec[idx[b,s]];  G[b] = gscale (x_hat[b] - X[b]);
//   dval[b,s] = G[b] . W_dec[idx[b,s]] (0 where val[b,s] == 0).  Returns sum_b ||x_hat[b] - X[b]||^2 (float64).
double decode_with_gradient(const float* W_dec, const float* b_dec, int d, const int32_t* idx, const float* val, int k,
                            const float* X, long r0, long rows, float gscale, float* xhat, float* G, float* dval);

}  // namespace cmsae
