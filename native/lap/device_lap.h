// The bandwidth-bound passes of the certified sparse assignment on the CUDA device (cuda/lap_device.cu): the
// candidate pass (the k cheapest entries of every row, the kc cheapest of every column, as the CPU pass's
// candidate keys) and the pricing pass (every violating entry of the listed rows). The combinatorial core
// (sparse solve, warm starts) stays on the CPU.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

namespace cmsae {

// The device kernels' candidate limits (per row, per column): the policy (solver_policy.h) keeps the passes on
// the CPU beyond them, and cuda/lap_device.cu sizes its buffers by them.
constexpr int kDeviceLapMaxRowCandidates = 64;
constexpr int kDeviceLapMaxColCandidates = 16;

struct LapViolation {
  int32_t row, col;
  double reduced;
};

class DeviceLap {
 public:
  virtual ~DeviceLap() = default;
  // Copies the float32 cost matrix (row-major [rows, cols]) to the device; min-form cost = sign * x.
  virtual void load(const float* x, long rows, long cols, bool maximize) = 0;
  // Row i: its `k` largest keys candidate_key(float(-c_ij), scramble(j, salt_of(i))) over finite entries in
  // row_keys[i*k ..) (count in row_cnt[i]; row_keys[i*k] the smallest kept); column j likewise with kc keys
  // candidate_key(float(-c_ij), scramble(i, salt_of(j))). Returns true when some entry is NaN or infinite.
  virtual bool candidates(int k, int kc, uint64_t* row_keys, int* row_cnt, uint64_t* col_keys, int* col_cnt) = 0;
  // Entries of rows `scan` with c_ij - u_i - v_j < -tol (u, v per original row / column). At most `cap` are
  // returned in `out`; the return value is their total number (> cap: the caller prices on the CPU).
  virtual long price(const std::vector<int32_t>& scan, const double* u, const double* v, double tol, long cap,
                     std::vector<LapViolation>& out) = 0;
};

using DeviceLapFactory = std::unique_ptr<DeviceLap> (*)();
void set_device_lap_factory(DeviceLapFactory f);
DeviceLapFactory device_lap_factory();

}  // namespace cmsae
