// Packing of the BF16 encoder copy and its per-latent bound terms (bf16_encoder.h):
// Wp = VNNI(bf16(W)), P_j = ||Wl_j|| + G ||Wh_j||, Q_j = ||W_j||, C_j = 2 G |b_j| + 2^-126 sqrt(d) ||Wh_j||.
// The plain packer here is the reference of the AVX-512 one (bf16_pack_avx512.cc).
#include "bf16_encoder.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "../common/cpu_features.h"

namespace cmsae {

double bf16_bound_gamma(int d) {
  const double n = 2.0 * d + 8.0, u = 0x1p-24;
  return 2.0 * n * u / (1.0 - n * u);
}

void Bf16Encoder::resize(int d_, int m_) {
  d = d_;
  m = m_;
  dpad = (d + kBf16DepthStep - 1) / kBf16DepthStep * kBf16DepthStep;
  panels = (m + 2 * kBf16PanelLatents - 1) / (2 * kBf16PanelLatents) * 2;
  const size_t lat = static_cast<size_t>(panels) * kBf16PanelLatents;
  Wp.reset(lat * dpad);
  bias.reset(lat);
  P.reset(lat);
  Q.reset(lat);
  C.reset(lat);
  finite.reset(panels);
}

namespace {
// x rounded up to a float that is >= x (x >= 0): the margin covers the float conversion's rounding.
inline float round_up(double x) { return static_cast<float>(x * (1.0 + 0x1p-20)); }
}  // namespace

bool set_bf16_latent_terms(Bf16Encoder& e, long j, double sw, double sh, double sl, float b) {
  const double G = bf16_bound_gamma(e.d), sqrt_d = std::sqrt(static_cast<double>(e.d));
  const double nw = std::sqrt(sw), nh = std::sqrt(sh), nl = std::sqrt(sl);
  e.bias.data()[j] = b;
  e.P.data()[j] = round_up(nl + G * nh);
  e.Q.data()[j] = round_up(nw);
  e.C.data()[j] = round_up(2.0 * G * std::fabs(static_cast<double>(b)) + 0x1p-126 * sqrt_d * nh);
  return std::isfinite(e.P.data()[j]) && std::isfinite(e.Q.data()[j]) && std::isfinite(e.C.data()[j]) &&
         std::isfinite(b);
}

void set_bf16_padding_latent(Bf16Encoder& e, long j) {
  e.bias.data()[j] = -std::numeric_limits<float>::infinity();
  e.P.data()[j] = e.Q.data()[j] = e.C.data()[j] = 0.f;
}

void pack_bf16_panels_reference(const float* W_rows, const float* b_enc, long p0, long p1, Bf16Encoder& e) {
  const int d = e.d, dpad = e.dpad, L = kBf16PanelLatents;
  auto at = [L](int k, int c) { return (k >> 1) * 2 * L + c * 2 + (k & 1); };  // VNNI offset within a panel
  for (long p = p0; p < p1; ++p) {
    uint16_t* dst = e.Wp.data() + p * static_cast<long>(dpad) * L;
    bool finite = true;
    for (int c = 0; c < L; ++c) {
      const long j = p * L + c;
      if (j >= e.m) {
        for (int k = 0; k < dpad; ++k) dst[at(k, c)] = 0;
        set_bf16_padding_latent(e, j);
        continue;
      }
      const float* w = W_rows + j * d;
      double sw = 0, sh = 0, sl = 0;
      for (int k = 0; k < d; ++k) {
        const uint16_t h = bf16_round(w[k]);
        const float hf = bf16_to_float(h), lo = w[k] - hf;  // exact residual
        dst[at(k, c)] = h;
        sw += static_cast<double>(w[k]) * w[k];
        sh += static_cast<double>(hf) * hf;
        sl += static_cast<double>(lo) * lo;
      }
      for (int k = d; k < dpad; ++k) dst[at(k, c)] = 0;
      finite = set_bf16_latent_terms(e, j, sw, sh, sl, b_enc[j]) && finite;
    }
    e.finite.data()[p] = finite ? 1 : 0;
  }
}

void pack_bf16_panels(const float* W_rows, const float* b_enc, long p0, long p1, Bf16Encoder& e) {
#if defined(CMSAE_HAVE_X86_SIMD)
  if (active_simd_level() == SimdLevel::Avx512) return pack_bf16_panels_avx512(W_rows, b_enc, p0, p1, e);
#endif
  pack_bf16_panels_reference(W_rows, b_enc, p0, p1, e);
}

void finish_bf16_encoder(Bf16Encoder& e) {
  float mx = 0.f;
  const long lat = e.panels * kBf16PanelLatents;
  for (long j = 0; j < lat; ++j) mx = std::max(mx, e.Q.data()[j]);
  e.max_Q = mx;
  e.all_finite = std::all_of(e.finite.data(), e.finite.data() + e.panels, [](uint8_t f) { return f != 0; });
}

}  // namespace cmsae
