// Refuses allocations that could not fit in this machine's RAM, with a typed error instead of an OOM kill.
#pragma once
#include <cstdint>
#include <string>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#include "errors.h"

namespace cmsae {

// Physical memory in bytes (0 when unknown).
inline uint64_t physical_memory_bytes() {
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGE_SIZE)
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page > 0) return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
#endif
  return 0;
}

// Throws ERR_NOMEM when `bytes` exceed 3/4 of physical memory.
inline void require_memory(double bytes, const std::string& what) {
  const uint64_t phys = physical_memory_bytes();
  if (phys > 0 && bytes > 0.75 * static_cast<double>(phys)) {
    const double gib = 1024.0 * 1024.0 * 1024.0;
    fail("ERR_NOMEM", what + " needs " + std::to_string(static_cast<long long>(bytes / gib + 0.5)) +
                          " GiB but this machine has " + std::to_string(static_cast<long long>(phys / gib + 0.5)) +
                          " GiB of RAM: use fewer latents or a larger machine");
  }
}

}  // namespace cmsae
