// Tie scrambling of the certified assignment's candidate keys (shared by the CPU pass, its device version in
// cuda/lap_device.cu and the CPU emulation): a heavily tied matrix must not send every row to the same
// lowest-index columns, so a candidate key's index field holds scramble(index, salt_of(row or column)),
// a bijection of 32-bit words.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define CMSAE_HOST_DEVICE __host__ __device__
#else
#define CMSAE_HOST_DEVICE
#endif

namespace cmsae {

CMSAE_HOST_DEVICE inline uint32_t salt_of(long x) { return static_cast<uint32_t>(x) * 0x85EBCA6Bu + 0x27D4EB2Fu; }
CMSAE_HOST_DEVICE inline int32_t scramble(long index, uint32_t salt) {
  return static_cast<int32_t>((static_cast<uint32_t>(index) ^ salt) * 0x9E3779B1u);
}
// The inverse of scramble for the index field of a key (0x0E8B2F51 is the inverse of 0x9E3779B1 mod 2^32).
CMSAE_HOST_DEVICE inline long unscramble_index(uint32_t field, uint32_t salt) { return static_cast<long>((field * 0x0E8B2F51u) ^ salt); }

}  // namespace cmsae
