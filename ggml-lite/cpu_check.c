// Refuses to run an AVX2 build on a CPU without AVX2 (before main can execute any of it).
// This file is compiled without SIMD flags.
#include <stdio.h>
#include <stdlib.h>

#include "ggml-lite.h"

bool gl_cpu_has_avx2(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

// AVX512-VNNI with 256-bit (VL) forms: optional faster tiles on CPUs that have it.
bool gl_cpu_has_avx512vnni(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl");
#else
    return false;
#endif
}

#if defined(LLAMALITE_BUILT_AVX2) && (defined(__x86_64__) || defined(__i386__))
__attribute__((constructor)) static void gl_refuse_without_avx2(void) {
    if (!gl_cpu_has_avx2()) {
        fputs("llamalite: this build needs a CPU with AVX2 and FMA; rebuild with "
              "-DLLAMALITE_AVX2=OFF\n", stderr);
        exit(1);
    }
}
#endif
