// CUDA error checks that throw the engine's typed errors, and a small owning device buffer.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "../native/common/errors.h"

namespace cmsae::cuda {

[[noreturn]] inline void cuda_fail(cudaError_t st, const char* what, const char* file, int line) {
  cudaGetLastError();  // clear the sticky error where possible
  const char* code = (st == cudaErrorMemoryAllocation) ? "ERR_NOMEM" : "ERR_INTERNAL";
  fail(code, std::string("CUDA: ") + what + " failed: " + cudaGetErrorName(st) + " (" + cudaGetErrorString(st) + ") at " + file +
                 ":" + std::to_string(line));
}

#define CMSAE_CUDA(expr)                                                              \
  do {                                                                                \
    const cudaError_t cmsae_st_ = (expr);                                             \
    if (cmsae_st_ != cudaSuccess) ::cmsae::cuda::cuda_fail(cmsae_st_, #expr, __FILE__, __LINE__); \
  } while (0)

// An owning device array of T (grows with ensure(); contents are not kept when it grows).
template <class T>
struct DeviceBuffer {
  T* p = nullptr;
  size_t n = 0;
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (p) cudaFree(p);
  }
  void alloc(size_t count) {
    if (p) cudaFree(p);
    p = nullptr;
    n = 0;
    if (count == 0) return;
    CMSAE_CUDA(cudaMalloc(reinterpret_cast<void**>(&p), sizeof(T) * count));
    n = count;
  }
  void ensure(size_t count) {
    if (count > n) alloc(count);
  }
  void zero(cudaStream_t s) {
    if (n) CMSAE_CUDA(cudaMemsetAsync(p, 0, sizeof(T) * n, s));
  }
  void upload(const T* host, cudaStream_t s, size_t count = static_cast<size_t>(-1)) {
    if (count == static_cast<size_t>(-1)) count = n;
    if (count) CMSAE_CUDA(cudaMemcpyAsync(p, host, sizeof(T) * count, cudaMemcpyHostToDevice, s));
  }
  void download(T* host, cudaStream_t s, size_t count = static_cast<size_t>(-1)) const {
    if (count == static_cast<size_t>(-1)) count = n;
    if (count) CMSAE_CUDA(cudaMemcpyAsync(host, p, sizeof(T) * count, cudaMemcpyDeviceToHost, s));
  }
};

}  // namespace cmsae::cuda
