// Portable 4-lane "vector" of plain floats: the scalar fallback (compilers may still auto-vectorize it).
#pragma once
#include <cstdint>

namespace cmsae::simd {

struct VecScalar {
  static constexpr int W = 4;
  float v[W];
  static VecScalar zero() { return {{0.f, 0.f, 0.f, 0.f}}; }
  static VecScalar load(const float* p) { return {{p[0], p[1], p[2], p[3]}}; }
  static VecScalar broadcast(const float* p) { return set1(*p); }
  static VecScalar set1(float x) { return {{x, x, x, x}}; }
  void store(float* p) const {
    for (int i = 0; i < W; ++i) p[i] = v[i];
  }
  friend VecScalar fmadd(VecScalar a, VecScalar b, VecScalar c) {
    VecScalar r;
    for (int i = 0; i < W; ++i) r.v[i] = a.v[i] * b.v[i] + c.v[i];
    return r;
  }
  friend VecScalar operator+(VecScalar a, VecScalar b) {
    VecScalar r;
    for (int i = 0; i < W; ++i) r.v[i] = a.v[i] + b.v[i];
    return r;
  }
  friend uint32_t gt_bits(VecScalar a, VecScalar b) {
    uint32_t bits = 0;
    for (int i = 0; i < W; ++i) bits |= static_cast<uint32_t>(a.v[i] > b.v[i]) << i;
    return bits;
  }
};

}  // namespace cmsae::simd
