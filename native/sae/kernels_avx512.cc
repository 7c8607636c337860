// AVX-512F instance of the kernel table (compiled with -mavx512f...): 12x32 encode register tile.
#include "../simd/vec_avx512.h"
#define CMSAE_VEC simd::VecAvx512
#define CMSAE_MR 12
#define CMSAE_NV 2
#define CMSAE_KERNELS_FN kernels_avx512
#define CMSAE_KERNELS_NAME "avx512"
#include "kernels_impl.h"
