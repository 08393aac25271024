// What the CPU runs, asked at run time (CPUID through the compiler's builtins). Built without
// SIMD flags, like everything outside arch/, so it runs on any CPU of the architecture.
#include "dot.h"

#if defined(__x86_64__) || defined(__i386__)
#define GL_X86 1
#include <cpuid.h>
#endif

#ifdef GL_X86
// F16C read from CPUID leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports has no "f16c".
static bool cpu_has_f16c(void) {
    unsigned eax, ebx, ecx, edx;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29));
}
#endif

bool gl_cpu_has_avx2(void) {
#ifdef GL_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
#else
    return false;
#endif
}

// AVX-512 F/BW/VL with VNNI (Ice Lake, Zen 4 and later; Skylake-X runs the AVX2 set).
bool gl_cpu_has_avx512(void) {
#ifdef GL_X86
    __builtin_cpu_init();
    return gl_cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#else
    return false;
#endif
}

// AVX512-VNNI with 256-bit (VL) forms: optional faster tiles on CPUs that have it.
bool gl_cpu_has_avx512vnni(void) {
#ifdef GL_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl");
#else
    return false;
#endif
}

// AVX512-BF16 (Zen 4, Cooper Lake, Sapphire Rapids and later): bf16 dot products.
bool gl_cpu_has_avx512bf16(void) {
#ifdef GL_X86
    __builtin_cpu_init();
    return gl_cpu_has_avx512() && __builtin_cpu_supports("avx512bf16");
#else
    return false;
#endif
}
