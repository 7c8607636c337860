// The CPU emulation of DeviceLap (CMSAE_EMULATE_CUDA=1; see emulated_devices.h): candidates and pricing in
// deliberately different orders from the CPU pass, so that the solver is tested not to depend on them.
#include <algorithm>
#include <functional>
#include <limits>
#include <vector>

#include "../common/candidate_keys.h"
#include "../lap/device_lap.h"
#include "emulated_devices.h"

namespace cmsae {
namespace {

class EmulatedLap final : public DeviceLap {
 public:
  void load(const float* x, long rows, long cols, bool maximize) override {
    x_ = x;
    rows_ = rows;
    cols_ = cols;
    sign_ = maximize ? -1.f : 1.f;
  }
  bool candidates(int k, int kc, uint64_t* row_keys, int* row_cnt, uint64_t* col_keys, int* col_cnt) override {
    bool bad = false;
    std::vector<uint64_t> keys;
    auto top = [](std::vector<uint64_t>& ks, int cap, uint64_t* out, int* cnt) {
      const int kept = static_cast<int>(std::min<size_t>(ks.size(), static_cast<size_t>(cap)));
      std::sort(ks.begin(), ks.end(), std::greater<uint64_t>());
      // A deliberately different order from the CPU pass: the smallest kept key first, the rest descending.
      if (kept > 0) {
        out[0] = ks[kept - 1];
        for (int q = 1; q < kept; ++q) out[q] = ks[q - 1];
      }
      *cnt = kept;
    };
    for (long i = 0; i < rows_; ++i) {
      keys.clear();
      for (long j = 0; j < cols_; ++j) {
        const float x = x_[i * cols_ + j];
        if (!(x - x == 0.f)) bad = true;
        const float c = sign_ * x;
        if (c != std::numeric_limits<float>::infinity()) keys.push_back(candidate_key(-c, scramble(j, salt_of(i))));
      }
      top(keys, k, row_keys + i * k, row_cnt + i);
    }
    for (long j = 0; j < cols_; ++j) {
      keys.clear();
      for (long i = 0; i < rows_; ++i) {
        const float c = sign_ * x_[i * cols_ + j];
        if (c - c == 0.f) keys.push_back(candidate_key(-c, scramble(i, salt_of(j))));
      }
      top(keys, kc, col_keys + j * kc, col_cnt + j);
    }
    return bad;
  }
  long price(const std::vector<int32_t>& scan, const double* u, const double* v, double tol, long cap,
             std::vector<LapViolation>& out) override {
    out.clear();
    long total = 0;
    // Rows in reverse: the device's order of discoveries is arbitrary, and the solver must not depend on it.
    for (auto it = scan.rbegin(); it != scan.rend(); ++it) {
      const long i = *it;
      for (long j = cols_ - 1; j >= 0; --j) {
        const double red = static_cast<double>(sign_ * x_[i * cols_ + j]) - u[i] - v[j];
        if (red < -tol) {
          if (total < cap) out.push_back({static_cast<int32_t>(i), static_cast<int32_t>(j), red});
          ++total;
        }
      }
    }
    return total;
  }

 private:
  const float* x_ = nullptr;
  long rows_ = 0, cols_ = 0;
  float sign_ = 1.f;
};

}  // namespace

std::unique_ptr<DeviceLap> make_emulated_lap() { return std::make_unique<EmulatedLap>(); }

}  // namespace cmsae
