// Portable instance of the kernel table (no SIMD flags): 4x8 encode register tile of plain floats.
#include "../simd/vec_scalar.h"
#define CMSAE_VEC simd::VecScalar
#define CMSAE_MR 4
#define CMSAE_NV 2
#define CMSAE_KERNELS_FN kernels_scalar
#define CMSAE_KERNELS_NAME "scalar"
#include "kernels_impl.h"
