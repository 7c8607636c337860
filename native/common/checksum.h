// checksum64(bytes): a 64-bit checksum of a byte string for serialized state: four interleaved lanes
// s <- rotl((s ^ w) * P1, 29) * P2 over the 8-byte words (zero-padded tail), then the length and a final mix.
// Every step is a bijection of the lane, so a change confined to one word is always detected, and other
// corruption with probability about 1 - 2^-64. Not a cryptographic hash (anyone can recompute it).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace cmsae {

inline uint64_t checksum64(const uint8_t* data, size_t n) {
  constexpr uint64_t P1 = 0x9E3779B97F4A7C15ull, P2 = 0xC2B2AE3D27D4EB4Full, P3 = 0x165667B19E3779F9ull;
  auto rotl = [](uint64_t x, int r) { return (x << r) | (x >> (64 - r)); };
  auto step = [&](uint64_t s, uint64_t w) { return rotl((s ^ w) * P1, 29) * P2; };
  uint64_t lane[4] = {P1, P2, P3, P1 ^ P2};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    uint64_t w[4];
    std::memcpy(w, data + i, 32);
    for (int l = 0; l < 4; ++l) lane[l] = step(lane[l], w[l]);
  }
  for (int l = 0; i < n; i += 8, l = (l + 1) % 4) {
    uint64_t w = 0;
    std::memcpy(&w, data + i, n - i < 8 ? n - i : 8);
    lane[l] = step(lane[l], w);
  }
  auto mix = [&](uint64_t x) {
    x ^= x >> 31;
    x *= P3;
    x ^= x >> 29;
    x *= P1;
    return x ^ (x >> 32);
  };
  uint64_t h = static_cast<uint64_t>(n) * P3;
  for (int l = 0; l < 4; ++l) h = rotl(h, 17) ^ mix(lane[l] + static_cast<uint64_t>(l));
  return mix(h);
}

}  // namespace cmsae
