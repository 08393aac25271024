// tile_lowbit_avx512.c built with AVX512-VBMI (CMakeLists.txt adds the flag for *_vbmi_avx512.c):
// the grid lookups of lowbit_decode_avx512.h become byte permutes; the arithmetic is the same.
#include "tile_lowbit_avx512.c"
