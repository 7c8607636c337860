// count[j] = #(active entries of latent j); fires[j] += count[j], since[j] = count[j] ? 0 : since[j] + R; CPU reference: native/sae/cpu_backend.cc CpuBackend::commit_latent_stats (counts: cpu_forward.cc count_batch).
// Also the forward's scalars (per-segment SSE, active entries as counted by cpu_forward_pass, latents dead once
// the batch is committed, as dead_fraction) and the entries' sort keys for the sparse backward (backward.cu).
#include <cuda_runtime.h>

#include <cstdint>

#include "block_reduce.cuh"
#include "sae_ops.cuh"

namespace cmsae::cuda {
namespace {

// out = {sse of rows [0, rows), sse of rows [rows, 2 rows), active entries, latents whose since would be >= window
// once this batch of R rows is committed (0 when window <= 0)}; one block, fixed strides: deterministic.
__global__ void forward_scalars(const double* __restrict__ sse_row, long rows, int nseg, const int* __restrict__ count, int m,
                                const long long* __restrict__ since, long long R, long long window, double* __restrict__ out) {
  double s0 = 0, s1 = 0, active = 0, dead = 0;
  for (long r = threadIdx.x; r < rows; r += blockDim.x) {
    s0 += sse_row[r];
    if (nseg > 1) s1 += sse_row[rows + r];
  }
  for (int j = threadIdx.x; j < m; j += blockDim.x) {
    active += count[j];
    if (window > 0 && (count[j] ? 0 : since[j] + R) >= window) dead += 1;
  }
  s0 = block_sum(s0);
  s1 = block_sum(s1);
  active = block_sum(active);
  dead = block_sum(dead);
  if (threadIdx.x == 0) {
    out[0] = s0;
    out[1] = s1;
    out[2] = active;
    out[3] = dead;
  }
}

// count[idx] += 1 for every active entry; keys/pos for the sort (inactive entries get key m).
__global__ void entry_keys(const int32_t* __restrict__ idx, const float* __restrict__ val, long n, int m,
                           int* __restrict__ count, int* __restrict__ keys, int* __restrict__ pos) {
  const long p = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (p >= n) return;
  const bool on = val[p] > 0.f;
  keys[p] = on ? idx[p] : m;
  pos[p] = static_cast<int>(p);
  if (on) atomicAdd(count + idx[p], 1);
}

// fires += count; since = count ? 0 : since + R.
__global__ void latent_stats(const int* __restrict__ count, int m, long long R, double* __restrict__ fires,
                             long long* __restrict__ since) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= m) return;
  fires[j] += count[j];
  since[j] = count[j] ? 0 : since[j] + R;
}

}  // namespace

void launch_entry_keys(const int32_t* idx, const float* val, long n, int m, int* count, int* keys, int* pos, cudaStream_t stream) {
  entry_keys<<<blocks_for(n), kThreads, 0, stream>>>(idx, val, n, m, count, keys, pos);
}

void launch_forward_scalars(const double* sse_row, long rows, int nseg, const int* count, int m, const long long* since,
                            long long R, long long window, double* out, cudaStream_t stream) {
  forward_scalars<<<1, kThreads, 0, stream>>>(sse_row, rows, nseg, count, m, since, R, window, out);
}

void launch_latent_stats(const int* count, int m, long long R, double* fires, long long* since, cudaStream_t stream) {
  latent_stats<<<blocks_for(m), kThreads, 0, stream>>>(count, m, R, fires, since);
}

}  // namespace cmsae::cuda
