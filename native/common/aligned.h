// Aligned buffers for kernel scratch space and large accumulators (optionally zeroed by all threads).
#pragma once
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

#include "thread_pool.h"

namespace cmsae {

template <class T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t n) { reset(n); }
  ~AlignedBuffer() { std::free(p_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) { std::free(p_); p_ = o.p_; n_ = o.n_; o.p_ = nullptr; o.n_ = 0; }
    return *this;
  }
  // Uninitialized storage for n elements, 64-byte aligned.
  void reset(size_t n) { allocate(n, 64); }
  // Zero-filled storage for n elements, zeroed by all threads so that later passes do not stall on page
  // faults. No transparent-huge-page request: with the common defrag=madvise setting the kernel compacts
  // memory synchronously, which cost 0.6 s for 512 MB in a fresh process here (and sped nothing up).
  void reset_zeroed_parallel(size_t n) {
    allocate(n, 64);
    if (!p_) return;
    const int parts = num_threads();
    parallel_for(parts, [&](int t) {
      const size_t b = n * t / parts, e = n * (t + 1) / parts;
      std::memset(static_cast<void*>(p_ + b), 0, (e - b) * sizeof(T));
    });
  }
  T* data() { return p_; }
  const T* data() const { return p_; }
  size_t size() const { return n_; }
  T& operator[](size_t i) { return p_[i]; }
  const T& operator[](size_t i) const { return p_[i]; }

 private:
  size_t allocate(size_t n, size_t alignment) {
    std::free(p_);
    p_ = nullptr;
    n_ = n;
    if (n == 0) return 0;
    const size_t bytes = ((n * sizeof(T) + alignment - 1) / alignment) * alignment;
    p_ = static_cast<T*>(std::aligned_alloc(alignment, bytes));
    if (!p_) throw std::bad_alloc();
    return bytes;
  }
  T* p_ = nullptr;
  size_t n_ = 0;
};

// A growable array of trivially copyable T whose new elements are left uninitialized: std::vector's
// resize() would zero memory that is about to be overwritten (one extra pass over large buffers).
template <class T>
class RawVector {
 public:
  RawVector() = default;
  ~RawVector() { std::free(p_); }
  RawVector(const RawVector&) = delete;
  RawVector& operator=(const RawVector&) = delete;
  RawVector(RawVector&& o) noexcept : p_(o.p_), n_(o.n_), cap_(o.cap_) { o.p_ = nullptr; o.n_ = o.cap_ = 0; }
  RawVector& operator=(RawVector&& o) noexcept {
    if (this != &o) {
      std::free(p_);
      p_ = o.p_; n_ = o.n_; cap_ = o.cap_;
      o.p_ = nullptr; o.n_ = o.cap_ = 0;
    }
    return *this;
  }
  void resize(size_t n) {
    if (n > cap_) grow(n);
    n_ = n;
  }
  void push_back(const T& x) {
    if (n_ == cap_) grow(n_ + 1);
    p_[n_++] = x;
  }
  void clear() { n_ = 0; }
  bool empty() const { return n_ == 0; }
  size_t size() const { return n_; }
  T* data() { return p_; }
  const T* data() const { return p_; }
  T& operator[](size_t i) { return p_[i]; }
  const T& operator[](size_t i) const { return p_[i]; }
  T& back() { return p_[n_ - 1]; }
  const T& back() const { return p_[n_ - 1]; }

 private:
  void grow(size_t n) {
    const size_t c = n > 2 * cap_ ? n : 2 * cap_;
    T* q = static_cast<T*>(std::realloc(p_, c * sizeof(T)));
    if (!q) throw std::bad_alloc();
    p_ = q;
    cap_ = c;
  }
  T* p_ = nullptr;
  size_t n_ = 0, cap_ = 0;
};

}  // namespace cmsae
