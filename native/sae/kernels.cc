#include "kernels.h"

namespace cmsae {

const SaeKernels& kernels_for(SimdLevel level) {
#if defined(CMSAE_HAVE_X86_SIMD)
  if (level == SimdLevel::Avx512) return kernels_avx512();
  if (level == SimdLevel::Avx2) return kernels_avx2();
#else
  (void)level;
#endif
  return kernels_scalar();
}

}  // namespace cmsae
