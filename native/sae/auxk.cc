// AuxK loss of one batch segment (auxk.h).
#include "auxk.h"

#include <vector>

namespace cmsae {

double auxk_segment_loss(const float* X, const float* xhat, const float* aux_hat, long r0, long rows, int d, double w,
                         double coef, float* G_aux) {
  std::vector<double> emean(d, 0.0);
  for (long r = r0; r < r0 + rows; ++r)
    for (int c = 0; c < d; ++c) emean[c] += X[r * d + c] - xhat[r * d + c];
  for (int c = 0; c < d; ++c) emean[c] /= rows;
  double evar = 0, aerr = 0;
  for (long r = r0; r < r0 + rows; ++r)
    for (int c = 0; c < d; ++c) {
      const double e = static_cast<double>(X[r * d + c]) - xhat[r * d + c];
      evar += (e - emean[c]) * (e - emean[c]);
      const double a = aux_hat[r * d + c] - e;
      aerr += a * a;
    }
  if (!(evar > 0)) return 0.0;
  const float ascale = static_cast<float>(w * coef * 2.0 / evar);
  for (long r = r0; r < r0 + rows; ++r)
    for (int c = 0; c < d; ++c) G_aux[r * d + c] = ascale * (aux_hat[r * d + c] - (X[r * d + c] - xhat[r * d + c]));
  return w * coef * aerr / evar;
}

}  // namespace cmsae
