// The lattice tables of the i-quant formats (iq_grids.c) and the sign patterns they pair with.
// A grid index picks 8 (IQ2, IQ1) or 4 (IQ3) magnitudes packed as bytes, element 0 lowest.
#ifndef GGML_LITE_IQ_GRIDS_H
#define GGML_LITE_IQ_GRIDS_H

#include <stdint.h>

extern const uint64_t gl_iq2xxs_grid[256];
extern const uint64_t gl_iq2xs_grid[512];
extern const uint64_t gl_iq2s_grid[1024];
extern const uint32_t gl_iq3xxs_grid[256];
extern const uint32_t gl_iq3s_grid[512];
extern const uint64_t gl_iq1s_grid[2048]; // bytes are int8 -1, 0 or 1

// The i-quants store 7 sign bits per group of 8; the eighth makes the count of minus signs even.
// Returns the full 8-bit mask (bit j set = element j negative).
static inline uint8_t gl_iq_signs8(unsigned bits7) {
    bits7 &= 127;
    return (uint8_t)(bits7 | (__builtin_parity(bits7) << 7));
}

// Byte j of a packed grid entry.
static inline int gl_grid_byte(uint64_t entry, int j) { return (int)(entry >> (8 * j) & 0xff); }

#endif
