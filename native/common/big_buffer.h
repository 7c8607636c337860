// Large zero-initialized float64 buffers backed by transparent huge pages where the OS allows
// (madvise), zeroed by all threads at allocation so that later passes do not stall on page faults.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "thread_pool.h"

namespace cmsae {

template <class T>
class BigBuffer {
 public:
  BigBuffer() = default;
  explicit BigBuffer(size_t n) { reset(n); }
  ~BigBuffer() { std::free(p_); }
  BigBuffer(const BigBuffer&) = delete;
  BigBuffer& operator=(const BigBuffer&) = delete;
  BigBuffer(BigBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
  BigBuffer& operator=(BigBuffer&& o) noexcept {
    if (this != &o) { std::free(p_); p_ = o.p_; n_ = o.n_; o.p_ = nullptr; o.n_ = 0; }
    return *this;
  }
  void reset(size_t n) {
    std::free(p_);
    p_ = nullptr;
    n_ = n;
    if (n == 0) return;
    constexpr size_t kHuge = size_t(2) << 20;
    const size_t bytes = ((n * sizeof(T) + kHuge - 1) / kHuge) * kHuge;
    p_ = static_cast<T*>(std::aligned_alloc(kHuge, bytes));
    if (!p_) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    madvise(p_, bytes, MADV_HUGEPAGE);
#endif
    const int T_ = num_threads();
    parallel_for(T_, [&](int t) {
      const size_t b = n * t / T_, e = n * (t + 1) / T_;
      std::memset(static_cast<void*>(p_ + b), 0, (e - b) * sizeof(T));
    });
  }
  T* data() { return p_; }
  const T* data() const { return p_; }
  size_t size() const { return n_; }
  T& operator[](size_t i) { return p_[i]; }
  const T& operator[](size_t i) const { return p_[i]; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace cmsae
