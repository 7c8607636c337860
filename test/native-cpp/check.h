// A minimal harness for the C++-only kernel tests: named cases, CHECK with a message, a seeded RNG, and a
// loop over the SIMD levels this CPU has (the others are skipped with a message). No Node, no framework.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "common/cpu_features.h"

namespace cmsae_test {

inline int& failures() {
  static int n = 0;
  return n;
}

inline void report_failure(const char* file, int line, const std::string& what) {
  if (++failures() <= 25) std::fprintf(stderr, "%s:%d: FAILED %s\n", file, line, what.c_str());
}

// CHECK(condition, message pieces...): counts a failure and prints the condition and message.
template <class... Parts>
std::string join(const Parts&... parts) {
  std::ostringstream s;
  s.precision(9);
  (s << ... << parts);
  return s.str();
}
#define CHECK(cond, ...)                                                                         \
  do {                                                                                           \
    if (!(cond)) ::cmsae_test::report_failure(__FILE__, __LINE__, std::string(#cond) + ": " + ::cmsae_test::join(__VA_ARGS__)); \
  } while (0)

struct Case {
  std::string name;
  std::function<void()> run;
};

// Runs every case (an exception counts as a failure), prints one line per case; exit code 1 on any failure.
inline int run_cases(const char* suite, const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    const int before = failures();
    try {
      c.run();
    } catch (const std::exception& e) {
      report_failure(suite, 0, c.name + " threw: " + e.what());
    }
    std::printf("%s %s: %s\n", failures() == before ? "ok  " : "FAIL", suite, c.name.c_str());
  }
  std::printf("%s: %d failure(s)\n", suite, failures());
  return failures() == 0 ? 0 : 1;
}

// splitmix64: deterministic across platforms.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  int below(int n) { return static_cast<int>(next() % static_cast<uint64_t>(n)); }
  double normal() {
    const double u = uniform() + 0x1.0p-54, v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
  }
  // An integer multiple of 1/den in [-lim, lim]: sums of products of such values are exact in float32.
  float grid(int lim, int den) { return static_cast<float>(below(2 * lim * den + 1) - lim * den) / static_cast<float>(den); }

 private:
  uint64_t s_;
};

// fn(level name) at every SIMD level this CPU supports; the others are reported as skipped. Restores the
// detected level afterwards.
inline void for_each_simd_level(const std::function<void(const char*)>& fn) {
  using cmsae::SimdLevel;
  for (SimdLevel level : {SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512}) {
    if (cmsae::set_simd_level(level) != level) {
      std::printf("skip %s level: this CPU does not have it\n", cmsae::simd_level_name(level));
      continue;
    }
    fn(cmsae::simd_level_name(level));
  }
  cmsae::set_simd_level(cmsae::detect_simd_level());
}

}  // namespace cmsae_test
