// AuxK loss of one batch segment (rows [r0, r0 + rows)): with e = x - x_hat (a constant) and e_hat the decode of
// the k_aux best dead latents without b_dec, L_aux = w * coef * ||e_hat - e||^2 / sum (e - mean e)^2, and
// dL/de_hat = w * coef * 2 (e_hat - e) / sum (e - mean e)^2.
#pragma once

namespace cmsae {

// Returns the segment's weighted AuxK loss (0 when e has no variance, leaving G_aux untouched) and writes
// dL/de_hat into G_aux's rows [r0, r0 + rows).
double auxk_segment_loss(const float* X, const float* xhat, const float* aux_hat, long r0, long rows, int d, double w,
                         double coef, float* G_aux);

}  // namespace cmsae
