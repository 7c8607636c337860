// CUDA passes of the certified sparse assignment: per-row top-k and per-column top-kc candidate keys (the CPU
// pass's keys exactly: candidate_key(float(-c), scramble(index, salt)), so the sparse graph is the same), and
// the pricing scan c_ij - u_i - v_j < -tol over the rows the dual bounds do not certify. CPU reference:
// native/lap/sparse_certified.cc (scan_row, the column heaps and Pass C's pricing of solve_typed).
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "../native/common/errors.h"
#include "../native/common/candidate_keys.h"
#include "cuda_check.h"
#include "device_info.h"
#include "block_reduce.cuh"
#include "lap_device.h"

namespace cmsae::cuda {
namespace {

constexpr int kMaxRowK = kDeviceLapMaxRowCandidates;  // native/lap/device_lap.h
constexpr int kMaxColK = kDeviceLapMaxColCandidates;

__device__ __forceinline__ unsigned long long warp_min(unsigned long long x) {
  for (int off = 16; off > 0; off >>= 1) {
    const unsigned long long y = __shfl_xor_sync(0xFFFFFFFFu, x, off);
    x = y < x ? y : x;
  }
  return x;
}

// The smallest of list[0..n) over the warp (every lane gets it); *pos = its index on the lane that holds it,
// -1 on the other lanes (keys are unique).
__device__ __forceinline__ unsigned long long warp_list_min(const unsigned long long* list, int n, int lane, int* pos) {
  unsigned long long mine = ~0ull;
  *pos = -1;
  for (int q = lane; q < n; q += 32)
    if (list[q] < mine) {
      mine = list[q];
      *pos = q;
    }
  const unsigned long long low = warp_min(mine);
  if (mine != low) *pos = -1;
  return low;
}

// keys_out[i] = the k largest candidate_key(-sign x_ij, scramble(j, salt_of(i))) of row i (sign x_ij = +inf excluded), smallest
// first; *nonfinite = 1 when a row holds NaN or +-Inf.
// One warp per row: a kept list of up to k keys in shared memory (unsorted) and its smallest key as the
// threshold; every 32 entries, lanes holding a better key insert them one at a time (best first).
__global__ void row_candidates(const float* __restrict__ X, long rows, long cols, float sign, int k, unsigned long long* __restrict__ keys_out,
                               int* __restrict__ cnt_out, int* __restrict__ nonfinite) {
  __shared__ unsigned long long kept[8][kMaxRowK];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const long i = static_cast<long>(blockIdx.x) * 8 + warp;
  if (i >= rows) return;  // the same for the whole warp
  unsigned long long* list = kept[warp];
  int count = 0;
  unsigned long long thr = 0ull;  // smallest kept key once the list is full
  const unsigned salt = salt_of(i);
  bool bad = false;
  for (long j0 = 0; j0 < cols; j0 += 32) {
    const long j = j0 + lane;
    unsigned long long key = 0ull;
    if (j < cols) {
      const float x = X[i * cols + j];
      if (!(x - x == 0.f)) bad = true;  // NaN or +-Inf
      const float c = sign * x;
      if (c != __int_as_float(0x7f800000)) key = candidate_key(-c, scramble(j, salt));  // +inf = forbidden: never a candidate
    }
    for (;;) {
      const unsigned long long offer = (key != 0ull && (count < k || key > thr)) ? key : 0ull;
      const unsigned long long best = warp_max(offer);
      if (best == 0ull) break;
      if (key == best) key = 0ull;
      if (count < k) {
        if (lane == 0) list[count] = best;
        ++count;
      } else {
        int pos;
        warp_list_min(list, k, lane, &pos);  // replace the smallest kept key
        if (pos >= 0) list[pos] = best;
      }
      __syncwarp();
      if (count >= k) {
        int pos;
        thr = warp_list_min(list, k, lane, &pos);
      }
    }
  }
  if (__any_sync(0xFFFFFFFFu, bad) && lane == 0) atomicOr(nonfinite, 1);
  __syncwarp();
  // Output: the smallest kept key first (the CPU heap's root), then the rest.
  int pos;
  const unsigned long long low = warp_list_min(list, count, lane, &pos);
  __syncwarp();
  if (count > 0 && pos >= 0) {
    const unsigned long long first = list[0];
    list[0] = low;
    list[pos] = first;
  }
  __syncwarp();
  for (int q = lane; q < count; q += 32) keys_out[i * k + q] = list[q];
  if (lane == 0) cnt_out[i] = count;
}

// Keeps the kc largest of the offered keys in h[0..count) with h[low_at] the smallest kept.
__device__ __forceinline__ void offer_key(unsigned long long* h, int& count, int& low_at, int kc, unsigned long long key) {
  if (count < kc) {
    h[count] = key;
    if (count == 0 || key < h[low_at]) low_at = count;
    ++count;
  } else if (key > h[low_at]) {
    h[low_at] = key;
    for (int q = 0; q < kc; ++q)
      if (h[q] < h[low_at]) low_at = q;
  }
}

// part_keys[chunk, j] = the kc largest candidate_key(-sign x_ij, scramble(i, salt_of(j))) over the chunk's finite x_ij.
// Column j over the row chunk blockIdx.y: its kc largest keys (one thread per column; reads coalesced across
// the columns; grid.y chunks keep the device busy).
__global__ void col_candidates(const float* __restrict__ X, long rows, long cols, float sign, int kc, long chunk_rows,
                               unsigned long long* __restrict__ part_keys, int* __restrict__ part_cnt) {
  const long j = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (j >= cols) return;
  unsigned long long h[kMaxColK];
  int count = 0, low_at = 0;
  const unsigned salt = salt_of(j);
  const long i0 = static_cast<long>(blockIdx.y) * chunk_rows, i1 = min(rows, i0 + chunk_rows);
  for (long i = i0; i < i1; ++i) {
    const float c = sign * X[i * cols + j];
    if (!(c - c == 0.f)) continue;  // NaN / infinities are screened by the row pass
    offer_key(h, count, low_at, kc, candidate_key(-c, scramble(i, salt)));
  }
  const long slot = static_cast<long>(blockIdx.y) * cols + j;
  for (int q = 0; q < count; ++q) part_keys[slot * kc + q] = h[q];
  part_cnt[slot] = count;
}

// Column j: the kc largest keys over its chunks' lists.
__global__ void col_merge(const unsigned long long* __restrict__ part_keys, const int* __restrict__ part_cnt, int chunks, long cols, int kc,
                          unsigned long long* __restrict__ keys_out, int* __restrict__ cnt_out) {
  const long j = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (j >= cols) return;
  unsigned long long h[kMaxColK];
  int count = 0, low_at = 0;
  for (int c = 0; c < chunks; ++c) {
    const long slot = static_cast<long>(c) * cols + j;
    for (int q = 0; q < part_cnt[slot]; ++q) offer_key(h, count, low_at, kc, part_keys[slot * kc + q]);
  }
  for (int q = 0; q < count; ++q) keys_out[j * kc + q] = h[q];
  cnt_out[j] = count;
}

// out += (i, j, red) for every entry with red = sign*x_ij - u_i - v_j < -tol (up to cap); one block per listed row.
__global__ void price_rows(const float* __restrict__ X, long cols, float sign, const int32_t* __restrict__ scan, const double* __restrict__ u,
                           const double* __restrict__ v, double tol, long cap, unsigned long long* __restrict__ counter,
                           LapViolation* __restrict__ out) {
  const long i = scan[blockIdx.x];
  const double ui = u[i];
  for (long j = threadIdx.x; j < cols; j += blockDim.x) {
    const double red = static_cast<double>(sign * X[i * cols + j]) - ui - v[j];
    if (red < -tol) {
      const unsigned long long slot = atomicAdd(counter, 1ull);
      if (static_cast<long>(slot) < cap) out[slot] = LapViolation{static_cast<int32_t>(i), static_cast<int32_t>(j), red};
    }
  }
}

class CudaLap final : public DeviceLap {
 public:
  CudaLap() { CMSAE_CUDA(cudaStreamCreate(&stream_)); }
  ~CudaLap() override {
    if (stream_) cudaStreamDestroy(stream_);
  }
  void load(const float* x, long rows, long cols, bool maximize) override {
    rows_ = rows;
    cols_ = cols;
    sign_ = maximize ? -1.f : 1.f;
    X_.ensure(static_cast<size_t>(rows) * cols);
    X_.upload(x, stream_, static_cast<size_t>(rows) * cols);
    sync();
  }
  bool candidates(int k, int kc, uint64_t* row_keys, int* row_cnt, uint64_t* col_keys, int* col_cnt) override {
    if (k < 1 || k > kMaxRowK || kc < 1 || kc > kMaxColK) fail("ERR_ARG", "the CUDA candidate pass supports k <= 64 per row and <= 16 per column");
    rk_.ensure(static_cast<size_t>(rows_) * k);
    rc_.ensure(rows_);
    ck_.ensure(static_cast<size_t>(cols_) * kc);
    cc_.ensure(cols_);
    flag_.ensure(1);
    flag_.zero(stream_);
    row_candidates<<<(rows_ + 7) / 8, 256, 0, stream_>>>(X_.p, rows_, cols_, sign_, k, rk_.p, rc_.p, flag_.p);
    const int chunks = static_cast<int>(std::min<long>(64, (rows_ + 127) / 128));
    const long chunk_rows = (rows_ + chunks - 1) / chunks;
    pk_.ensure(static_cast<size_t>(chunks) * cols_ * kc);
    pc_.ensure(static_cast<size_t>(chunks) * cols_);
    col_candidates<<<dim3(static_cast<unsigned>((cols_ + 255) / 256), static_cast<unsigned>(chunks)), 256, 0, stream_>>>(X_.p, rows_, cols_, sign_, kc, chunk_rows,
                                                                                                                   pk_.p, pc_.p);
    col_merge<<<(cols_ + 255) / 256, 256, 0, stream_>>>(pk_.p, pc_.p, chunks, cols_, kc, ck_.p, cc_.p);
    CMSAE_CUDA(cudaGetLastError());
    rk_.download(reinterpret_cast<unsigned long long*>(row_keys), stream_, static_cast<size_t>(rows_) * k);
    rc_.download(row_cnt, stream_, rows_);
    ck_.download(reinterpret_cast<unsigned long long*>(col_keys), stream_, static_cast<size_t>(cols_) * kc);
    cc_.download(col_cnt, stream_, cols_);
    int flag = 0;
    flag_.download(&flag, stream_, 1);
    sync();
    return flag != 0;
  }
  long price(const std::vector<int32_t>& scan, const double* u, const double* v, double tol, long cap,
             std::vector<LapViolation>& out) override {
    out.clear();
    if (scan.empty()) return 0;
    scan_.ensure(scan.size());
    scan_.upload(scan.data(), stream_, scan.size());
    u_.ensure(rows_);
    v_.ensure(cols_);
    u_.upload(u, stream_, rows_);
    v_.upload(v, stream_, cols_);
    viol_.ensure(std::max<long>(cap, 1));
    counter_.ensure(1);
    counter_.zero(stream_);
    price_rows<<<static_cast<unsigned>(scan.size()), 256, 0, stream_>>>(X_.p, cols_, sign_, scan_.p, u_.p, v_.p, tol, cap, counter_.p, viol_.p);
    CMSAE_CUDA(cudaGetLastError());
    unsigned long long total = 0;
    counter_.download(&total, stream_, 1);
    sync();
    const long got = std::min<long>(static_cast<long>(total), cap);
    out.resize(got);
    if (got) {
      viol_.download(out.data(), stream_, got);
      sync();
    }
    return static_cast<long>(total);
  }

 private:
  void sync() { CMSAE_CUDA(cudaStreamSynchronize(stream_)); }
  cudaStream_t stream_ = nullptr;
  long rows_ = 0, cols_ = 0;
  float sign_ = 1.f;
  DeviceBuffer<float> X_;
  DeviceBuffer<unsigned long long> rk_, ck_, pk_, counter_;
  DeviceBuffer<int> rc_, cc_, pc_, flag_;
  DeviceBuffer<int32_t> scan_;
  DeviceBuffer<double> u_, v_;
  DeviceBuffer<LapViolation> viol_;
};

}  // namespace

std::unique_ptr<DeviceLap> create_device_lap() {
  const DeviceInfo info = query_devices();
  if (!info.available)
    fail("ERR_CUDA_UNAVAILABLE", "device 'cuda' was requested but no CUDA device can be used (" + info.message + "): use device 'cpu' or 'auto'");
  return std::make_unique<CudaLap>();
}

}  // namespace cmsae::cuda
