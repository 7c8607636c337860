// BF16 copy of the encoder for the certified encode (certified_encode.h): W_enc rounded to bfloat16 in the VNNI
// panel layout that AMX tiles and vdpbf16ps read, plus the per-latent terms of the error bound.
//
// The bound. With Xc = x - b_dec (float32), Xh = bf16(Xc), Xl = Xc - Xh (exact), likewise Wh, Wl for an encoder row
// W_j, the identity Xc.W = Xh.Wh + Xh.Wl + Xl.W gives, for the float32 pre-activation p32 (the FMA chain of
// encode_tile) and the low-precision one p16 (BF16 products, float32 accumulation in any order, then + b_j):
//   |p32 - p16| <= ||Xh|| ||Wl_j|| + ||Xl|| ||W_j||                               (the BF16 rounding of both sides)
//                + G (||Xh|| ||Wh_j|| + ||Xc|| ||W_j|| + 2 |b_j|)                 (float32 roundings, both sums)
//                + 2^-126 (sqrt(d) (||Xh|| + ||Wh_j||) + 3 d + 4)                 (denormals flushed by DAZ/FTZ)
// with G = 2 gamma_{2d+8}, gamma_n = n u / (1 - n u), u = 2^-24: twice the worst-case accumulation error of 2d+8
// roundings in any order, which also covers rounding E itself and forming p16 +- E in float32. Written as
//   E_rj = A_r P_j + B_r Q_j + C_j + D_r
// per-row terms A, B, D (certified_encode.cc) and per-latent terms P, Q, C (here), each rounded up.
#pragma once
#include <cstdint>

#include "../common/aligned.h"

namespace cmsae {

constexpr int kBf16PanelLatents = 16;  // latents per VNNI panel (one AMX B tile column block, one zmm of floats)
constexpr int kBf16DepthStep = 32;     // d is padded to a multiple of this (one AMX tile's depth)

// G of the bound above for depth d.
double bf16_bound_gamma(int d);
// v rounded to the nearest bfloat16, ties to even (the bit pattern); v finite or infinite.
inline uint16_t bf16_round(float v) {
  uint32_t u;
  __builtin_memcpy(&u, &v, 4);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_float(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float v;
  __builtin_memcpy(&v, &u, 4);
  return v;
}

struct Bf16Encoder {
  int d = 0, m = 0;
  int dpad = 0;    // d rounded up to kBf16DepthStep
  long panels = 0; // latent panels of kBf16PanelLatents, an even count (GEMM blocks take two), padded with zero latents
  // panel p, depth pair q, column c: Wp[((p * dpad/2 + q) * 16 + c) * 2 + e] = bf16(W_enc[16p + c][2q + e]).
  AlignedBuffer<uint16_t> Wp;
  // Per latent, padded to panels * 16: bias (-inf for padding), and the bound terms P_j, Q_j, C_j (0 for padding).
  AlignedBuffer<float> bias, P, Q, C;
  AlignedBuffer<uint8_t> finite;  // [panels]: 1 when every term of the panel is finite (else the bound is void)
  // Valid after finish_bf16_encoder: max_j ||W_j|| (the per-row overflow guard) and whether every panel is finite.
  float max_Q = 0;
  bool all_finite = false;

  // Sizes the buffers for an encoder of [m, d] (contents undefined until packed).
  void resize(int d, int m);
};

// Packs latent panels [p0, p1) of W_rows ([m, d]) / b_enc ([m]) into `e` (already resized to d, m): the AVX-512
// packer when that SIMD level is active, else the plain reference (same bits; bound terms within a float ulp, their
// float64 norms being summed in another order).
void pack_bf16_panels(const float* W_rows, const float* b_enc, long p0, long p1, Bf16Encoder& e);
void pack_bf16_panels_reference(const float* W_rows, const float* b_enc, long p0, long p1, Bf16Encoder& e);
#if defined(CMSAE_HAVE_X86_SIMD)
void pack_bf16_panels_avx512(const float* W_rows, const float* b_enc, long p0, long p1, Bf16Encoder& e);
#endif
// Latent j's bias and bound terms from its squared norms ||W_j||^2, ||Wh_j||^2, ||Wl_j||^2; false if one is not finite.
bool set_bf16_latent_terms(Bf16Encoder& e, long j, double sw, double sh, double sl, float b);
// Latent j past m: bias -inf, zero terms.
void set_bf16_padding_latent(Bf16Encoder& e, long j);
// Derives e.max_Q and e.all_finite after the panels were packed.
void finish_bf16_encoder(Bf16Encoder& e);

}  // namespace cmsae
