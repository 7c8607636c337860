// AVX2+FMA instance of the kernel table (compiled with -mavx2 -mfma): 6x16 encode register tile.
#include "../simd/vec_avx2.h"
#define CMSAE_VEC simd::VecAvx2
#define CMSAE_MR 6
#define CMSAE_NV 2
#define CMSAE_KERNELS_FN kernels_avx2
#define CMSAE_KERNELS_NAME "avx2"
#include "kernels_impl.h"
