// Divergence guard of the AdamW update. An a priori test proves that an update cannot overflow float32:
// with G >= every |g_i s|, M' = (b1 M + (1-b1) G) r, V' = (b2 V + (1-b2) G^2) r and
// |p'| <= (|decay| P + step_size M' / eps) r (r = 1 + 1e-6 covers float rounding), every intermediate stays
// below kSafeMagnitude. When the test fails, the update runs on a snapshot and is checked value by value.
#pragma once
#include <cstddef>
#include <limits>

#include "kernels.h"

namespace cmsae {

// Upper bounds of one parameter's arrays: max |param|, max |exp_avg|, max exp_avg_sq (second moments >= 0).
struct ArrayBounds {
  double p = std::numeric_limits<double>::infinity();
  double m = std::numeric_limits<double>::infinity();
  double v = std::numeric_limits<double>::infinity();
};

// Far below FLT_MAX (3.4e38): values under it cannot overflow in the handful of float operations of a step.
constexpr double kSafeMagnitude = 1e30;

// The bounds after one AdamW step (kernels.h formula) with gradients bounded by G, or false when some
// intermediate could reach kSafeMagnitude. renorm_dim > 0: the rows (of renorm_dim values) are then divided
// by their norm + eps, which needs |p'| sqrt(renorm_dim) below the limit and leaves |p| <= 1.
bool predict_update(const ArrayBounds& now, const AdamWArgs& a, double G, int renorm_dim, ArrayBounds* next);

// The exact bounds of n parameters and their moments; false when a value is non-finite or a second moment is
// negative (an update could then produce NaN).
bool scan_bounds(const float* p, const float* m, const float* v, size_t n, ArrayBounds* out);

}  // namespace cmsae
