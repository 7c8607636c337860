// Code-level losses between the two halves of a paired batch of sparse codes (rows [0, n) are the image
// side x, rows [n, 2n) the text side y of the same pairs), the baselines of the paper:
//  iso (Iso-Energy, the authors' code): L = -(1/n) sum_b cos(mask_b . z_x[b], mask_b . z_y[b]), mask_b zero at
//      argmax z_x[b] and argmax z_y[b], cos = u.v / (max(|u|,1e-8) max(|v|,1e-8));
//  iso-inner (the paper's formula): L = -(1/n) sum_b z_x[b] . z_y[b];
//  group (group sparsity): L = (1/n) sum_b sum_j sqrt(z_x[b,j]^2 + z_y[b,j]^2 + 1e-12) (j over all m latents).
#pragma once
#include <cstdint>

namespace cmsae {

enum class PairLoss { None = 0, Iso = 1, IsoInner = 2, Group = 3 };

// Returns L (float64) and adds scale * dL/dval to dval (same [2n, k] layout as val; slots with val == 0
// are inactive and get nothing). m: number of latents (the group loss's constant term).
double pair_code_loss(PairLoss kind, const int32_t* idx, const float* val, int k, long n, int m, double scale,
                      float* dval);

}  // namespace cmsae
