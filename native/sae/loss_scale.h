// The reconstruction loss's gradient scale per batch segment: dL/dx_hat = s (x_hat - x) with s = w * 2 / D,
// D = the segment's total variance (FVU) or rows * d (MSE); and when an FVU segment is too degenerate for it.
#pragma once
#include <cmath>

namespace cmsae {

inline float loss_gradient_scale(double w, double denominator) { return static_cast<float>(w * 2.0 / denominator); }

// No variance at all (identical rows), or so little that s overflows float32 (inputs of scale ~1e-20).
inline bool fvu_degenerate(double total_variance, double w) {
  return !(total_variance > 0.0) || !std::isfinite(loss_gradient_scale(w, total_variance));
}

}  // namespace cmsae
