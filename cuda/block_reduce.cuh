// Warp and block reductions shared by the SAE kernels: the warp max of 64-bit candidate keys, warp sums
// (float64, float32) and a block-wide float64 sum whose result every thread gets.
#pragma once
#include <cuda_runtime.h>

namespace cmsae::cuda {

__device__ __forceinline__ unsigned long long warp_max(unsigned long long x) {
  for (int off = 16; off > 0; off >>= 1) {
    const unsigned long long y = __shfl_xor_sync(0xFFFFFFFFu, x, off);
    x = y > x ? y : x;
  }
  return x;
}
__device__ __forceinline__ double warp_sum(double x) {
  for (int off = 16; off > 0; off >>= 1) x += __shfl_xor_sync(0xFFFFFFFFu, x, off);
  return x;
}
__device__ __forceinline__ float warp_sumf(float x) {
  for (int off = 16; off > 0; off >>= 1) x += __shfl_xor_sync(0xFFFFFFFFu, x, off);
  return x;
}
// Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the result.
__device__ inline double block_sum(double x) {
  __shared__ double part[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  x = warp_sum(x);
  __syncthreads();
  if (lane == 0) part[warp] = x;
  __syncthreads();
  double s = 0;
  for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) s += part[w];
  return s;
}

}  // namespace cmsae::cuda
