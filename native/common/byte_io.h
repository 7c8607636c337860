// The binary state formats' byte helpers: append the bytes of n values to a buffer, and read n values through a
// cursor that fails with ERR_FORMAT "<what> is truncated" past its end. n = 0 touches no pointer (an empty
// vector's data() may be null).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "errors.h"

namespace cmsae {

template <class T>
void append_bytes(std::vector<uint8_t>& out, const T* p, size_t n) {
  if (n == 0) return;
  const uint8_t* b = reinterpret_cast<const uint8_t*>(p);
  out.insert(out.end(), b, b + n * sizeof(T));
}

struct ByteReader {
  const uint8_t* p;
  const uint8_t* end;
  const char* what;  // names the state in the truncation message
  template <class T>
  void get(T* dst, size_t n) {
    if (n == 0) return;
    if (n > static_cast<size_t>(end - p) / sizeof(T)) fail("ERR_FORMAT", std::string(what) + " is truncated");
    std::memcpy(dst, p, n * sizeof(T));
    p += n * sizeof(T);
  }
  template <class T>
  T one() {
    T x;
    get(&x, 1);
    return x;
  }
};

}  // namespace cmsae
