// The grids of IQ2_XXS, IQ2_S, IQ3_XXS and IQ3_S rewritten as codes (lowbit_decode_avx512.h): every
// byte of an entry is one of a few levels (3 for the IQ2 grids, 8 for the IQ3 ones), so an entry is
// its levels' ranks packed into 16 bits. Built once from the grids when the program starts,
// with the flag that says whether the CPU runs the VBMI builds that read them; and the IQ1_S grid
// as IQ1_M's prompt tiles read it.
#include <stdlib.h>
#include <string.h>

#include "iq_grids.h"
#include "kernels_avx512_lowbit.h"
#include "lowbit_decode_avx512.h"

gl_grid_codes gl_iq2xxs_codes, gl_iq2s_codes, gl_iq3xxs_codes, gl_iq3s_codes;
uint64_t gl_iq1m_tile_grid[2048];
bool gl_lowbit_use_vbmi;

// Entry i of a grid of n entries, `width` bytes each.
static uint64_t entry(const void *grid, int width, int i) {
    return width == 8 ? ((const uint64_t *)grid)[i] : ((const uint32_t *)grid)[i];
}

// The codes of a grid whose bytes take at most 2^bits distinct values (ranked in increasing order).
static void build(gl_grid_codes *c, const void *grid, int n, int width, int bits) {
    int n_levels = 0;
    uint8_t level[8];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < width; j++) { // insert byte j of entry i into the sorted levels
            const uint8_t v = (uint8_t)gl_grid_byte(entry(grid, width, i), j);
            int k = 0;
            while (k < n_levels && level[k] < v) k++;
            if (k < n_levels && level[k] == v) continue;
            if (n_levels == 1 << bits) abort(); // (the grids are constants: cannot happen)
            memmove(level + k + 1, level + k, (size_t)(n_levels - k));
            level[k] = v;
            n_levels++;
        }
    for (int i = 0; i < n; i++) {
        unsigned code = 0;
        for (int j = 0; j < width; j++) {
            const uint8_t v = (uint8_t)gl_grid_byte(entry(grid, width, i), j);
            unsigned k = 0;
            while (level[k] != v) k++;
            code |= k << (bits * j);
        }
        c->lo[i] = (uint8_t)code;
        c->hi[i] = (uint8_t)(code >> 8);
    }
    for (int k = 0; k < 64; k++) c->levels[k] = level[(k & ((1 << bits) - 1)) % n_levels];
}

// Each level l (-1, 0, 1) of the IQ1_S grid as 8 * l + 1 + LOWBIT_OFFSET.
static void build_iq1m_tile_grid(void) {
    for (int i = 0; i < 2048; i++) {
        uint64_t e = 0;
        for (int j = 0; j < 8; j++)
            e |= (uint64_t)(uint8_t)(8 * (int8_t)gl_grid_byte(gl_iq1s_grid[i], j) + 1 + LOWBIT_OFFSET) << (8 * j);
        gl_iq1m_tile_grid[i] = e;
    }
}

__attribute__((constructor)) static void build_grid_codes(void) {
    gl_lowbit_use_vbmi = __builtin_cpu_supports("avx512vbmi");
    build(&gl_iq2xxs_codes, gl_iq2xxs_grid, 256, 8, 2);
    build(&gl_iq2s_codes, gl_iq2s_grid, 1024, 8, 2);
    build(&gl_iq3xxs_codes, gl_iq3xxs_grid, 256, 4, 3);
    build(&gl_iq3s_codes, gl_iq3s_grid, 512, 4, 3);
    build_iq1m_tile_grid();
}
