// AVX2 kernels (placeholder while they are written: everything falls back to scalar).
#include "dot.h"

#if defined(GL_HAVE_AVX2_KERNELS)
const gl_kernel_set gl_kernels_avx2 = {0};
#endif
