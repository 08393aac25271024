// Internal to arch/x86-avx512: helpers of the repacked layouts (repack_*_avx512.c).
#ifndef GGML_LITE_REPACK_AVX512_H
#define GGML_LITE_REPACK_AVX512_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define INL static inline __attribute__((always_inline))

INL __m512i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

#endif
